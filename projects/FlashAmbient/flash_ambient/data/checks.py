"""Start-up checks of a FlashAmbient config against its datasets (run for every train and test
dataset when the trainer builds its loaders, see ``d2common.checks``).

FAID has no classes, vocabulary or views; what a config and the data can disagree on is which
datasets are flash / ambient pairs, and the size the pairs are resized and cropped to, which
the generators' four 2x poolings need to be at least 16 px.
"""

from detectron2.data import MetadataCatalog

from d2common.checks import ConfigDataMismatch, register_dataset_check

from .faid import MIN_IMAGE_SIZE

__all__ = ["check_flash_ambient_dataset"]

_MAPPER = "FlashAmbientDatasetMapper"


@register_dataset_check
def check_flash_ambient_dataset(cfg, dataset_name: str) -> None:
    """Raises :class:`ConfigDataMismatch` naming the key to set; quiet for other projects."""
    if cfg.INPUT.get("DATASET_MAPPER", None) != _MAPPER or "FLASH_AMBIENT" not in cfg.INPUT:
        return
    kind = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    if kind != "flash_ambient":
        raise ConfigDataMismatch(
            f"Dataset {dataset_name} (evaluator_type {kind!r}) is not a flash / ambient dataset "
            f"but INPUT.DATASET_MAPPER is {_MAPPER}: set DATASETS.TRAIN / DATASETS.TEST to "
            "flash_ambient_* datasets (or another INPUT.DATASET_MAPPER)"
        )
    c = cfg.INPUT.FLASH_AMBIENT
    long_side, short_side = (int(v) for v in c.RESIZE)
    if long_side < short_side:
        raise ConfigDataMismatch(
            f"INPUT.FLASH_AMBIENT.RESIZE is (long side, short side), got {tuple(c.RESIZE)}: "
            f"set INPUT.FLASH_AMBIENT.RESIZE ({short_side}, {long_side}), or every pair of "
            f"{dataset_name} is squeezed into the other orientation"
        )
    need = min(MIN_IMAGE_SIZE)
    for key, side in (("RESIZE", short_side), ("CROP_SIZE", int(c.CROP_SIZE))):
        if side < need:
            raise ConfigDataMismatch(
                f"INPUT.FLASH_AMBIENT.{key} gives {dataset_name} images of side {side}, below "
                f"the {need} px the generators' four 2x poolings need: set "
                f"INPUT.FLASH_AMBIENT.{key} to at least {need}"
            )
