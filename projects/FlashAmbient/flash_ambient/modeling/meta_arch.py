"""Meta-architectures: the flash -> ambient generator, the DeepFlash baseline, the identity."""

import logging
from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..ops import attention_map, bilateral_filter, bilateral_filter_authors
from .registry import build_flash_ambient_generator

logger = logging.getLogger(__name__)

BILATERAL_FILTERS = {"opencv": bilateral_filter, "authors": bilateral_filter_authors}


class _ImageToImage(nn.Module):
    """Shared input handling: ``batched_inputs[i]["image"]`` (flash) and ``["ambient"]`` are
    (3, H, W) RGB tensors on the 0-255 scale; the networks see [0, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)

    @property
    def device(self):
        return self._device_anchor.device

    def _stack(self, batched_inputs, key) -> Optional[torch.Tensor]:
        if key not in batched_inputs[0]:
            return None
        return torch.stack([x[key].to(self.device) for x in batched_inputs]).float() / 255.0

    def predict(self, flash: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) flash images in [0, 1] -> (N, 3, H, W) ambient images in [0, 1]."""
        raise NotImplementedError

    def inference(self, batched_inputs: List[dict]) -> List[Dict[str, torch.Tensor]]:
        """Returns ``[{"ambient": (3, H, W) float in [0, 1]}]``, one per input."""
        results = []
        # Test batches may mix landscape and portrait images: run each size separately.
        for x in batched_inputs:
            flash = self._stack([x], "image")
            results.append({"ambient": self.predict(flash)[0]})
        return results


@META_ARCH_REGISTRY.register()
class FlashAmbientTranslator(_ImageToImage):
    """The generator G of the attention-guided cGAN (Chávez et al. 2020).

    Training: ``forward`` returns the tensors of the objective (the trainer's
    ``FlashAmbientGANLoss`` turns them into weighted losses, since the adversarial term needs the
    separately optimised discriminator): ``{"flash", "target", "fake", "attention"}``, all
    (N, C, H, W) in [0, 1], ``attention`` (N, 1, H, W) or None when neither loss term uses it.
    Inference: ``[{"ambient": (3, H, W)}]``.
    """

    @configurable
    def __init__(self, *, generator: nn.Module, attention: bool = True):
        """
        Args:
            generator: (N, 3, H, W) -> (N, 3, H, W) network.
            attention: compute M = 1 - mean_c |I_a - I_f| (Eq. 1) for the losses.
        """
        super().__init__()
        self.generator = generator
        self.attention = attention

    @classmethod
    def from_config(cls, cfg):
        g = cfg.MODEL.FLASH_AMBIENT.GENERATOR
        if g.FREEZE_ENCODER and not cfg.MODEL.WEIGHTS and g.NAME == "FlashAmbientVGG16UNet":
            logger.warning(
                "GENERATOR.FREEZE_ENCODER is on but MODEL.WEIGHTS is empty: the frozen VGG-16 "
                "encoder keeps its random initialisation (see tools/convert_vgg16.py)."
            )
        return {
            "generator": build_flash_ambient_generator(cfg),
            "attention": cfg.MODEL.FLASH_AMBIENT.ATTENTION_G or cfg.MODEL.FLASH_AMBIENT.ATTENTION_D,
        }

    def prepare_training(self, flash, ambient, batched_inputs=None):
        """Returns (network input, regression target) for a training batch."""
        return flash, ambient

    def predict(self, flash):
        return self.generator(flash)

    def forward(self, batched_inputs: List[dict]):
        if not self.training:
            return self.inference(batched_inputs)
        flash = self._stack(batched_inputs, "image")
        ambient = self._stack(batched_inputs, "ambient")
        if ambient is None:
            raise ValueError("FlashAmbientTranslator: training inputs need an 'ambient' image")
        net_input, target = self.prepare_training(flash, ambient, batched_inputs)
        return {
            "flash": flash,
            "target": target,
            "fake": self.generator(net_input),
            "attention": attention_map(ambient, flash) if self.attention else None,
        }


