"""Plain-torch operations of the method (no detectron2): fusion, artifact synthesis, metrics."""

from .artifacts import (
    ARTIFACT_CLOUD,
    ARTIFACT_NAMES,
    ARTIFACT_NONE,
    ARTIFACT_OCCLUSION,
    SYNTHESIS_MODES,
    apply_artifacts,
    artifact_areas,
    cloud_alpha_masks,
    cloud_fringe_noise,
    cloud_profile,
    cloud_templates,
    occlusion_masks,
    procedural_cloud_textures,
    render_cloud_alpha,
    sample_cloud_boxes,
)
from .fusion import mean_fusion, quality_fusion, segment_ids_from_counts, segment_softmax
from .metrics import confusion_matrix, segmentation_scores
from .noise import fractal_noise, gaussian_blur, perlin_from_gradients, perlin_noise

__all__ = [
    "ARTIFACT_CLOUD",
    "ARTIFACT_NAMES",
    "ARTIFACT_NONE",
    "ARTIFACT_OCCLUSION",
    "SYNTHESIS_MODES",
    "apply_artifacts",
    "artifact_areas",
    "cloud_alpha_masks",
    "cloud_fringe_noise",
    "cloud_profile",
    "cloud_templates",
    "occlusion_masks",
    "procedural_cloud_textures",
    "render_cloud_alpha",
    "sample_cloud_boxes",
    "mean_fusion",
    "quality_fusion",
    "segment_ids_from_counts",
    "segment_softmax",
    "confusion_matrix",
    "segmentation_scores",
    "fractal_noise",
    "gaussian_blur",
    "perlin_from_gradients",
    "perlin_noise",
]
