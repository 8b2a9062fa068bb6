"""The projects of this plugin, and one place that imports and configures all of them."""

import importlib
import importlib.util
from typing import Dict, List

from detectron2.config import get_cfg

from .config import add_common_config

# (project directory, package, config function) of every project, in README order.
PROJECTS = (
    ("LowLightNL", "lowlight_nl", "add_lowlight_nl_config"),
    ("FlashAmbient", "flash_ambient", "add_flash_ambient_config"),
    ("GRMNet", "grmnet", "add_grmnet_config"),
    ("OverheadFusion", "overhead_fusion", "add_overhead_fusion_config"),
    ("ICMDepth", "icm_depth", "add_icm_depth_config"),
)


def available_projects() -> List[tuple]:
    """Returns the entries of PROJECTS whose package is installed (importable)."""
    return [p for p in PROJECTS if importlib.util.find_spec(p[1]) is not None]


def import_all_projects() -> Dict[str, object]:
    """Imports every installed project package, registering its models, datasets and evaluators.

    Returns:
        dict: package name -> imported module.
    """
    import d2common.engine  # noqa: F401  (registers PluginTrainer and the stock evaluators)

    return {pkg: importlib.import_module(pkg) for _, pkg, _ in available_projects()}


def get_plugin_cfg():
    """Returns detectron2's default config extended by the common keys and every project's keys."""
    cfg = get_cfg()
    add_common_config(cfg)
    for _, pkg, fn_name in available_projects():
        getattr(importlib.import_module(pkg), fn_name)(cfg)
    return cfg
