"""Dataset mapper: reads image, depth and instance ids; random crop, flip, geometric and
photometric augmentation for training."""

import copy
from typing import List, Optional, Tuple

import numpy as np
import torch
from detectron2.config import configurable

from d2common.data.checked_mapper import read_image_in_format
from d2common.data.validation import BadSampleError, SampleSkipper
from d2common.registry import DATASET_MAPPER_REGISTRY

from .augment import GeometricAugmentation, PhotometricAugmentation
from .formats import read_depth_png, read_instances
from .loaders import MIN_IMAGE_SIZE


@DATASET_MAPPER_REGISTRY.register()
class ICMDepthDatasetMapper:
    """Record -> ``{"image": (3, H, W), "depth": (H, W) float, "instance_ids": (H, W) long}``.

    Every file is fully decoded (16-bit depth and id PNGs stay 16-bit). A sample that cannot be
    used (missing, truncated or corrupt file, too small image, maps of another size than the
    image, class values outside the label table, and in training a depth map without a single
    valid pixel) is skipped with a warning and a count during training (detectron2's loader then
    draws another record) and raises :class:`BadSampleError` naming the file at test time, so
    that no test sample is ever replaced by another.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        image_format: str = "BGR",
        crop_size: Optional[Tuple[int, int]] = None,
        flip_prob: float = 0.5,
        geometric: Optional[GeometricAugmentation] = None,
        photometric: Optional[PhotometricAugmentation] = None,
    ):
        """
        Args:
            is_train: random crop / flip only when True.
            image_format: detectron2 image format (``INPUT.FORMAT``).
            crop_size: (h, w) training crop, None for whole images.
            flip_prob: horizontal flip probability during training.
            geometric: rotation / scale / translation after crop and flip (None: off).
            photometric: colour changes, last (None: off).
        """
        self.is_train = is_train
        self.image_format = image_format
        self.crop_size = tuple(crop_size) if crop_size else None
        self.flip_prob = flip_prob
        self.geometric = geometric
        self.photometric = photometric
        self.skipper = SampleSkipper(is_train, "sample")

    @property
    def num_skipped(self) -> int:
        """Samples skipped so far in this process (training only; testing raises)."""
        return self.skipper.num_skipped

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        crop = list(cfg.INPUT.ICM_DEPTH.CROP_SIZE)
        if crop and len(crop) != 2:
            raise ValueError(f"INPUT.ICM_DEPTH.CROP_SIZE must be [h, w] or [], got {crop}")
        geo, photo = cfg.INPUT.ICM_DEPTH.GEOMETRIC, cfg.INPUT.ICM_DEPTH.PHOTOMETRIC
        scale = tuple(geo.SCALE)
        if scale and (len(scale) != 2 or not 0 < scale[0] <= scale[1]):
            raise ValueError(
                f"INPUT.ICM_DEPTH.GEOMETRIC.SCALE must be [min, max] with 0 < min <= max or [], "
                f"got {list(scale)}"
            )
        geometric = GeometricAugmentation(
            prob=geo.PROB,
            rotation=geo.ROTATION,
            scale=scale,
            translation=geo.TRANSLATION,
            scale_depth=geo.SCALE_DEPTH,
        )
        photometric = PhotometricAugmentation(
            prob=photo.PROB,
            brightness=photo.BRIGHTNESS,
            contrast=photo.CONTRAST,
            saturation=photo.SATURATION,
            gamma=photo.GAMMA,
            hue=photo.HUE,
            sharpness=photo.SHARPNESS,
        )
        return {
            "is_train": is_train,
            "image_format": cfg.INPUT.FORMAT,
            "crop_size": crop or None,
            "flip_prob": cfg.INPUT.ICM_DEPTH.FLIP_PROB,
            "geometric": geometric if geo.ENABLED else None,
            "photometric": photometric if photo.ENABLED else None,
        }

    def __call__(self, dataset_dict):
        record = copy.deepcopy(dataset_dict)
        try:
            image, depth, ids = self._read(record)
        except BadSampleError as e:
            return self.skipper.skip_or_raise(e)
        if self.is_train:
            image, depth, ids = self._augment(image, depth, ids)
        record["height"], record["width"] = image.shape[:2]
        record["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        record["depth"] = torch.as_tensor(np.ascontiguousarray(depth))
        record["instance_ids"] = torch.as_tensor(np.ascontiguousarray(ids), dtype=torch.long)
        return record

    def _read(self, record):
        image = read_image_in_format(record["file_name"], self.image_format, MIN_IMAGE_SIZE)
        depth = read_depth_png(record["depth_file"])
        ids = read_instances(record)
        if ids is None:
            ids = np.zeros(depth.shape, np.int32)
        for key, array in (("depth_file", depth), ("instance_file", ids)):
            if array.shape != image.shape[:2]:
                path = record.get(key) or record["depth_file"]
                h, w = array.shape
                raise BadSampleError(
                    path,
                    f"size mismatch ({key[:-5]} map {h}x{w}, image "
                    f"{image.shape[0]}x{image.shape[1]}: {record['file_name']})",
                )
        if self.is_train and not (depth > 0).any():
            # Nothing to learn from: SI_log and ICM would see no valid pixel.
            raise BadSampleError(record["depth_file"], "no valid depth pixel")
        return image, depth, ids

    def _augment(self, image, depth, ids) -> List[np.ndarray]:
        arrays = [image, depth, ids]
        if self.crop_size:
            h, w = image.shape[:2]
            ch, cw = min(self.crop_size[0], h), min(self.crop_size[1], w)
            y0 = np.random.randint(0, h - ch + 1)
            x0 = np.random.randint(0, w - cw + 1)
            arrays = [a[y0 : y0 + ch, x0 : x0 + cw] for a in arrays]
        if np.random.rand() < self.flip_prob:
            arrays = [a[:, ::-1] for a in arrays]
        image, depth, ids = (np.ascontiguousarray(a) for a in arrays)
        if self.geometric is not None:
            image, depth, ids = self.geometric(image, depth, ids, np.random)
        if self.photometric is not None:
            image = self.photometric(image, np.random, self.image_format)
        return [image, depth, ids]
