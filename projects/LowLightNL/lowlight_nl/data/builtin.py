"""Registration of the LowLightNL datasets under the datasets root."""

import os

from d2common.data import datasets_root, ensure_generated, register_dataset_once

from .datasets import load_coco_records, register_all_lowlight
from .toy import PAPER_SYNTHESIS_RANGES, TOY_CATEGORIES, TOY_SPLITS, generate_toy_coco

TOY_SEED = 0


# Bumped whenever the generator changes, so that stale caches are not reused.
TOY_VERSION = "v2"


# Toy variants: dataset name prefix -> (cache folder suffix, generator keyword arguments). The
# paper-noise variant renders the same scenes with the paper's darkening and noise ranges.
TOY_VARIANTS = {
    "lowlight_nl_toy": ("", {}),
    "lowlight_nl_toy_paper_noise": ("-paper-noise", {"ranges": PAPER_SYNTHESIS_RANGES}),
}


def toy_dir(root: str, prefix: str = "lowlight_nl_toy") -> str:
    return os.path.join(root, "toy", "lowlight_nl", TOY_VERSION + TOY_VARIANTS[prefix][0])


def _load_toy_split(root: str, split: str, dataset_name: str, prefix: str = "lowlight_nl_toy"):
    kwargs = TOY_VARIANTS[prefix][1]
    directory = ensure_generated(
        toy_dir(root, prefix), lambda d: generate_toy_coco(d, seed=TOY_SEED, **kwargs)
    )
    return load_coco_records(
        os.path.join(directory, "annotations", f"instances_{split}.json"),
        os.path.join(directory, split),
        dataset_name,
    )


def register_toy_lowlight(root: str) -> None:
    """Registers ``lowlight_nl_toy_{train,val}`` and ``lowlight_nl_toy_paper_noise_{train,val}``
    (COCO format, generated on first use)."""
    for prefix in TOY_VARIANTS:
        _register_toy_variant(root, prefix)


def _register_toy_variant(root: str, prefix: str) -> None:
    directory = toy_dir(root, prefix)
    for split in TOY_SPLITS:
        name = f"{prefix}_{split}"
        register_dataset_once(
            name,
            lambda split=split, name=name: _load_toy_split(root, split, name, prefix),
            thing_classes=[c["name"] for c in TOY_CATEGORIES],
            json_file=os.path.join(directory, "annotations", f"instances_{split}.json"),
            image_root=os.path.join(directory, split),
            evaluator_type="coco",
        )


register_toy_lowlight(datasets_root())
register_all_lowlight(datasets_root())
