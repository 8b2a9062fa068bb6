"""COCO box / mask AP with one query per (sketch, expression) record (the paper's protocol)."""

from d2common.engine import CoveredCOCOEvaluator
from d2common.registry import EVALUATOR_REGISTRY


@EVALUATOR_REGISTRY.register()
class GRMReferringEvaluator(CoveredCOCOEvaluator):
    """COCO AP / AP50 / AP75 over the referred instances.

    Every dataset record is one (sketch, expression) query with its own ``image_id``, and its
    ground truth holds only the referred instances: predictions of other objects count as false
    positives, missed referred instances as false negatives.
    """

    def __init__(self, cfg, dataset_name: str, output_folder: str = None):
        super().__init__(
            dataset_name,
            tasks=("bbox", "segm"),
            output_dir=output_folder,
            max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
        )
