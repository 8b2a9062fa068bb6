"""Start-up checks of a LowLightNL config against its datasets (run for every train / test set)."""

from detectron2.data import MetadataCatalog

from d2common.checks import ConfigDataMismatch, check_num_classes, register_dataset_check

from ..class_mapping import get_class_mapping


def is_lowlight_nl_config(cfg) -> bool:
    """Whether ``cfg`` runs a LowLightNL model or trainer."""
    trainer = cfg.get("TRAINER", {}).get("NAME", "")
    return cfg.MODEL.META_ARCHITECTURE == "LowLightRCNN" or trainer == "LowLightTrainer"


@register_dataset_check
def check_lowlight_nl_dataset(cfg, dataset_name: str) -> None:
    """Raises :class:`~d2common.checks.ConfigDataMismatch` when the dataset's number of classes
    differs from ``MODEL.ROI_HEADS.NUM_CLASSES`` (in training the mismatch would surface as
    an index error deep in the loss; in evaluation it would go unnoticed)."""
    if not is_lowlight_nl_config(cfg):
        return
    mapping = cfg.TEST.LOWLIGHT_NL.CLASS_MAPPING if "LOWLIGHT_NL" in cfg.TEST else ""
    if mapping and dataset_name in cfg.DATASETS.TEST and dataset_name not in cfg.DATASETS.TRAIN:
        check_class_mapping(cfg, dataset_name, mapping)
        return
    check_num_classes(cfg, dataset_name, "MODEL.ROI_HEADS.NUM_CLASSES")


def check_class_mapping(cfg, dataset_name: str, mapping_name: str) -> None:
    """A test set scored through ``TEST.LOWLIGHT_NL.CLASS_MAPPING``: the model must have the
    mapping's source classes and the mapping must cover the dataset's classes."""
    mapping = get_class_mapping(mapping_name)
    num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    if num_classes != len(mapping.source_classes):
        raise ConfigDataMismatch(
            f"TEST.LOWLIGHT_NL.CLASS_MAPPING {mapping_name} maps a model of "
            f"{len(mapping.source_classes)} classes but MODEL.ROI_HEADS.NUM_CLASSES is "
            f"{num_classes}: set it to {len(mapping.source_classes)} or clear the mapping"
        )
    classes = MetadataCatalog.get(dataset_name).get("thing_classes", None)
    if classes is not None:
        try:
            mapping.index_map(classes, where=dataset_name)
        except ValueError as e:
            raise ConfigDataMismatch(f"TEST.LOWLIGHT_NL.CLASS_MAPPING {mapping_name}: {e}") from e
