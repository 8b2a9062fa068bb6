"""Registration of the LowLightNL datasets under the datasets root."""

import os

from d2common.data import datasets_root, ensure_generated, register_dataset_once

from .datasets import load_coco_records, register_all_lowlight
from .toy import TOY_CATEGORIES, TOY_SPLITS, generate_toy_coco

TOY_SEED = 0


# Bumped whenever the generator changes, so that stale caches are not reused.
TOY_VERSION = "v2"


def toy_dir(root: str) -> str:
    return os.path.join(root, "toy", "lowlight_nl", TOY_VERSION)


def _load_toy_split(root: str, split: str, dataset_name: str):
    directory = ensure_generated(toy_dir(root), lambda d: generate_toy_coco(d, seed=TOY_SEED))
    return load_coco_records(
        os.path.join(directory, "annotations", f"instances_{split}.json"),
        os.path.join(directory, split),
        dataset_name,
    )


def register_toy_lowlight(root: str) -> None:
    """Registers ``lowlight_nl_toy_{train,val}`` (COCO format, generated on first use)."""
    directory = toy_dir(root)
    for split in TOY_SPLITS:
        name = f"lowlight_nl_toy_{split}"
        register_dataset_once(
            name,
            lambda split=split, name=name: _load_toy_split(root, split, name),
            thing_classes=[c["name"] for c in TOY_CATEGORIES],
            json_file=os.path.join(directory, "annotations", f"instances_{split}.json"),
            image_root=os.path.join(directory, split),
            evaluator_type="coco",
        )


register_toy_lowlight(datasets_root())
register_all_lowlight(datasets_root())
