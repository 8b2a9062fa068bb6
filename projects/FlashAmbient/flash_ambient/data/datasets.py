"""Registers the FAID splits and the toy dataset under the datasets root."""

import os

from d2common.data import datasets_root, ensure_generated, register_dataset_once

from .faid import load_faid_pairs
from .toy import generate_toy_faid

TOY_DIR = os.path.join("toy", "flash_ambient")

# name -> (image folder, split file), relative to the datasets root.
_PREDEFINED_SPLITS = {
    "flash_ambient_faid_train": ("faid/images", "faid/splits/train.txt"),
    "flash_ambient_faid_test": ("faid/images", "faid/splits/test.txt"),
    "flash_ambient_toy_train": (f"{TOY_DIR}/images", f"{TOY_DIR}/splits/train.txt"),
    "flash_ambient_toy_val": (f"{TOY_DIR}/images", f"{TOY_DIR}/splits/val.txt"),
}

_METADATA = {"evaluator_type": "flash_ambient", "input": "flash", "target": "ambient"}


def _loader(name: str):
    image_dir, split_file = _PREDEFINED_SPLITS[name]

    def load():
        # The root is read when the dataset is used, so DETECTRON2_DATASETS may be set late.
        root = datasets_root()
        if name.startswith("flash_ambient_toy_"):
            ensure_generated(os.path.join(root, TOY_DIR), generate_toy_faid)
        # Test splits are decoded completely at load, so a truncated file is excluded (and
        # reported) instead of reaching the evaluation; training splits read headers and leave
        # the decoding to the mapper, which skips and counts bad pairs.
        return load_faid_pairs(
            os.path.join(root, image_dir),
            os.path.join(root, split_file),
            full_decode=not name.endswith("_train"),
        )

    return load


def register_all_flash_ambient() -> None:
    """Registers every predefined split (idempotent)."""
    for name, (image_dir, split_file) in _PREDEFINED_SPLITS.items():
        register_dataset_once(
            name, _loader(name), image_dir=image_dir, split_file=split_file, **_METADATA
        )


register_all_flash_ambient()
