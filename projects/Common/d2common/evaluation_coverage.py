"""Checks that an evaluation scored exactly the records its dataset loaded, once each.

Every evaluator of the plugin calls :func:`check_coverage` on the main process with the keys of
the samples it scored. It raises when a key occurs twice or when a loaded record was not scored
(or an unknown one was), and returns the counts that go into the results as the ``records`` task
(``evaluated``, ``candidates``, ``excluded``) together with the sentence
"evaluated N of M records; K excluded: <reasons>".
"""

import json
import logging
import os
from collections import Counter, OrderedDict
from typing import Dict, Iterable, Optional, Tuple

from detectron2.data import DatasetCatalog

from .data.registration import get_load_report, record_load_report

logger = logging.getLogger(__name__)


class EvaluationCoverageError(RuntimeError):
    """The scored samples are not exactly the loaded records."""


def check_coverage(
    dataset_name: str, scored_keys: Iterable, output_dir: Optional[str] = None
) -> Tuple[Dict[str, float], str]:
    """Compares the scored sample keys with the loaded records of ``dataset_name``.

    Args:
        dataset_name: a registered dataset.
        scored_keys: the key of every scored sample (``image_id``, else ``file_name``), gathered
            over all ranks.
        output_dir: where ``evaluation_records.json`` (counts + excluded files with reasons) goes.

    Returns:
        (counts for the ``records`` result task, the summary sentence).

    Raises:
        EvaluationCoverageError: a duplicate, missing or unknown key.
    """
    scored = [str(k) for k in scored_keys]
    dups = sorted(k for k, n in Counter(scored).items() if n > 1)
    if dups:
        raise EvaluationCoverageError(
            f"{dataset_name}: {len(dups)} sample(s) were scored more than once, e.g. "
            f"{', '.join(dups[:5])}: sample keys (image_id) must be unique and no sample may be "
            "replaced by another"
        )
    if dataset_name not in DatasetCatalog.list():
        # An evaluator used on its own, outside any registered dataset: nothing to compare with.
        logger.info("%s is not a registered dataset: only sample uniqueness checked", dataset_name)
        n = float(len(scored))
        return OrderedDict(evaluated=n, candidates=n, excluded=0.0), f"evaluated {len(scored)}"
    report = get_load_report(dataset_name)
    if report is None or report.record_ids is None:
        # Registered without register_dataset_once: load it here and keep what it gave.
        report = record_load_report(dataset_name, DatasetCatalog.get(dataset_name))
    expected = set(report.record_ids)
    missing = sorted(expected - set(scored))
    unknown = sorted(set(scored) - expected)
    if missing or unknown:
        raise EvaluationCoverageError(
            f"{dataset_name}: the evaluation scored {len(scored)} samples but the dataset loaded "
            f"{len(expected)} records ({len(missing)} not scored, e.g. {missing[:5]}; "
            f"{len(unknown)} not in the dataset, e.g. {unknown[:5]})"
        )
    counts = OrderedDict(
        evaluated=float(len(scored)),
        candidates=float(report.num_candidates),
        excluded=float(len(report.excluded)),
    )
    sentence = f"{dataset_name}: evaluated {len(scored)} of {report.num_candidates} records"
    if report.excluded:
        reasons = ", ".join(f"{r} ({n})" for r, n in report.reason_counts().most_common())
        sentence += f"; {len(report.excluded)} excluded: {reasons}"
        logger.warning(sentence)
    else:
        logger.info(sentence)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "evaluation_records.json"), "w") as f:
            json.dump(
                {
                    "summary": sentence,
                    **{k: int(v) for k, v in counts.items()},
                    "excluded_files": [{"file": p, "reason": r} for p, r in report.excluded],
                },
                f,
                indent=2,
            )
    return counts, sentence
