"""Dataset mapper: detectron2's ``DatasetMapper`` plus low-light synthesis / enhancement."""

from d2common.data.checked_mapper import CheckedDatasetMapper
from d2common.registry import DATASET_MAPPER_REGISTRY

from ..enhancement import ENHANCERS, LEARNED_ENHANCERS
from ..synthesis import LowLightRanges, LowLightSynthesizer, load_camera_responses
from ..zero_dce import build_zero_dce_enhancer
from ..zero_dce.transform import ZeroDCEEnhance
from .transforms import Enhance, RandomLowLight

# (height, width) below which an image is refused: it would hold less than one cell of the
# backbone's coarsest stride (32 px) before resizing. The synthesis alone needs 2x2 (Bayer).
MIN_IMAGE_SIZE = (32, 32)


def build_synthesizer(cfg) -> LowLightSynthesizer:
    """The synthesizer described by ``cfg.INPUT.LOWLIGHT_NL.SYNTHESIS``."""
    s = cfg.INPUT.LOWLIGHT_NL.SYNTHESIS
    ranges = LowLightRanges(
        alpha=tuple(s.ALPHA), beta=tuple(s.BETA), gamma=tuple(s.GAMMA),
        sig_s=tuple(s.SIG_S), sig_c=tuple(s.SIG_C),
    )  # fmt: skip
    return LowLightSynthesizer(load_camera_responses(s.CRF_PATH or None), ranges, seed=s.SEED)


def build_enhance_augmentation(cfg):
    """The augmentation of ``cfg.INPUT.LOWLIGHT_NL.ENHANCER`` (not "none"): a classic enhancer,
    or Zero-DCE++ with its weights loaded now (a missing file fails here, before any image)."""
    ll = cfg.INPUT.LOWLIGHT_NL
    if ll.ENHANCER in LEARNED_ENHANCERS:
        return ZeroDCEEnhance(build_zero_dce_enhancer(cfg), cfg.INPUT.FORMAT)
    if ll.ENHANCER not in ENHANCERS:
        raise ValueError(
            f"INPUT.LOWLIGHT_NL.ENHANCER {ll.ENHANCER!r} is not one of "
            f"{ENHANCERS + LEARNED_ENHANCERS}"
        )
    return Enhance(ll.ENHANCER, ll.GAMMA, ll.CLAHE_CLIP_LIMIT, ll.CLAHE_TILES, cfg.INPUT.FORMAT)


@DATASET_MAPPER_REGISTRY.register()
class LowLightDatasetMapper(CheckedDatasetMapper):
    """``DatasetMapper`` whose augmentations start with the low-light ones of the config.

    Order: on-the-fly synthesis (training only, ``INPUT.LOWLIGHT_NL.SYNTHESIS.ENABLED``) on the
    full-resolution image, then the enhancer (``INPUT.LOWLIGHT_NL.ENHANCER``: gamma, CLAHE or
    Zero-DCE++; training and test), then detectron2's resize / flip. Every image is fully
    decoded; one that is missing, truncated, corrupt, smaller than ``MIN_IMAGE_SIZE`` or of
    another size than its record says is skipped in training with a warning and a count (the
    loader draws another one) and raises :class:`~d2common.data.validation.BadSampleError`
    naming the file in testing.
    """

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
            extra.append(build_enhance_augmentation(cfg))
        ret["augmentations"] = extra + list(ret["augmentations"])
        ret["min_image_size"] = MIN_IMAGE_SIZE
        return ret
