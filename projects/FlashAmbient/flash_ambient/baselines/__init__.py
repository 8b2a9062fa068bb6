"""Table 1's classical baselines in Python: LIME (Guo et al. 2017) and SRIE (Fu et al. 2016)."""

from .lime import lime_enhance, lime_illumination, lime_weights
from .srie import srie_decompose, srie_enhance

__all__ = [
    "lime_enhance",
    "lime_illumination",
    "lime_weights",
    "srie_decompose",
    "srie_enhance",
]
