"""What ``make demo`` uses: DEMO_RUNS, HEADLINE_METRICS and visualize_demo."""

import cv2
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import plugin_cfg, repo_root
from flash_ambient.demo import DEMO_RUNS, HEADLINE_METRICS, visualize_demo
from flash_ambient.evaluation import METRIC_DESCRIPTIONS

from ._tiny import TINY_OPTS


def test_demo_runs_and_metrics_are_consistent():
    assert DEMO_RUNS[0][1] == "configs/FlashAmbient/demo.yaml"
    for run in DEMO_RUNS:
        assert (repo_root() / run[1]).is_file()
        plugin_cfg(run[1], run[2])
    assert [r[-1] is True for r in DEMO_RUNS] == [False, True, False]  # identity: eval only
    assert HEADLINE_METRICS == [f"flash_ambient/{k}" for k in METRIC_DESCRIPTIONS]


def test_visualize_demo_writes_panels(tmp_path):
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS + ["OUTPUT_DIR", str(tmp_path)])
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("tiny")
    cfg.MODEL.WEIGHTS = str(tmp_path / "tiny.pth")
    paths = visualize_demo(cfg, str(tmp_path / "vis"), num_images=2)
    assert len(paths) == 2
    panel = cv2.imread(paths[0])
    assert panel.shape[1] >= 4 * 24  # flash | output | ambient | attention, each >= 24 wide
