"""SketchyScene-Matching loader, template expressions, toy scenes, mapper and registration."""

from . import builtin, checks  # noqa: F401  (registers the datasets and start-up checks)
from .builtin import prepare_dataset, register_all_sketchyscene_matching
from .categories import SKETCHYSCENE_CATEGORIES, plural
from .expressions import candidate_expressions, generate_expressions, template_vocabulary
from .mapper import GRMDatasetMapper
from .sketchyscene import (
    load_sketchyscene_matching,
    read_expression_file,
    read_instances,
    read_sketch,
    referred_instances,
)
from .toy import generate_toy_dataset, render_scene

__all__ = [
    "GRMDatasetMapper",
    "SKETCHYSCENE_CATEGORIES",
    "candidate_expressions",
    "generate_expressions",
    "generate_toy_dataset",
    "load_sketchyscene_matching",
    "plural",
    "prepare_dataset",
    "read_expression_file",
    "read_instances",
    "read_sketch",
    "referred_instances",
    "register_all_sketchyscene_matching",
    "render_scene",
    "template_vocabulary",
]
