"""Zero-DCE++ as a detectron2 augmentation (train and test), like the classic enhancers."""

from detectron2.data import transforms as T

from ..data.transforms import _check_format, _PhotometricTransform
from .enhancer import ZeroDCEEnhancer


class ZeroDCETransform(_PhotometricTransform):
    """Zero-DCE++ enhancement of the image; geometry is unchanged."""

    def __init__(self, enhancer: ZeroDCEEnhancer, image_format: str = "BGR"):
        super().__init__()
        self._set_attributes(locals())
        _check_format(image_format)

    def apply_rgb(self, rgb):
        return self.enhancer(rgb)


class ZeroDCEEnhance(T.Augmentation):
    """Deterministic augmentation wrapping :class:`ZeroDCETransform`."""

    def __init__(self, enhancer: ZeroDCEEnhancer, image_format: str = "BGR"):
        super().__init__()
        self._init(locals())
        _check_format(image_format)

    def get_transform(self, image) -> ZeroDCETransform:
        return ZeroDCETransform(self.enhancer, self.image_format)
