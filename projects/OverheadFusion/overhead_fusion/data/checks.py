"""Start-up checks of an OverheadFusion config against its datasets (run for every train and
test dataset when the trainer builds its loaders, and by the evaluator; see ``d2common.checks``).

What a config and the data can disagree on: the number of classes (the label format's colour
table against MODEL.OVERHEAD_FUSION.NUM_CLASSES and CLASS_WEIGHTS), and the label value of
pixels to ignore (unknown label colours decode to the dataset's ``ignore_label``, which
MODEL.OVERHEAD_FUSION.IGNORE_VALUE must equal). The views are synthesised from each tile, so
the data have no number of views to disagree with INPUT.OVERHEAD_FUSION.NUM_VIEWS (the mapper
checks that key on its own).
"""

from detectron2.data import MetadataCatalog

from d2common.checks import ConfigDataMismatch, check_num_classes, register_dataset_check

__all__ = ["check_overhead_fusion_dataset"]

_META_ARCHITECTURE = "OverheadFusionNet"


@register_dataset_check
def check_overhead_fusion_dataset(cfg, dataset_name: str) -> None:
    """Raises :class:`ConfigDataMismatch` naming the key to set; quiet for other projects."""
    if cfg.MODEL.META_ARCHITECTURE != _META_ARCHITECTURE:
        return
    c = cfg.MODEL.OVERHEAD_FUSION
    try:
        check_num_classes(cfg, dataset_name, "MODEL.OVERHEAD_FUSION.NUM_CLASSES", "stuff_classes")
    except ConfigDataMismatch as e:
        raise ConfigDataMismatch(
            f"{e}, with one MODEL.OVERHEAD_FUSION.CLASS_WEIGHTS entry per class"
        ) from e
    ignore = MetadataCatalog.get(dataset_name).get("ignore_label", None)
    if ignore is not None and int(ignore) != int(c.IGNORE_VALUE):
        raise ConfigDataMismatch(
            f"Dataset {dataset_name} marks pixels to ignore (unknown label colours) with "
            f"{ignore} but MODEL.OVERHEAD_FUSION.IGNORE_VALUE is {c.IGNORE_VALUE}: set "
            f"MODEL.OVERHEAD_FUSION.IGNORE_VALUE {ignore}"
        )
