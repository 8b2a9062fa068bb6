"""Registration of ICMDepth's datasets (real and toy) under ``$DETECTRON2_DATASETS``.

The root is read when a dataset is loaded, so ``DETECTRON2_DATASETS`` may change after import.
"""

import os

from d2common.data import datasets_root, ensure_generated, register_dataset_once

from .checks import record_instance_counts
from .loaders import load_cityscapes_dvps, load_kitti_eigen, load_semkitti_dvps
from .toy import write_toy_dataset

TOY_DIR = os.path.join("toy", "icm_depth")

# Evaluation protocol per dataset family (used by ICMDepthEvaluator): the baselines' published
# protocols. KITTI as iDisc (Garg crop, GT >= 80 m dropped, metrics per image, averaged);
# Cityscapes-DVPS / SemKITTI-DVPS as PolyphonicFormer (GT >= 80 m clamped to 80 m and kept,
# metrics per image, averaged). The toy scenes use the Cityscapes-DVPS protocol.
_DVPS_PROTOCOL = {
    "eval_crop": "none",
    "max_depth": 80.0,
    "min_depth": 1e-3,
    "gt_cap": "clamp",
    "eval_aggregation": "per_image",
}
_METADATA = {
    "kitti": {
        "eval_crop": "garg",
        "max_depth": 80.0,
        "min_depth": 1e-3,
        "gt_cap": "drop",
        "eval_aggregation": "per_image",
    },
    "cityscapes_dvps": dict(_DVPS_PROTOCOL),
    "semkitti_dvps": dict(_DVPS_PROTOCOL),
    "toy": dict(_DVPS_PROTOCOL),
}

# name -> (family, loader of the datasets root)
_PREDEFINED_SPLITS = {
    "icm_depth_kitti_eigen_train": (
        "kitti",
        lambda root: load_kitti_eigen(
            os.path.join(root, "kitti"),
            os.path.join(root, "kitti", "splits", "eigen_train_files_with_gt.txt"),
            os.path.join(root, "kitti", "instances"),
        ),
    ),
    "icm_depth_kitti_eigen_test": (
        "kitti",
        lambda root: load_kitti_eigen(
            os.path.join(root, "kitti"),
            os.path.join(root, "kitti", "splits", "eigen_test_files_with_gt.txt"),
            os.path.join(root, "kitti", "instances"),
        ),
    ),
    "icm_depth_cityscapes_dvps_train": (
        "cityscapes_dvps",
        lambda root: load_cityscapes_dvps(
            os.path.join(root, "cityscapes-dvps", "video_sequence", "train")
        ),
    ),
    "icm_depth_cityscapes_dvps_val": (
        "cityscapes_dvps",
        lambda root: load_cityscapes_dvps(
            os.path.join(root, "cityscapes-dvps", "video_sequence", "val")
        ),
    ),
    "icm_depth_semkitti_dvps_train": (
        "semkitti_dvps",
        lambda root: load_semkitti_dvps(
            os.path.join(root, "semkitti-dvps", "video_sequence", "train")
        ),
    ),
    "icm_depth_semkitti_dvps_val": (
        "semkitti_dvps",
        lambda root: load_semkitti_dvps(
            os.path.join(root, "semkitti-dvps", "video_sequence", "val")
        ),
    ),
    "icm_depth_toy_train": ("toy", lambda root: load_toy(root, "train")),
    "icm_depth_toy_val": ("toy", lambda root: load_toy(root, "val")),
}


def load_toy(root: str, split: str):
    """Generates the toy dataset on first use, then reads it with the Cityscapes-DVPS loader."""
    toy_root = ensure_generated(os.path.join(root, TOY_DIR), write_toy_dataset)
    return load_cityscapes_dvps(os.path.join(toy_root, "video_sequence", split))


def _counting(name: str, loader):
    def load():
        records = loader(datasets_root())
        record_instance_counts(name, records)
        return records

    return load


def register_all_icm_depth():
    """Registers every dataset of ``_PREDEFINED_SPLITS`` (idempotent)."""
    for name, (family, loader) in _PREDEFINED_SPLITS.items():
        register_dataset_once(
            name,
            _counting(name, loader),
            evaluator_type="icm_depth",
            dataset_family=family,
            **_METADATA[family],
        )


register_all_icm_depth()
