"""The authors' fusion blocks, language encoder and training-time references (config options)."""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances

from d2common.testing import plugin_cfg, run_train_steps
from grmnet.language import LanguageEncoder
from grmnet.modeling.fusion import AuthorsRoIFusion, AuthorsRPNFusion, coordinate_channels
from grmnet.modeling.roi_heads import FusionInputs, GRMROIHeads
from grmnet.ops import select_references

from .test_grmnet_model import _real_vocab_or_skip, tiny_cfg


def test_coordinate_channels_hand_computed():
    c = coordinate_channels(2, 4, torch.zeros(1))
    assert c.shape == (8, 2, 4)
    assert c[0, 0].tolist() == [-1.0, -0.5, 0.0, 0.5] and c[2, 1].tolist() == [-0.5, 0, 0.5, 1]
    assert c[1, :, 0].tolist() == [-1.0, 0.0] and c[3, :, 3].tolist() == [0.0, 1.0]
    assert c[4, 0].tolist() == [-0.75, -0.25, 0.25, 0.75] and c[5, :, 2].tolist() == [-0.5, 0.5]
    assert (c[6] == 0.25).all() and (c[7] == 0.5).all()


def test_authors_fusion_blocks_are_unit_norm_and_read_the_sentence():
    torch.manual_seed(0)
    rpn = AuthorsRPNFusion(channels=6, language_dim=5, mlp_dim=4).eval()
    feature, language = torch.rand(2, 6, 3, 5), torch.randn(2, 5)
    out = rpn(feature, language)
    assert out.shape == (2, 6, 3, 5)
    norms = out.norm(dim=1)
    assert torch.allclose(norms[norms > 0], torch.ones_like(norms[norms > 0]))
    assert not torch.allclose(out, rpn(feature, language.flip(0)))
    roi = AuthorsRoIFusion(in_channels=9, out_channels=6).eval()
    assert roi(torch.rand(4, 9, 7, 7)).shape == (4, 6, 7, 7)
    assert roi(torch.rand(0, 9, 7, 7)).shape == (0, 6, 7, 7)


@pytest.mark.parametrize("mlp_dim", [0, 8])
def test_language_pooling_against_unpadded_lstm_runs(mlp_dim):
    torch.manual_seed(0)
    tokens = torch.tensor([[4, 2, 7, 0, 0], [3, 0, 0, 0, 0], [5, 6, 2, 3, 1]])
    encoders = {
        p: LanguageEncoder(vocab_size=9, embed_dim=6, hidden_dim=5, mlp_dim=mlp_dim, pooling=p)
        for p in ("final_states", "last_token")
    }
    encoders["last_token"].load_state_dict(encoders["final_states"].state_dict())
    enc = encoders["final_states"]
    for n, row in enumerate(tokens):
        words = row[row != 0][None]
        x = enc.embedding(words)
        x = enc.mlp(x) if enc.mlp is not None else x
        outputs, _ = enc.lstm(x)  # (1, T, 2H), no padding at all
        h = enc.lstm.hidden_size
        final = torch.cat([outputs[0, -1, :h], outputs[0, 0, h:]])
        torch.testing.assert_close(encoders["final_states"](tokens)[n], final)
        torch.testing.assert_close(encoders["last_token"](tokens)[n], outputs[0, -1])
    with pytest.raises(ValueError, match="POOLING"):
        LanguageEncoder(vocab_size=9, pooling="mean")


def test_sampled_pool_gives_the_first_sampled_rois():
    sampled = Instances((100, 100))
    boxes = torch.tensor([[10.0 * i, 0, 10.0 * i + 8, 8] for i in range(6)])
    sampled.proposal_boxes = Boxes(boxes)
    dummy = FusionInputs(None, None, None, None, torch.tensor([[100.0, 100.0]]))
    pool = GRMROIHeads.sampled_pool([sampled], dummy)
    refs, valid = select_references(
        boxes[2:3], torch.zeros(1, dtype=torch.long), pool.pool_boxes, pool.pool_scores,
        pool.pool_valid, 3, "consistency",
    )  # fmt: skip
    assert refs[0][valid[0]].tolist() == boxes[[0, 1, 3]].tolist()


AUTHORS = [
    "MODEL.GRMNET.FUSION", "authors", "MODEL.GRMNET.FUSION_MLP_DIM", "16",
    "MODEL.GRMNET.LANGUAGE.MLP_DIM", "16", "MODEL.GRMNET.LANGUAGE.POOLING", "last_token",
    "MODEL.GRMNET.GRM.TRAIN_POOL", "sampled",
]  # fmt: skip


def test_authors_setup_trains_and_infers(tmp_path, registered_toy, monkeypatch):
    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch, *AUTHORS)
    trainer, storage = run_train_steps(cfg, 1)
    losses = {k: v[0] for k, v in storage.latest().items() if k.startswith("loss_")}
    assert len(losses) == 5 and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    model = trainer.model
    c = cfg.MODEL.FPN.OUT_CHANNELS
    assert model.proposal_generator.rpn_head.conv.in_channels == c
    assert model.roi_heads.mask_head.mask_fcn1.in_channels == c  # the mask head fuses nothing
    assert model.roi_heads.box_fusion.block.weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 90, 120) * 255, "expression_tokens": torch.tensor(
            [2, 3] + [0] * 13)}])  # fmt: skip
    assert out[0]["instances"].pred_masks.shape[1:] == (90, 120)


def test_authors_paper_size_config_builds():
    cfg = plugin_cfg(
        "configs/GRMNet/grmnet-center_R50_FPN_262k_sketchyscene.yaml",
        ["MODEL.DEVICE", "cpu", "MODEL.GRMNET.LANGUAGE.VOCAB_FILE", _real_vocab_or_skip()],
    )
    model = build_model(cfg)
    assert model.language_encoder.output_dim == 1024
    assert model.language_encoder.lstm.input_size == 512
    assert model.roi_heads.box_head.fc1.in_features == 256 * 7 * 7
    assert model.roi_heads.box_fusion.block.in_channels == 256 + 1024 + 55
    assert model.proposal_generator.rpn_head.conv.in_channels == 256
