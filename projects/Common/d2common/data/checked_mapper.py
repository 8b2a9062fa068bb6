"""detectron2's ``DatasetMapper`` with a full, checked decode and the skip-or-raise policy.

detectron2's mapper reads images with ``detection_utils.read_image``; a truncated JPEG can get
through with a warning, and a failure ends the whole job. :class:`CheckedDatasetMapper` decodes
through :func:`~.validation.read_image_checked` (full decode, EXIF applied, minimum size) and
turns every :class:`~.validation.BadSampleError` into a skip in training and an error naming the
file in testing (:class:`~.validation.SampleSkipper`).
"""

import copy
from typing import Optional, Tuple

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .validation import BadSampleError, SampleSkipper, check_same_size, read_image_checked

__all__ = ["CheckedDatasetMapper", "read_image_in_format"]


def read_image_in_format(
    path: str, image_format: str, min_size: Optional[Tuple[int, int]] = None
) -> np.ndarray:
    """:func:`read_image_checked` returning detectron2's layouts.

    Returns:
        (H, W, 3) uint8 for ``"RGB"`` / ``"BGR"``, (H, W, 1) uint8 for ``"L"``.
    """
    if image_format not in ("RGB", "BGR", "L"):
        raise ValueError(f"INPUT.FORMAT {image_format!r} cannot be decoded: use BGR, RGB or L")
    image = read_image_checked(path, format=image_format, min_size=min_size)
    return image[:, :, None] if image.ndim == 2 else image


class CheckedDatasetMapper(DatasetMapper):
    """``DatasetMapper`` that fully decodes and checks every image.

    A missing, empty, truncated, corrupt or too small image, or one whose size differs from the
    record's ``height`` / ``width``, is skipped in training (warning and count; the loader draws
    another sample) and raises :class:`BadSampleError` naming the file in testing.
    """

    @configurable
    def __init__(
        self, is_train: bool = True, *, min_image_size: Tuple[int, int] = (1, 1), **kwargs
    ):
        """
        Args:
            is_train: training mode.
            min_image_size: (min_height, min_width) of a usable image, before any resize.
            kwargs: arguments of :class:`DatasetMapper`.
        """
        super().__init__(is_train, **kwargs)
        self.min_image_size = tuple(min_image_size)
        self.skipper = SampleSkipper(is_train, "image")

    @property
    def num_skipped(self) -> int:
        """Samples skipped so far in this process (training only; testing raises)."""
        return self.skipper.num_skipped

    def __call__(self, dataset_dict):
        try:
            return self.map(dataset_dict)
        except BadSampleError as e:
            return self.skipper.skip_or_raise(e)

    def read_image(self, dataset_dict: dict) -> np.ndarray:
        """Decodes ``dataset_dict["file_name"]``; raises :class:`BadSampleError` when unusable."""
        path = dataset_dict["file_name"]
        image = read_image_in_format(path, self.image_format, self.min_image_size)
        try:
            utils.check_image_size(dataset_dict, image)
        except utils.SizeMismatchError as e:
            raise BadSampleError(path, f"size mismatch ({e})") from e
        return image

    def map(self, dataset_dict: dict) -> dict:
        """``DatasetMapper.__call__`` with :meth:`read_image` as its decoder."""
        dataset_dict = copy.deepcopy(dataset_dict)
        image = self.read_image(dataset_dict)
        sem_seg_gt = None
        if "sem_seg_file_name" in dataset_dict:
            label_path = dataset_dict.pop("sem_seg_file_name")
            sem_seg_gt = read_image_checked(label_path, format="L")
            try:
                check_same_size(
                    image.shape, sem_seg_gt.shape, dataset_dict["file_name"], label_path
                )
            except BadSampleError as e:
                raise BadSampleError(e.path, f"size mismatch ({e.reason})") from e

        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        transforms = self.augmentations(aug_input)
        image, sem_seg_gt = aug_input.image, aug_input.sem_seg

        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg_gt.astype("long"))
        if self.proposal_topk is not None:
            utils.transform_proposals(
                dataset_dict, image_shape, transforms, proposal_topk=self.proposal_topk
            )
        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict
        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image_shape)
        return dataset_dict
