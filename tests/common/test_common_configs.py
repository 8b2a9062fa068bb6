"""Every config loads, every project's keys coexist, registry names are prefixed per project."""

import importlib
from pathlib import Path

import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, ROI_HEADS_REGISTRY

from d2common import DATASET_MAPPER_REGISTRY, EVALUATOR_REGISTRY, TRAINER_REGISTRY
from d2common.config import add_common_config
from d2common.projects import available_projects, get_plugin_cfg, import_all_projects
from d2common.testing import plugin_cfg, repo_root

# configs/<Project>/studies/ hold multi-seed study files (lists of arms), not model configs.
CONFIG_FILES = sorted(
    str(p.relative_to(repo_root()))
    for p in (repo_root() / "configs").rglob("*.yaml")
    if "studies" not in p.relative_to(repo_root()).parts
)
# Registry-name markers of each project package (the backbone name of LowLightNL is fixed by
# its users' configs: build_resnet_wnl_fpn_backbone).
PREFIXES = {
    "lowlight_nl": ("LowLight", "wnl"),
    "flash_ambient": ("FlashAmbient",),
    "grmnet": ("GRM",),
    "overhead_fusion": ("Overhead",),
    "icm_depth": ("ICM",),
}


def _flatten(node, prefix=""):
    out = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if hasattr(value, "items"):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


@pytest.mark.parametrize("config_file", CONFIG_FILES)
def test_config_loads(config_file):
    cfg = plugin_cfg(config_file)
    assert cfg.TRAINER.NAME in TRAINER_REGISTRY
    assert cfg.TEST.EVALUATOR in EVALUATOR_REGISTRY
    assert cfg.INPUT.DATASET_MAPPER in DATASET_MAPPER_REGISTRY
    assert cfg.MODEL.META_ARCHITECTURE in META_ARCH_REGISTRY


@pytest.mark.parametrize("config_file", [f for f in CONFIG_FILES if f.endswith("demo.yaml")])
def test_demo_configs_name_registered_datasets(config_file):
    import_all_projects()
    cfg = plugin_cfg(config_file)
    for name in cfg.DATASETS.TRAIN + cfg.DATASETS.TEST:
        assert name in DatasetCatalog.list(), f"{config_file}: dataset {name} is not registered"


def test_unknown_config_key_fails_at_startup(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('_BASE_: "%s"\nMODEL:\n  NOT_A_KEY: 1\n' % (repo_root() / CONFIG_FILES[0]))
    with pytest.raises(KeyError, match="NOT_A_KEY"):
        plugin_cfg(str(bad))


def test_project_configs_coexist_without_overwriting():
    import_all_projects()
    combined = _flatten(get_plugin_cfg())
    for _, package, fn_name in available_projects():
        alone = get_cfg()
        add_common_config(alone)
        getattr(importlib.import_module(package), fn_name)(alone)
        for key, value in _flatten(alone).items():
            assert key in combined, f"{package}: key {key} missing from the combined config"
            assert (
                combined[key] == value
            ), f"{key}: {package} sets {value}, combined has {combined[key]}"


@pytest.mark.parametrize(
    "registry",
    [
        META_ARCH_REGISTRY,
        BACKBONE_REGISTRY,
        ROI_HEADS_REGISTRY,
        TRAINER_REGISTRY,
        EVALUATOR_REGISTRY,
        DATASET_MAPPER_REGISTRY,
    ],
    ids=lambda r: r._name,
)
def test_registry_names_are_prefixed_per_project(registry):
    import_all_projects()
    for name, obj in registry:
        package = obj.__module__.split(".")[0]
        if package in PREFIXES:
            markers = PREFIXES[package]
            assert any(m.lower() in name.lower() for m in markers), f"{registry._name}: {name}"


def test_every_project_has_demo_config_and_readme():
    for project_dir, package, _ in available_projects():
        assert (repo_root() / "configs" / project_dir / "demo.yaml").exists()
        assert (repo_root() / "projects" / project_dir / "README.md").exists()
        demo = importlib.import_module(f"{package}.demo")
        assert demo.DEMO_RUNS and demo.HEADLINE_METRICS and callable(demo.visualize_demo)
        for run in demo.DEMO_RUNS:
            assert Path(repo_root() / run[1]).exists(), run
