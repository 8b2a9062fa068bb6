"""Every option and argument of the datasets/prepare_*.py scripts has help text."""

import argparse
import importlib.util

import pytest

from d2common.testing import repo_root

SCRIPTS = sorted((repo_root() / "datasets").glob("prepare_*.py"))


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_argument_has_help(script, monkeypatch):
    actions = []

    def capture(parser, args=None, namespace=None):
        actions.extend(a for a in parser._actions if not isinstance(a, argparse._HelpAction))
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    spec = importlib.util.spec_from_file_location(f"help_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(_Parsed):
        module.parse_args([])
    assert len(actions) >= 3
    assert [a.dest for a in actions if not (a.help or "").strip()] == []


def test_all_four_scripts_are_covered():
    assert [p.stem for p in SCRIPTS] == [
        "prepare_coco_lowlight",
        "prepare_flash_ambient_faid",
        "prepare_icm_depth_kitti_masks",
        "prepare_sketchyscene_matching",
    ]
