"""Segmentation scores over one confusion matrix of the whole set, fused-image L1 error, and the
records evaluated (every loaded tile exactly once)."""

import itertools
import json
import logging
import os
from collections import OrderedDict
from typing import List

import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from d2common.data import record_key
from d2common.evaluation_coverage import check_coverage
from d2common.registry import EVALUATOR_REGISTRY

from .data.checks import check_overhead_fusion_dataset
from .ops import confusion_matrix, segmentation_scores

__all__ = ["OverheadFusionEvaluator"]

logger = logging.getLogger(__name__)


@EVALUATOR_REGISTRY.register()
class OverheadFusionEvaluator(DatasetEvaluator):
    """Pixel accuracy, per-class IoU, mIoU and fwIoU (FCN definitions, one confusion matrix for
    the whole set, in percent) and the L1 error of the fused image against the clean image
    (values in [0, 1]) under two names:

    * ``L1``: the mean absolute difference over all elements (pixels and RGB channels), as the
      authors' evaluation computes the number reported in the paper (Table 2, Figs. 4-5);
    * ``L1_rgb_sum``: the absolute differences summed over the three channels and averaged over
      pixels, three times ``L1``.

    Every loaded tile must be scored exactly once: the keys (``image_id``) of the scored tiles
    are gathered and compared with the dataset's loaded records
    (:func:`~d2common.evaluation_coverage.check_coverage`), which raises on a duplicate or a
    missing tile and writes ``evaluation_records.json``.

    Results: ``{"fusion": {"pACC", "mIoU", "fwIoU", "IoU-<class>", "L1", "L1_rgb_sum"},
    "records": {"evaluated", "candidates", "excluded"}}``.
    """

    def __init__(self, cfg, dataset_name: str, output_folder: str = None):
        """Built by the registry as ``cls(cfg, dataset_name, output_folder)``."""
        c = cfg.MODEL.OVERHEAD_FUSION
        # The trainer's start-up check, also here for an evaluator built on its own.
        check_overhead_fusion_dataset(cfg, dataset_name)
        meta = MetadataCatalog.get(dataset_name)
        classes = meta.get("stuff_classes", None) or [str(i) for i in range(c.NUM_CLASSES)]
        self.dataset_name = dataset_name
        self.class_names = list(classes)
        self.num_classes = c.NUM_CLASSES
        self.ignore_value = c.IGNORE_VALUE
        self.output_dir = output_folder
        self.reset()

    def reset(self):
        self._conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self._l1_sum = 0.0
        self._l1_pixels = 0
        self._l1_elements = 0
        self._keys: List[str] = []

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            self._keys.append(record_key(inp))
            if "sem_seg" in inp:
                pred = out["sem_seg"].argmax(dim=0).cpu()
                self._conf += confusion_matrix(
                    pred, inp["sem_seg"].cpu(), self.num_classes, self.ignore_value
                )
            if "image" in inp and "fused" in out:
                diff = (out["fused"].detach().cpu().float() - inp["image"].float()).abs()
                self._l1_sum += float(diff.double().sum())
                self._l1_pixels += diff[0].numel()
                self._l1_elements += diff.numel()

    def evaluate(self):
        state = (self._conf, self._l1_sum, self._l1_pixels, self._l1_elements, self._keys)
        gathered = comm.gather(state, dst=0)
        if not comm.is_main_process():
            return {}
        keys = list(itertools.chain.from_iterable(g[4] for g in gathered))
        counts, _ = check_coverage(self.dataset_name, keys, self.output_dir)
        conf = sum(g[0] for g in gathered)
        l1_sum, l1_pixels = sum(g[1] for g in gathered), sum(g[2] for g in gathered)
        l1_elements = sum(g[3] for g in gathered)
        results = OrderedDict()
        if conf.sum() > 0:
            scores = segmentation_scores(conf)
            results["pACC"] = 100 * float(scores["pixel_acc"])
            results["mIoU"] = 100 * float(scores["mIoU"])
            results["fwIoU"] = 100 * float(scores["fwIoU"])
            for name, iou in zip(self.class_names, scores["IoU"].tolist()):
                results[f"IoU-{name}"] = 100 * iou
        if l1_pixels:
            results["L1"] = l1_sum / l1_elements
            results["L1_rgb_sum"] = l1_sum / l1_pixels
        if not results:
            logger.warning("OverheadFusionEvaluator got no predictions on %s", self.dataset_name)
            return {}
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, "confusion_matrix.json"), "w") as f:
                json.dump({"classes": self.class_names, "matrix": conf.tolist()}, f)
        return OrderedDict(fusion=results, records=counts)
