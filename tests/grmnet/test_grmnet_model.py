"""GRMNet builds from its configs, trains one step with backward and runs inference on CPU."""

import glob
import os

import pytest
import torch
from detectron2.modeling import build_model

from d2common.testing import plugin_cfg, repo_root, run_train_steps

TINY = [
    "MODEL.DEVICE", "cpu",
    "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "30", "MODEL.RPN.POST_NMS_TOPK_TEST", "20",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
]  # fmt: skip


def tiny_cfg(tmp_path, toy_root, monkeypatch, *opts):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(toy_root))
    cfg = plugin_cfg("configs/GRMNet/demo.yaml", TINY + ["OUTPUT_DIR", str(tmp_path)] + list(opts))
    cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE = str(toy_root / "toy" / "grmnet" / "vocab.txt")
    return cfg


def all_configs():
    root = repo_root()
    return sorted(
        os.path.relpath(p, root)
        for p in glob.glob(str(root / "configs" / "GRMNet" / "**" / "*.yaml"), recursive=True)
        if "studies" not in os.path.relpath(p, root).split(os.sep)  # multi-seed study files
    )


@pytest.mark.parametrize("config", all_configs())
def test_every_config_loads(config):
    cfg = plugin_cfg(config)
    assert cfg.MODEL.META_ARCHITECTURE == "GRMNet"
    assert cfg.INPUT.RANDOM_FLIP == "none"
    assert cfg.MODEL.GRMNET.GRM.MANNER in ("consistency", "distance")


def test_wrong_key_fails():
    with pytest.raises((KeyError, AssertionError), match="TOPK"):
        plugin_cfg("configs/GRMNet/demo.yaml", ["MODEL.GRMNET.GRM.TOPK", "3"])


def test_paper_config_builds_on_cpu():
    cfg = plugin_cfg(
        "configs/GRMNet/grmnet_R50_FPN_270k_sketchyscene.yaml",
        ["MODEL.DEVICE", "cpu", "MODEL.GRMNET.LANGUAGE.VOCAB_FILE", _real_vocab_or_skip()],
    )
    model = build_model(cfg)
    # box head input: 256 FPN + 512 language + 10 * 5 references + 5 absolute
    assert model.roi_heads.box_head.fc1.in_features == (256 + 512 + 55) * 7 * 7
    assert model.proposal_generator.rpn_head.conv.in_channels == 256 + 512


def _real_vocab_or_skip():
    from d2common.testing import shared_data

    return str(shared_data("sketchyscene_matching") / "vocab.txt")


@pytest.mark.parametrize(
    "opts",
    [
        [],
        ["MODEL.GRMNET.GRM.TOP_K", "0", "MODEL.GRMNET.GRM.ABSOLUTE", "False"],
        ["MODEL.GRMNET.GRM.MANNER", "distance", "MODEL.GRMNET.GRM.RELATIVE", "center3"],
    ],
    ids=["grm", "no-grm", "distance-3d"],
)
def test_train_step_and_inference(tmp_path, registered_toy, monkeypatch, opts):
    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch, *opts)
    trainer, storage = run_train_steps(cfg, 1)
    losses = {k: v for k, v in storage.latest().items() if k.startswith("loss_")}
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v[0])) for v in losses.values())
    grads = [p.grad for p in trainer.model.language_encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads), "no gradient reached the BiLSTM"

    model = trainer.model.eval()
    image = torch.full((3, 90, 120), 255.0)
    image[:, 30:60, 20:50] = 0
    with torch.no_grad():
        out = model([{"image": image, "expression_tokens": torch.tensor([2, 3] + [0] * 13)}])
    inst = out[0]["instances"]
    assert inst.image_size == (90, 120)
    assert inst.has("pred_masks") and inst.has("pred_boxes") and inst.has("pred_classes")
    assert inst.pred_masks.shape[1:] == (90, 120)


def test_inference_with_empty_expression_and_odd_sizes(tmp_path, registered_toy, monkeypatch):
    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch)
    model = build_model(cfg).eval()
    inputs = [
        {
            "image": torch.rand(3, 77, 101) * 255,
            "expression_tokens": torch.zeros(15, dtype=torch.long),
        },
        {
            "image": torch.rand(3, 64, 64) * 255,
            "expression_tokens": torch.ones(15, dtype=torch.long),
        },
    ]
    with torch.no_grad():
        out = model(inputs)
    assert [o["instances"].image_size for o in out] == [(77, 101), (64, 64)]
    with pytest.raises(KeyError, match="expression_tokens"):
        model([{"image": torch.rand(3, 64, 64)}])
