"""ICMDepth data: file formats, dataset loaders and registration, toy scenes, the mapper."""

from . import checks, datasets  # noqa: F401  (registers the datasets and start-up checks)
from .loaders import load_cityscapes_dvps, load_kitti_eigen, load_semkitti_dvps
from .mapper import ICMDepthDatasetMapper

__all__ = [
    "load_cityscapes_dvps",
    "load_kitti_eigen",
    "load_semkitti_dvps",
    "ICMDepthDatasetMapper",
]