@META_ARCH_REGISTRY.register()
class FlashAmbientDeepFlash(FlashAmbientTranslator):
    """DeepFlash baseline (Capece et al. 2019) with the same encoder-decoder.

    The generator sees the bilateral-filtered flash image and regresses
    ``(flash_bf - ambient_bf) / 2``; the prediction is ``clamp(flash - 2 * G(flash_bf), 0, 1)``,
    which keeps the flash image's high frequencies. Use a "tanh" output activation.

    ``bilateral="opencv"`` filters in the model (OpenCV's filter, on the training crop);
    ``"authors"`` uses the authors' filter, which the mapper applies to the full training image
    before cropping (inputs ``image_bf`` / ``ambient_bf``, uint8); inference filters the full
    image in the model with either.
    """

    @configurable
    def __init__(
        self, *, diameter=7, sigma_space=7.0, sigma_range=102.0, bilateral="opencv", **kwargs
    ):
        super().__init__(**kwargs)
        if bilateral not in BILATERAL_FILTERS:
            raise ValueError(
                f"DEEPFLASH.FILTER must be one of {sorted(BILATERAL_FILTERS)}: {bilateral!r}"
            )
        self.bilateral = BILATERAL_FILTERS[bilateral]
        self.filter_args = dict(diameter=diameter, sigma_space=sigma_space, sigma_range=sigma_range)

    @classmethod
    def from_config(cls, cfg):
        d = cfg.MODEL.FLASH_AMBIENT.DEEPFLASH
        ret = super().from_config(cfg)
        ret.update(diameter=d.FILTER_DIAMETER, sigma_space=d.SIGMA_SPACE, sigma_range=d.SIGMA_RANGE)
        ret["bilateral"] = d.FILTER
        return ret

    def _filter(self, images):
        return self.bilateral(images * 255.0, **self.filter_args) / 255.0

    def _filtered(self, images, batched_inputs, key):
        """The mapper's pre-crop filtered images when it made them, else ``_filter(images)``."""
        if batched_inputs is not None and key in batched_inputs[0]:
            return self._stack(batched_inputs, key)
        return self._filter(images)

    def prepare_training(self, flash, ambient, batched_inputs=None):
        flash_bf = self._filtered(flash, batched_inputs, "image_bf")
        return flash_bf, (flash_bf - self._filtered(ambient, batched_inputs, "ambient_bf")) / 2.0

    def predict(self, flash):
        return (flash - 2.0 * self.generator(self._filter(flash))).clamp(0.0, 1.0)


@META_ARCH_REGISTRY.register()
class FlashAmbientIdentity(_ImageToImage):
    """Baseline that returns the flash image unchanged (evaluation only, no parameters)."""

    @configurable
    def __init__(self):
        super().__init__()

    @classmethod
    def from_config(cls, cfg):
        return {}

    def predict(self, flash):
        return flash

    def forward(self, batched_inputs):
        if self.training:
            raise RuntimeError("FlashAmbientIdentity has nothing to train: use --eval-only")
        return self.inference(batched_inputs)


@META_ARCH_REGISTRY.register()
class FlashAmbientEnhancer(_ImageToImage):
    """A training-free low-light enhancer applied to the flash image: Table 1's LIME or SRIE
    (``flash_ambient.baselines``; evaluation only, no parameters)."""

    @configurable
    def __init__(self, *, method: str = "lime", params: Optional[dict] = None):
        """
        Args:
            method: "lime" or "srie".
            params: keyword arguments of ``lime_enhance`` / ``srie_enhance``.
        """
        super().__init__()
        from ..baselines import lime_enhance, srie_enhance

        methods = {"lime": lime_enhance, "srie": srie_enhance}
        if method not in methods:
            raise ValueError(f"ENHANCER.NAME must be one of {sorted(methods)}: {method!r}")
        self.method = method
        self.enhance = methods[method]
        self.params = dict(params or {})

    @classmethod
    def from_config(cls, cfg):
        e = cfg.MODEL.FLASH_AMBIENT.ENHANCER
        if e.NAME == "lime":
            params = dict(alpha=e.LIME_ALPHA, sigma=e.LIME_SIGMA, gamma=e.LIME_GAMMA)
        else:
            params = dict(c1=e.SRIE_C1, c2=e.SRIE_C2, lam=e.SRIE_LAMBDA, gamma=e.SRIE_GAMMA)
            params.update(tol=e.SRIE_TOL, max_iter=e.SRIE_MAX_ITER)
        return {"method": e.NAME, "params": params}

    def predict(self, flash):
        out = []
        for image in flash:
            rgb = image.permute(1, 2, 0).double().cpu().numpy()
            enhanced = torch.from_numpy(self.enhance(rgb, **self.params)).permute(2, 0, 1)
            out.append(enhanced.to(flash.dtype))
        return torch.stack(out).to(flash.device)

    def forward(self, batched_inputs):
        if self.training:
            raise RuntimeError(f"{self.method} has nothing to train: use --eval-only")
        return self.inference(batched_inputs)
