"""Depth evaluator (Table I-IV metrics) for every ICMDepth dataset."""

import logging

import numpy as np
from detectron2.data import MetadataCatalog

from d2common.evaluation import PerImageMetricEvaluator
from d2common.registry import EVALUATOR_REGISTRY

from ..data.formats import read_depth_png, read_instances
from .metrics import image_depth_stats, summarize_depth_stats

logger = logging.getLogger(__name__)


@EVALUATOR_REGISTRY.register()
class ICMDepthEvaluator(PerImageMetricEvaluator):
    """abs_rel, sq_rel, rmse, rmse_log, silog, delta1..3 and delta1 on instance / background.

    Pixel-pooled: abs_rel, sq_rel, delta_k, delta1_instance, delta1_background. Per image, then
    averaged: rmse, rmse_log, silog. GT and prediction are capped to [min, max] depth and the
    dataset's crop (KITTI: Garg) is applied; ``TEST.ICM_DEPTH`` overrides both.
    """

    task_name = "depth"

    def __init__(self, cfg, dataset_name: str, output_folder: str = None):
        super().__init__(dataset_name, output_folder)
        meta = MetadataCatalog.get(dataset_name)
        t = cfg.TEST.ICM_DEPTH
        self.crop = meta.get("eval_crop", "none") if t.CROP == "auto" else t.CROP
        self.min_depth = t.MIN_DEPTH
        self.max_depth = t.MAX_DEPTH or meta.get("max_depth", 80.0)

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
        return image_depth_stats(pred, gt, instance_mask, self.crop, self.min_depth, self.max_depth)

    def summarize(self, rows):
        logger.info(
            "%s: %d images, crop %s, depth in [%g, %g] m; abs_rel, sq_rel, delta_k pooled over "
            "pixels, rmse / rmse_log / silog per image then averaged",
            self.dataset_name,
            len(rows),
            self.crop,
            self.min_depth,
            self.max_depth,
        )
        return summarize_depth_stats(rows)
