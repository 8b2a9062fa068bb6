"""Dataset mapper: reads one tile and its labels, and synthesises the noisy views of it."""

import logging
import os
from typing import List, Optional, Set

import cv2
import numpy as np
import torch

from d2common.data import seeded_rng
from d2common.data.validation import BadSampleError, SampleSkipper, read_image_checked
from d2common.registry import DATASET_MAPPER_REGISTRY

from ..ops import ARTIFACT_CLOUD, ARTIFACT_NAMES, SYNTHESIS_MODES, apply_artifacts
from .loaders import IMAGE_EXTENSIONS, tile_box
from .stacks import read_stack
from .tiles import TileCache, read_tile

__all__ = [
    "NODATA_MODES",
    "OverheadFusionDatasetMapper",
    "nodata_color",
    "read_tile",
    "tile_box",
]

logger = logging.getLogger(__name__)

# The authors blur the cloud alpha with sigma 5 at their 300 px input size.
_REFERENCE_SIZE = 300


@DATASET_MAPPER_REGISTRY.register()
class OverheadFusionDatasetMapper:
    """Maps a tile dict to the model's input: clean image, labels and V noisy views.

    Output dict: "views" (V, 3, S, S) float32 in [0, 1], "image" (3, S, S) the clean tile,
    "sem_seg" (S, S) int64, "artifact_kinds" (V,) int64, plus "image_id", "file_name",
    "height", "width". Training draws fresh artifacts (and V) whenever a sample is loaded;
    evaluation seeds them by (INPUT.OVERHEAD_FUSION.SEED, image_id, repeat). A real image stack
    (a record with "view_files", see ``stacks.py``) gives its views as they are, with
    "artifact_kinds" -1, and "image" only when the stack has a clean reference.

    A tile that cannot be read (see :func:`read_tile`) is skipped in training with a warning
    and a count (``num_skipped``); in testing the mapper raises naming the file.
    """

    def __init__(self, cfg, is_train: bool = True, repeat: int = 0):
        c = cfg.INPUT.OVERHEAD_FUSION
        self.is_train = is_train
        self.repeat = repeat
        self.size = int(c.IMAGE_SIZE)
        self.min_views, self.max_views = (int(v) for v in c.NUM_VIEWS)
        if not 1 <= self.min_views <= self.max_views:
            raise ValueError(
                f"INPUT.OVERHEAD_FUSION.NUM_VIEWS must be (min, max), got {c.NUM_VIEWS}"
            )
        unknown = [t for t in c.ARTIFACT_TYPES if t not in ARTIFACT_NAMES]
        if unknown or not c.ARTIFACT_TYPES:
            raise ValueError(
                f"INPUT.OVERHEAD_FUSION.ARTIFACT_TYPES: unknown {unknown}; "
                f"use {list(ARTIFACT_NAMES)}"
            )
        self.kinds = [ARTIFACT_NAMES[t] for t in c.ARTIFACT_TYPES]
        self.area_fraction = float(c.AREA_FRACTION)
        if c.ARTIFACT_MODE not in SYNTHESIS_MODES:
            raise ValueError(
                f"INPUT.OVERHEAD_FUSION.ARTIFACT_MODE must be one of {SYNTHESIS_MODES}: "
                f"{c.ARTIFACT_MODE}"
            )
        self.artifact_mode = c.ARTIFACT_MODE
        self.nodata_color = nodata_color(cfg)
        self.tiles = TileCache(int(float(c.TILE_CACHE_MB) * 2**20))
        self.blur_sigma = float(c.CLOUD_BLUR_SIGMA) * self.size / _REFERENCE_SIZE
        self.seed = int(c.SEED)
        self.random_flip = bool(c.RANDOM_FLIP) and is_train
        self.cloud_textures = _load_cloud_textures(c.CLOUD_TEXTURE_DIR, is_train, self.size)
        self.skipper = SampleSkipper(is_train, "tile")
        self._warned: Set[str] = set()

    @property
    def num_skipped(self) -> int:
        """Tiles skipped so far (training only; testing raises instead)."""
        return self.skipper.num_skipped

    def _map_stack(self, dataset_dict: dict):
        """A real image stack: its views as they are (no synthetic artifacts)."""
        try:
            views, labels, clean = read_stack(dataset_dict, self.size, self.nodata_color)
        except BadSampleError as e:
            return self.skipper.skip_or_raise(e)
        if self.random_flip:
            if np.random.rand() < 0.5:
                views = views[:, :, ::-1]
                labels, clean = (None if a is None else a[:, ::-1] for a in (labels, clean))
            if np.random.rand() < 0.5:
                views = views[:, ::-1]
                labels, clean = (None if a is None else a[::-1] for a in (labels, clean))
        dataset_dict.update(
            views=_to_tensor(views),
            artifact_kinds=torch.full((len(views),), -1, dtype=torch.int64),
            height=self.size,
            width=self.size,
        )
        if clean is not None:
            dataset_dict["image"] = _to_tensor(clean)
        if labels is not None:
            dataset_dict["sem_seg"] = torch.from_numpy(np.ascontiguousarray(labels)).long()
        return dataset_dict

    def _generator(self, image_id) -> Optional[torch.Generator]:
        if self.is_train:
            return None
        rng = seeded_rng(self.seed, str(image_id), self.repeat)
        return torch.Generator().manual_seed(int(rng.integers(2**62)))

    def synthesize_views(self, clean: torch.Tensor, generator=None):
        """(3, S, S) clean image -> views (V, 3, S, S), artifact (V, 1, S, S), kinds (V,)."""
        num_views = self.max_views
        if self.is_train and self.min_views < self.max_views:
            span = self.max_views - self.min_views + 1
            num_views = self.min_views + int(torch.randint(span, (1,), generator=generator))
        kinds = torch.tensor([self.kinds[j % len(self.kinds)] for j in range(num_views)])
        area = torch.full((num_views,), self.area_fraction)
        textures = None
        if self.cloud_textures is not None and (kinds == ARTIFACT_CLOUD).any():
            pick = torch.randint(len(self.cloud_textures), (num_views,), generator=generator)
            textures = self.cloud_textures[pick]
        images = clean.unsqueeze(0).expand(num_views, -1, -1, -1)
        views, artifact = apply_artifacts(
            images, kinds, area, textures, self.blur_sigma, generator, self.artifact_mode
        )
        return views, artifact, kinds

    def __call__(self, dataset_dict: dict):
        dataset_dict = dict(dataset_dict)
        if "view_files" in dataset_dict:
            return self._map_stack(dataset_dict)
        try:
            image, labels = self.tiles.get(dataset_dict, self.size, self._warned, self.nodata_color)
        except BadSampleError as e:
            # Training: skipped, warned about and counted (detectron2's loader draws another
            # tile). Testing: raises, so that no tile is ever scored in place of another.
            return self.skipper.skip_or_raise(e)
        if self.random_flip:
            if np.random.rand() < 0.5:
                image, labels = image[:, ::-1], None if labels is None else labels[:, ::-1]
            if np.random.rand() < 0.5:
                image, labels = image[::-1], None if labels is None else labels[::-1]
        clean = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        views, _, kinds = self.synthesize_views(clean, self._generator(dataset_dict["image_id"]))
        dataset_dict.update(
            views=views,
            image=clean,
            artifact_kinds=kinds,
            height=self.size,
            width=self.size,
        )
        if labels is not None:
            dataset_dict["sem_seg"] = torch.from_numpy(np.ascontiguousarray(labels)).long()
        return dataset_dict


