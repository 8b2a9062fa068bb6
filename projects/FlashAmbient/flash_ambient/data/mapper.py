"""Reads a flash / ambient pair, resizes it by orientation and augments it as the authors did."""

import copy
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
from detectron2.config import configurable

from d2common.data.validation import BadSampleError, SampleSkipper, read_image_checked
from d2common.registry import DATASET_MAPPER_REGISTRY

from ..ops import bilateral_filter_authors
from .faid import MIN_IMAGE_SIZE, check_pair_sizes


def resize_by_orientation(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resizes an HxWx3 image to (long, short) = ``size``, landscape or portrait as it is."""
    long_side, short_side = size
    h, w = image.shape[:2]
    out_w, out_h = (long_side, short_side) if w >= h else (short_side, long_side)
    if (out_w, out_h) == (w, h):
        return image
    interp = cv2.INTER_AREA if out_w * out_h < w * h else cv2.INTER_LINEAR
    return cv2.resize(image, (out_w, out_h), interpolation=interp)


@DATASET_MAPPER_REGISTRY.register()
class FlashAmbientDatasetMapper:
    """Dataset dict -> ``{"image": flash, "ambient": ambient, ...}``, (3, H, W) uint8 RGB tensors.

    Both images are resized to 320x240 / 240x320 by orientation. Training adds the authors'
    augmentation, identical for both images: a random square crop of side ``crop_base *
    U(crop_scale)`` resized to ``crop_size``, and a random horizontal flip.

    With ``prefilter`` (DeepFlash with ``DEEPFLASH.FILTER "authors"``), training dicts also get
    ``image_bf`` / ``ambient_bf``: the authors' bilateral filter of the resized full images (uint8),
    cropped and flipped with them, as in the authors' pipeline (filter, then crop).

    Every image is fully decoded (``read_image_checked``). A pair that cannot be used (unreadable,
    truncated, too small, flash and ambient of different sizes) is skipped in training with a
    warning and a count (the mapper returns None and the loader draws another); in testing the
    mapper raises naming the file, so that no test pair is ever replaced by another.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        resize: Tuple[int, int] = (320, 240),
        crop_base: int = 240,
        crop_scale: Tuple[float, float] = (0.8, 1.0),
        crop_size: int = 224,
        random_flip: bool = True,
        prefilter: Optional[dict] = None,
    ):
        self.is_train = is_train
        self.resize = tuple(resize)
        self.crop_base = crop_base
        self.crop_scale = tuple(crop_scale)
        self.crop_size = crop_size
        self.random_flip = random_flip
        self.prefilter = prefilter
        self.skipper = SampleSkipper(is_train, "flash / ambient pair")

    @property
    def num_skipped(self) -> int:
        """Pairs skipped so far (training only; testing raises instead)."""
        return self.skipper.num_skipped

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        i = cfg.INPUT.FLASH_AMBIENT
        return {
            "is_train": is_train,
            "resize": i.RESIZE,
            "crop_base": i.CROP_BASE,
            "crop_scale": i.CROP_SCALE,
            "crop_size": i.CROP_SIZE,
            "random_flip": i.RANDOM_FLIP,
            "prefilter": _authors_prefilter(cfg),
        }

    def read_pair(self, d: dict) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Decodes the flash image and, when the dict has one, the ambient image (HxWx3 RGB).

        Raises:
            BadSampleError: naming the file that is unreadable, too small or of another size.
        """
        flash = read_image_checked(d["file_name"], format="RGB", min_size=MIN_IMAGE_SIZE)
        if "ambient_file_name" not in d:
            return flash, None
        ambient = read_image_checked(d["ambient_file_name"], format="RGB", min_size=MIN_IMAGE_SIZE)
        check_pair_sizes(flash.shape, ambient.shape, d["file_name"], d["ambient_file_name"])
        return flash, ambient

    def augment(self, flash: np.ndarray, ambient: np.ndarray, *extra: np.ndarray):
        """The same random square crop (resized to ``crop_size``) and flip for all images."""
        h, w = flash.shape[:2]
        side = int(round(self.crop_base * np.random.uniform(*self.crop_scale)))
        side = max(1, min(side, h, w))
        y0 = np.random.randint(0, h - side + 1)
        x0 = np.random.randint(0, w - side + 1)
        flip = self.random_flip and np.random.rand() < 0.5
        out = []
        for img in (flash, ambient) + extra:
            img = img[y0 : y0 + side, x0 : x0 + side]
            interp = cv2.INTER_AREA if side > self.crop_size else cv2.INTER_LINEAR
            img = cv2.resize(img, (self.crop_size, self.crop_size), interpolation=interp)
            out.append(img[:, ::-1] if flip else img)
        return out

    def __call__(self, dataset_dict: dict) -> Optional[dict]:
        d = copy.deepcopy(dataset_dict)
        try:
            flash, ambient = self.read_pair(d)
        except BadSampleError as e:
            return self.skipper.skip_or_raise(e)
        flash = resize_by_orientation(flash, self.resize)
        if ambient is not None:
            ambient = resize_by_orientation(ambient, self.resize)
        if self.is_train:
            if ambient is None:
                raise ValueError(f"{d['file_name']}: training needs the ambient image of the pair")
            filtered = [self._prefilter(x) for x in (flash, ambient)] if self.prefilter else []
            flash, ambient, *filtered = self.augment(flash, ambient, *filtered)
            for key, img in zip(("image_bf", "ambient_bf"), filtered):
                d[key] = _to_tensor(img)
        d["image"] = _to_tensor(flash)
        if ambient is not None:
            d["ambient"] = _to_tensor(ambient)
        d["height"], d["width"] = flash.shape[:2]
        return d

    def _prefilter(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> the authors' bilateral filter of it, HxWx3 uint8."""
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        out = bilateral_filter_authors(x, **self.prefilter)[0]
        return out.to(torch.uint8).numpy().transpose(1, 2, 0)


def _authors_prefilter(cfg) -> Optional[dict]:
    """The authors' filter arguments when the config trains DeepFlash with it, else None."""
    d = cfg.MODEL.FLASH_AMBIENT.DEEPFLASH
    if cfg.MODEL.META_ARCHITECTURE != "FlashAmbientDeepFlash" or d.FILTER != "authors":
        return None
    return dict(diameter=d.FILTER_DIAMETER, sigma_space=d.SIGMA_SPACE, sigma_range=d.SIGMA_RANGE)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
