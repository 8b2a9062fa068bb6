"""Dataset mapper: detectron2's ``DatasetMapper`` plus low-light synthesis / enhancement."""

import logging

from detectron2.config import configurable
from detectron2.data import DatasetMapper

from d2common.registry import DATASET_MAPPER_REGISTRY

from ..synthesis import LowLightRanges, LowLightSynthesizer, load_camera_responses
from .transforms import Enhance, RandomLowLight

logger = logging.getLogger(__name__)


def build_synthesizer(cfg) -> LowLightSynthesizer:
    """The synthesizer described by ``cfg.INPUT.LOWLIGHT_NL.SYNTHESIS``."""
    s = cfg.INPUT.LOWLIGHT_NL.SYNTHESIS
    ranges = LowLightRanges(
        alpha=tuple(s.ALPHA), beta=tuple(s.BETA), gamma=tuple(s.GAMMA),
        sig_s=tuple(s.SIG_S), sig_c=tuple(s.SIG_C),
    )  # fmt: skip
    return LowLightSynthesizer(load_camera_responses(s.CRF_PATH or None), ranges, seed=s.SEED)


@DATASET_MAPPER_REGISTRY.register()
class LowLightDatasetMapper(DatasetMapper):
    """``DatasetMapper`` whose augmentations start with the low-light ones of the config.

    Order: on-the-fly synthesis (training only, ``INPUT.LOWLIGHT_NL.SYNTHESIS.ENABLED``) on the
    full-resolution image, then the enhancer (``INPUT.LOWLIGHT_NL.ENHANCER``, training and
    test), then detectron2's resize / flip. During training an unreadable image is skipped with a
    warning (the loader draws another one); at test time it is an error naming the file.
    """

    @configurable
    def __init__(self, is_train: bool = True, **kwargs):
        super().__init__(is_train, **kwargs)
        self.num_skipped = 0

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ll = cfg.INPUT.LOWLIGHT_NL
        extra = []
        if is_train and ll.SYNTHESIS.ENABLED:
            extra.append(
                RandomLowLight(build_synthesizer(cfg), ll.SYNTHESIS.PROB, cfg.INPUT.FORMAT)
            )
        if ll.ENHANCER != "none":
            extra.append(
                Enhance(
                    ll.ENHANCER, ll.GAMMA, ll.CLAHE_CLIP_LIMIT, ll.CLAHE_TILES, cfg.INPUT.FORMAT
                )
            )
        ret["augmentations"] = extra + list(ret["augmentations"])
        return ret

    def __call__(self, dataset_dict):
        try:
            return super().__call__(dataset_dict)
        except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for broken files
            if not self.is_train:
                raise RuntimeError(f"cannot read {dataset_dict.get('file_name')}: {e}") from e
            self.num_skipped += 1
            logger.warning(
                "Skipping unreadable image %s (%s); %d skipped so far in this worker.",
                dataset_dict.get("file_name"), e, self.num_skipped,
            )  # fmt: skip
            return None
