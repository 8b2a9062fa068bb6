"""Depth evaluator (Table I-IV metrics) for every ICMDepth dataset."""

import json
import logging
import os
from collections import OrderedDict

import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.utils import comm

from d2common.evaluation import PerImageMetricEvaluator
from d2common.registry import EVALUATOR_REGISTRY

from ..data.formats import read_depth_png, read_instances
from .metrics import AGGREGATIONS, GT_CAPS, image_depth_stats, summarize_depth_stats

logger = logging.getLogger(__name__)


@EVALUATOR_REGISTRY.register()
class ICMDepthEvaluator(PerImageMetricEvaluator):
    """abs_rel, sq_rel, rmse, rmse_log, silog, delta1..3 and delta1 on instance / background.

    The protocol comes from the dataset's metadata (``eval_crop``, ``eval_aggregation``,
    ``gt_cap``, ``min_depth`` / ``max_depth``) unless ``TEST.ICM_DEPTH`` overrides it: the
    crop (KITTI: Garg), the aggregation (per image, or pooled over all pixels), and what
    happens to GT beyond the maximum depth (dropped, or clamped to it and kept). The results
    carry the protocol as the ``depth_protocol`` task (``per_image`` 1 / 0, ``gt_clamp`` 1 / 0,
    ``min_depth``, ``max_depth``), and ``evaluation_protocol.json`` names it in words.
    """

    task_name = "depth"

    def __init__(self, cfg, dataset_name: str, output_folder: str = None):
        super().__init__(dataset_name, output_folder)
        meta = MetadataCatalog.get(dataset_name)
        t = cfg.TEST.ICM_DEPTH
        self.crop = meta.get("eval_crop", "none") if t.CROP == "auto" else t.CROP
        self.min_depth = t.MIN_DEPTH
        self.max_depth = t.MAX_DEPTH or meta.get("max_depth", 80.0)
        self.aggregation = (
            meta.get("eval_aggregation", "per_image") if t.AGGREGATION == "auto" else t.AGGREGATION
        )
        self.gt_cap = meta.get("gt_cap", "drop") if t.GT_CAP == "auto" else t.GT_CAP
        for key, value, choices in (
            ("AGGREGATION", self.aggregation, AGGREGATIONS),
            ("GT_CAP", self.gt_cap, GT_CAPS),
        ):
            if value not in choices:
                raise ValueError(
                    f"TEST.ICM_DEPTH.{key} must be auto or one of {choices}, got {value!r} "
                    f"(dataset {dataset_name})"
                )

    def protocol(self) -> "OrderedDict[str, object]":
        """The evaluation protocol in words: crop, depth range, GT cap, aggregation."""
        return OrderedDict(
            crop=self.crop,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            gt_cap=self.gt_cap,
            aggregation=self.aggregation,
        )

    def compute_image_metrics(self, input, output):
        pred = output["depth"].detach().float().cpu().numpy()
        if "depth" in input:
            gt = input["depth"].cpu().numpy()
        else:
            gt = read_depth_png(input["depth_file"])
        if "instance_ids" in input:
            ids = input["instance_ids"].cpu().numpy()
        else:
            ids = read_instances(input)
        instance_mask = None if ids is None else np.asarray(ids) > 0
        if pred.shape != gt.shape:
            raise ValueError(
                f"{input.get('file_name')}: prediction {pred.shape} vs GT {gt.shape}; the model "
                "must predict at the input's (height, width)"
            )
        return image_depth_stats(
            pred, gt, instance_mask, self.crop, self.min_depth, self.max_depth, self.gt_cap
        )

    def summarize(self, rows):
        logger.info(
            "%s: %d images, crop %s, depth in [%g, %g] m, GT beyond %g m %s, metrics %s",
            self.dataset_name,
            len(rows),
            self.crop,
            self.min_depth,
            self.max_depth,
            self.max_depth,
            "clamped to it and kept" if self.gt_cap == "clamp" else "dropped",
            "averaged per image" if self.aggregation == "per_image" else "pooled over pixels",
        )
        return summarize_depth_stats(rows, self.aggregation)

    def evaluate(self):
        results = super().evaluate()
        if not comm.is_main_process() or not results:
            return results
        results["depth_protocol"] = OrderedDict(
            per_image=float(self.aggregation == "per_image"),
            gt_clamp=float(self.gt_cap == "clamp"),
            min_depth=float(self.min_depth),
            max_depth=float(self.max_depth),
        )
        if self.output_dir:
            with open(os.path.join(self.output_dir, "evaluation_protocol.json"), "w") as f:
                json.dump(self.protocol(), f, indent=2)
        return results