NODATA_MODES = ("ignore", "drop", "keep")


def nodata_color(cfg):
    """The (r, g, b) no-data colour whose pixels get the ignore label, or None
    (INPUT.OVERHEAD_FUSION.NODATA "keep", or an empty NODATA_COLOR)."""
    c = cfg.INPUT.OVERHEAD_FUSION
    if c.NODATA not in NODATA_MODES:
        raise ValueError(f"INPUT.OVERHEAD_FUSION.NODATA must be one of {NODATA_MODES}: {c.NODATA}")
    if c.NODATA == "keep" or not len(c.NODATA_COLOR):
        return None
    if len(c.NODATA_COLOR) != 3:
        raise ValueError(
            f"INPUT.OVERHEAD_FUSION.NODATA_COLOR must be (r, g, b) or empty: {c.NODATA_COLOR}"
        )
    return tuple(int(v) for v in c.NODATA_COLOR)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).movedim(-1, -3).float() / 255.0


def _load_cloud_textures(directory: str, is_train: bool, size: int) -> Optional[torch.Tensor]:
    """Cloud photographs of ``directory`` (its ``train/`` or ``test/`` subfolder when present).

    Returns:
        (K, 3, size, size) float in [0, 1], or None when no folder is configured.
    """
    if not directory:
        return None
    sub = os.path.join(directory, "train" if is_train else "test")
    folder = sub if os.path.isdir(sub) else directory
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"INPUT.OVERHEAD_FUSION.CLOUD_TEXTURE_DIR {folder} does not exist")
    textures: List[np.ndarray] = []
    skipped = []
    for name in sorted(os.listdir(folder)):
        if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        try:
            image = read_image_checked(os.path.join(folder, name), format="RGB")
        except BadSampleError as e:
            skipped.append(str(e))
            continue
        textures.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
    if skipped:
        logger.warning(
            "%s: skipped %d unreadable cloud images, e.g. %s", folder, len(skipped), skipped[0]
        )
    if not textures:
        raise FileNotFoundError(f"no readable cloud images in {folder}")
    return torch.from_numpy(np.stack(textures)).permute(0, 3, 1, 2).float() / 255.0
