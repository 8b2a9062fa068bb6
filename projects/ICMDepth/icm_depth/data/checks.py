"""Start-up checks of an ICMDepth config against its datasets (run for every train / test set)."""

from typing import Dict, Tuple

from detectron2.data import DatasetCatalog, MetadataCatalog

from d2common.checks import ConfigDataMismatch, register_dataset_check

# Evaluation crops defined on KITTI's image geometry (fractions of a 375 x 1242 frame).
KITTI_CROPS = ("garg", "eigen")
# dataset name -> (records with an instance map, records) of its last load in this process.
_INSTANCE_COUNTS: Dict[str, Tuple[int, int]] = {}


def is_icm_depth_config(cfg) -> bool:
    """Whether ``cfg`` runs the ICMDepth model or trainer."""
    trainer = cfg.get("TRAINER", {}).get("NAME", "")
    return cfg.MODEL.META_ARCHITECTURE == "ICMDepthEstimator" or trainer == "ICMDepthTrainer"


def record_instance_counts(name: str, records) -> None:
    """Remembers how many of ``name``'s records carry an instance map (called by the loaders)."""
    with_instances = sum(1 for r in records if r.get("instance_format"))
    _INSTANCE_COUNTS[name] = (with_instances, len(records))


def instance_counts(name: str) -> Tuple[int, int]:
    """(records with an instance map, records) of dataset ``name`` (loads it if needed)."""
    if name not in _INSTANCE_COUNTS:
        record_instance_counts(name, DatasetCatalog.get(name))
    return _INSTANCE_COUNTS[name]


@register_dataset_check
def check_icm_depth_dataset(cfg, dataset_name: str) -> None:
    """Raises :class:`~d2common.checks.ConfigDataMismatch` when the config cannot run on the
    dataset as intended:

    - the dataset is not a depth dataset (its records carry no depth map);
    - ``TEST.ICM_DEPTH.CROP`` is a KITTI crop (garg, eigen) on another dataset family, whose
      frames have another geometry;
    - the ICM loss is on (``MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT`` > 0) for a training set without a
      single instance map: the run would silently train SI_log only (Table V, II).
    """
    if not is_icm_depth_config(cfg):
        return
    meta = MetadataCatalog.get(dataset_name)
    if meta.get("evaluator_type", None) != "icm_depth":
        raise ConfigDataMismatch(
            f"Dataset {dataset_name} is not an ICMDepth depth dataset (evaluator_type "
            f"{meta.get('evaluator_type', None)!r}; its records have no depth map): set "
            "DATASETS.TRAIN / DATASETS.TEST to icm_depth_* datasets"
        )
    family = meta.get("dataset_family", None)
    crop = cfg.TEST.ICM_DEPTH.CROP
    if crop in KITTI_CROPS and family != "kitti":
        raise ConfigDataMismatch(
            f"TEST.ICM_DEPTH.CROP is {crop!r}, KITTI's evaluation crop, but {dataset_name} is a "
            f"{family} dataset with another frame geometry: set TEST.ICM_DEPTH.CROP auto "
            f"(the dataset's own crop, {meta.get('eval_crop', 'none')!r}) or none"
        )
    weight = cfg.MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT
    if weight > 0 and dataset_name in cfg.DATASETS.TRAIN:
        with_instances, total = instance_counts(dataset_name)
        if total and not with_instances:
            hint = (
                " (write KITTI's pseudo masks with datasets/prepare_icm_depth_kitti_masks.py)"
                if family == "kitti"
                else ""
            )
            raise ConfigDataMismatch(
                f"MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT is {weight:g} but none of the {total} records of "
                f"{dataset_name} has an instance map, so the ICM loss would be 0{hint}: set "
                "MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT 0 to train SI_log only, or add instance maps"
            )
