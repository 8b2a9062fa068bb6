"""Scoring a model of one vocabulary on a dataset of another: predictions mapped by class name.

``coco80_to_lis8``: a COCO-80 model (detectron2's ``thing_classes``) on LIS (Chen et al.), whose
8 classes carry PASCAL VOC names. Predictions of the 8 COCO classes that LIS annotates are
renamed; those of the other 72 classes are dropped (LIS does not label them, so they could only
count as false positives of no class).
"""

from dataclasses import dataclass
from typing import Dict, Sequence

import torch
from detectron2.data.datasets.builtin_meta import _get_builtin_metadata
from detectron2.structures import Instances


@dataclass(frozen=True)
class ClassMapping:
    """A renaming of a model's classes into a dataset's classes.

    Attributes:
        source_classes: the model's classes, in its contiguous order (index = predicted class).
        names: {source class name: dataset class name}; source classes not listed are dropped.
    """

    source_classes: tuple
    names: Dict[str, str]

    def index_map(
        self, target_classes: Sequence[str], where: str = "the dataset"
    ) -> Dict[int, int]:
        """{source contiguous index: target contiguous index} for the dataset's class list.

        Raises:
            ValueError: a mapped name missing on either side, or a dataset class nothing maps to.
        """
        source = list(self.source_classes)
        target = list(target_classes)
        missing_source = sorted(set(self.names) - set(source))
        missing_target = sorted(set(self.names.values()) - set(target))
        unmapped = sorted(set(target) - set(self.names.values()))
        if missing_source or missing_target or unmapped:
            raise ValueError(
                f"class mapping does not fit {where} (classes {target}): model classes not in "
                f"the model's vocabulary {missing_source}, dataset classes not in {where} "
                f"{missing_target}, classes of {where} nothing maps to {unmapped}"
            )
        return {source.index(s): target.index(t) for s, t in self.names.items()}


COCO80_TO_LIS8 = ClassMapping(
    source_classes=tuple(_get_builtin_metadata("coco")["thing_classes"]),
    names={
        "bicycle": "bicycle",
        "car": "car",
        "motorcycle": "motorbike",
        "bus": "bus",
        "bottle": "bottle",
        "chair": "chair",
        "dining table": "diningtable",
        "tv": "tvmonitor",
    },
)

# Names accepted by TEST.LOWLIGHT_NL.CLASS_MAPPING.
CLASS_MAPPINGS = {"coco80_to_lis8": COCO80_TO_LIS8}


def get_class_mapping(name: str) -> ClassMapping:
    """The mapping called ``name`` in :data:`CLASS_MAPPINGS`."""
    if name not in CLASS_MAPPINGS:
        raise KeyError(
            f"TEST.LOWLIGHT_NL.CLASS_MAPPING {name!r} is not one of {sorted(CLASS_MAPPINGS)}"
        )
    return CLASS_MAPPINGS[name]


def map_instances(instances: Instances, index_map: Dict[int, int]) -> Instances:
    """Keeps the predictions whose class is in ``index_map`` and relabels them.

    Args:
        instances: N predictions with ``pred_classes`` (N,) int64 in the model's contiguous
            classes, plus any per-instance fields (boxes (N, 4), scores (N,), masks
            (N, H, W), ...), which are indexed along with them.
        index_map: {source index: target index} (:meth:`ClassMapping.index_map`).

    Returns:
        The M <= N kept predictions, in their original order, with ``pred_classes`` (M,) in the
        target classes.
    """
    classes = instances.pred_classes
    lookup = torch.full((max(index_map) + 1,), -1, dtype=torch.long, device=classes.device)
    lookup[torch.tensor(list(index_map), device=classes.device)] = torch.tensor(
        list(index_map.values()), device=classes.device
    )
    in_range = classes < lookup.numel()
    mapped = torch.where(in_range, lookup[classes.clamp(max=lookup.numel() - 1)], -1)
    keep = mapped >= 0
    kept = instances[keep]
    kept.pred_classes = mapped[keep]
    return kept
