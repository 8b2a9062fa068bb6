"""COCO evaluator of the LowLightNL configs: box / mask AP, optionally through a class mapping."""

from detectron2.data import MetadataCatalog

from d2common.engine import CoveredCOCOEvaluator
from d2common.registry import EVALUATOR_REGISTRY

from .class_mapping import get_class_mapping, map_instances


class ClassMappedCOCOEvaluator(CoveredCOCOEvaluator):
    """COCO AP of a model whose classes differ from the dataset's, mapped by name.

    Each output's ``instances`` are relabelled into the dataset's classes and the predictions of
    classes the mapping leaves out are dropped before detectron2's COCO evaluation (box and mask
    AP over the dataset's classes). Every image still gets its prediction entry (possibly
    empty), so the coverage check (every loaded record scored exactly once) is unchanged. With
    ``mapping_name`` "" the outputs are scored as they are.
    """

    def __init__(self, dataset_name: str, mapping_name: str, output_dir: str = None, **kwargs):
        super().__init__(dataset_name, output_dir=output_dir, **kwargs)
        self._index_map = None
        if mapping_name:
            target = MetadataCatalog.get(dataset_name).thing_classes
            mapping = get_class_mapping(mapping_name)
            self._index_map = mapping.index_map(target, where=dataset_name)

    def process(self, inputs, outputs):
        if self._index_map is not None:
            outputs = [
                (
                    dict(o, instances=map_instances(o["instances"], self._index_map))
                    if "instances" in o
                    else o
                )
                for o in outputs
            ]
        super().process(inputs, outputs)


@EVALUATOR_REGISTRY.register()
class LowLightNLCOCOEvaluator(ClassMappedCOCOEvaluator):
    """``TEST.EVALUATOR "LowLightNLCOCOEvaluator"``: COCO box / mask AP through
    ``TEST.LOWLIGHT_NL.CLASS_MAPPING`` (e.g. ``coco80_to_lis8``; "" scores the outputs as
    they are)."""

    def __init__(self, cfg, dataset_name, output_folder):
        super().__init__(dataset_name, cfg.TEST.LOWLIGHT_NL.CLASS_MAPPING, output_dir=output_folder)
