"""Start-up checks of a LowLightNL config against its datasets (run for every train / test set)."""

from d2common.checks import check_num_classes, register_dataset_check


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
    check_num_classes(cfg, dataset_name, "MODEL.ROI_HEADS.NUM_CLASSES")
