"""Evaluator bases shared by the dense-prediction projects."""

import csv
import itertools
import logging
import os
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from .data.registration import record_key
from .evaluation_coverage import check_coverage

logger = logging.getLogger(__name__)


class PerImageMetricEvaluator(DatasetEvaluator):
    """Collects one dict of metrics per image, gathers them over ranks, writes a CSV, returns means.

    Subclasses implement :meth:`compute_image_metrics`. Results come back as
    ``{task_name: {metric: mean over images}, "records": {evaluated, candidates, excluded}}``;
    the per-image rows go to ``<output_dir>/per_image_metrics.csv`` (main process). Every loaded
    record must be scored exactly once (see :func:`~d2common.evaluation_coverage.check_coverage`).
    """

    task_name = "metrics"

    def __init__(self, dataset_name: str, output_dir: str = None):
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self._rows: List[Dict] = []

    def reset(self):
        self._rows = []

    def compute_image_metrics(self, input: dict, output: dict) -> Dict[str, float]:
        """Returns the metrics of one image. ``input``/``output``: one element of a batch."""
        raise NotImplementedError

    def image_id(self, input: dict) -> str:
        return record_key(input)

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            row = OrderedDict(image_id=self.image_id(inp))
            row.update(self.compute_image_metrics(inp, out))
            self._rows.append(row)

    def summarize(self, rows: List[Dict]) -> Dict[str, float]:
        """Aggregates per-image rows; the default is the mean of every numeric column."""
        keys = [k for k in rows[0] if k != "image_id"]
        return OrderedDict((k, float(np.nanmean([r[k] for r in rows]))) for k in keys)

    def evaluate(self):
        all_rows = comm.gather(self._rows, dst=0)
        if not comm.is_main_process():
            return {}
        rows = list(itertools.chain(*all_rows))
        counts, _ = check_coverage(
            self.dataset_name, [r["image_id"] for r in rows], self.output_dir
        )
        if not rows:
            logger.warning("%s got no predictions on %s.", type(self).__name__, self.dataset_name)
            return {}
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            path = os.path.join(self.output_dir, "per_image_metrics.csv")
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
                writer.writeheader()
                writer.writerows(rows)
            logger.info("Per-image metrics written to %s", path)
        return OrderedDict({self.task_name: self.summarize(rows), "records": counts})
