"""Every LowLightNL config loads; the paper's R50 setups build the intended backbone."""

from pathlib import Path

import pytest

from d2common.testing import plugin_cfg

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    p.relative_to(REPO).as_posix() for p in (REPO / "configs/LowLightNL").glob("*.yaml")
)


@pytest.mark.parametrize("config", CONFIGS)
def test_config_loads(config):
    cfg = plugin_cfg(config)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES > 0
    if "wnl" in Path(config).name:
        assert cfg.MODEL.BACKBONE.NAME == "build_resnet_wnl_fpn_backbone"


def test_paper_schedule():
    cfg = plugin_cfg("configs/LowLightNL/wnl-eg_R50_FPN_10ep_coco_lowlight.yaml")
    epoch = 118287 / cfg.SOLVER.IMS_PER_BATCH
    assert cfg.SOLVER.IMS_PER_BATCH == 4 and cfg.SOLVER.BASE_LR == 0.0005
    assert abs(cfg.SOLVER.MAX_ITER - 10 * epoch) < 1
    assert [round(s / epoch) for s in cfg.SOLVER.STEPS] == [3, 6, 9]
    assert cfg.MODEL.WEIGHTS.startswith("detectron2://COCO-InstanceSegmentation/mask_rcnn_R_50")
    assert cfg.MODEL.LOWLIGHT_NL.TRAIN_BACKBONE_ONLY and cfg.MODEL.LOWLIGHT_NL.STAGES == [
        "res3", "res4", "res5"
    ]  # fmt: skip


def test_r50_res2_backbone_builds():
    from detectron2.modeling import build_backbone

    cfg = plugin_cfg("configs/LowLightNL/wnl-eg-res2_R50_FPN_10ep_coco_lowlight.yaml")
    bottom_up = build_backbone(cfg).bottom_up
    widths = {k: b.inner_channels for k, b in bottom_up.nonlocal_blocks.items()}
    assert widths == {"res2": 64, "res3": 256, "res4": 512, "res5": 1024}
