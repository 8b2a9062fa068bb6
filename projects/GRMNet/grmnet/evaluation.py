"""COCO box / mask AP with one query per (sketch, expression) record (the paper's protocol),
overall and per query type ("category suffices" / "needs position", see ``data.query_types``)."""

import copy
from collections import OrderedDict

from detectron2.evaluation import COCOEvaluator as _D2COCOEvaluator
from detectron2.utils.logger import create_small_table

from d2common.data.registration import get_load_report
from d2common.engine import CoveredCOCOEvaluator
from d2common.registry import EVALUATOR_REGISTRY

from .data.query_types import QUERY_TYPES

SUBSET_LABELS = {"category": "category suffices", "position": "needs position"}


@EVALUATOR_REGISTRY.register()
class GRMReferringEvaluator(CoveredCOCOEvaluator):
    """COCO AP / AP50 / AP75 over the referred instances, overall and per query type.

    Every dataset record is one (sketch, expression) query with its own ``image_id``, and its
    ground truth holds only the referred instances: predictions of other objects count as false
    positives, missed referred instances as false negatives.

    Inputs carrying ``query_type`` (the loader's record field, kept by the mapper) are also scored
    per type: the results gain the tasks ``bbox_category``, ``segm_category`` ("category
    suffices": the referents are all instances of their categories), ``bbox_position``,
    ``segm_position`` ("needs position") and ``query_types`` (number of queries of each type).
    A type without queries gets no task.
    """

    def __init__(self, cfg, dataset_name: str, output_folder: str = None):
        super().__init__(
            dataset_name,
            tasks=("bbox", "segm"),
            output_dir=output_folder,
            max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
        )

    def process(self, inputs, outputs):
        start = len(self._predictions)
        super().process(inputs, outputs)
        # detectron2 appends one prediction per input that has instances, in order.
        with_instances = [x for x, o in zip(inputs, outputs) if "instances" in o]
        for prediction, x in zip(self._predictions[start:], with_instances):
            prediction["query_type"] = x.get("query_type")

    def _eval_predictions(self, predictions, img_ids=None):
        super()._eval_predictions(predictions, img_ids=img_ids)
        types = {p["image_id"]: p.get("query_type") for p in predictions}
        if not any(types.values()) or not self._do_evaluation:
            self._logger.info("No query types in the inputs: AP is not stratified.")
            return
        if img_ids is None:
            report = get_load_report(self._metadata.name)
            img_ids = list(types) if report is None else [_image_id(i) for i in report.record_ids]
        counts = OrderedDict()
        for qtype in QUERY_TYPES:
            ids = [i for i in img_ids if types.get(i) == qtype]
            counts[qtype] = float(len(ids))
            if ids:
                self._eval_subset(predictions, ids, qtype)
        self._results["query_types"] = counts
        lines = {
            f"{SUBSET_LABELS[t]} ({int(counts[t])} queries)": self._results.get(f"segm_{t}", {})
            for t in QUERY_TYPES
        }
        table = {name: round(res.get("AP", float("nan")), 2) for name, res in lines.items()}
        table = {"all": round(self._results.get("segm", {}).get("AP", float("nan")), 2), **table}
        self._logger.info("Mask AP by query type:\n" + create_small_table(table))

    def _eval_subset(self, predictions, ids, qtype):
        """Scores the queries ``ids`` only; results go to ``<task>_<qtype>``."""
        wanted = set(ids)
        subset = copy.deepcopy([p for p in predictions if p["image_id"] in wanted])
        overall, output_dir = self._results, self._output_dir
        self._results, self._output_dir = OrderedDict(), None  # keep the overall files
        try:
            _D2COCOEvaluator._eval_predictions(self, subset, img_ids=sorted(wanted))
            subset_results = self._results
        finally:
            self._results, self._output_dir = overall, output_dir
        for task, metrics in subset_results.items():
            overall[f"{task}_{qtype}"] = metrics


def _image_id(key: str):
    # the load report keeps ids as strings; COCO ids of this dataset are ints
    return int(key) if str(key).lstrip("-").isdigit() else key
