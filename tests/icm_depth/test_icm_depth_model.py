"""ICMDepth model: configs load, tiny models train one step and infer, on the toy data."""

import glob
import os

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from d2common.testing import plugin_cfg, repo_root, run_train_steps
from icm_depth.modeling import IndependentClusterDecoder, SequentialClusterDecoder
from icm_depth.ops import sine_position_encoding

CONFIGS = sorted(
    os.path.relpath(p, repo_root()) for p in glob.glob(str(repo_root() / "configs/ICMDepth/*.yaml"))
)
TINY = [
    "MODEL.DEVICE", "cpu",
    "MODEL.ICM_DEPTH.DIM", "16",
    "MODEL.ICM_DEPTH.NUM_CLUSTERS", "4",
    "MODEL.ICM_DEPTH.MLP_RATIO", "1.0",
    "MODEL.ICM_DEPTH.NECK_NORM", "",
    "MODEL.ICM_DEPTH.SWIN.EMBED_DIM", "8",
    "MODEL.ICM_DEPTH.SWIN.DEPTHS", "[1, 1, 1, 1]",
    "MODEL.ICM_DEPTH.SWIN.NUM_HEADS", "[1, 1, 2, 2]",
    "MODEL.ICM_DEPTH.SWIN.WINDOW_SIZE", "4",
    "SOLVER.IMS_PER_BATCH", "2",
    "DATALOADER.NUM_WORKERS", "0",
]  # fmt: skip


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "datasets"))
    return tmp_path


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_loads(config):
    cfg = plugin_cfg(config)
    assert cfg.MODEL.META_ARCHITECTURE == "ICMDepthEstimator"
    assert cfg.TEST.EVALUATOR == "ICMDepthEvaluator"


def test_wrong_key_fails_at_start_up():
    with pytest.raises((KeyError, AssertionError), match="NUM_CLUSTER"):
        plugin_cfg("configs/ICMDepth/demo.yaml", ["MODEL.ICM_DEPTH.NUM_CLUSTER", "8"])


def test_paper_config_values():
    cfg = plugin_cfg("configs/ICMDepth/icm_swinL_40k_kitti.yaml")
    m = cfg.MODEL.ICM_DEPTH
    assert (m.DIM, m.NUM_CLUSTERS, m.CLUSTER_UPDATE) == (256, 32, "sequential")
    assert (m.SWIN.EMBED_DIM, tuple(m.SWIN.DEPTHS)) == (192, (2, 2, 18, 2))
    assert (m.LOSS.FUZZINESS, tuple(m.LOSS.ICM_LEVELS)) == (2.0, (1, 2, 3))
    # The weight chosen from the measured loss balance at 352 x 1216 (README, "Loss balance").
    assert (m.LOSS.ICM_WEIGHT, m.LOSS.ICM_NORMALIZER) == (0.02, "matched")
    iii = plugin_cfg("configs/ICMDepth/tableV_III_icm_R50_40k_cityscapes_dvps.yaml")
    assert iii.MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT == 0.02
    ablation = {
        "I": plugin_cfg("configs/ICMDepth/tableV_I_idisc_like_R50_40k_cityscapes_dvps.yaml"),
        "II": plugin_cfg("configs/ICMDepth/tableV_II_sequential_R50_40k_cityscapes_dvps.yaml"),
        "III": plugin_cfg("configs/ICMDepth/tableV_III_icm_R50_40k_cityscapes_dvps.yaml"),
    }
    got = {
        k: (c.MODEL.ICM_DEPTH.CLUSTER_UPDATE, c.MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT > 0)
        for k, c in ablation.items()
    }
    assert got == {
        "I": ("independent", False),
        "II": ("sequential", False),
        "III": ("sequential", True),
    }


@pytest.mark.parametrize("update", ["sequential", "independent"])
def test_train_step_and_inference_on_toy_data(toy_root, update):
    cfg = plugin_cfg(
        "configs/ICMDepth/demo.yaml",
        TINY + ["MODEL.ICM_DEPTH.CLUSTER_UPDATE", update, "OUTPUT_DIR", str(toy_root / "out")],
    )
    trainer, storage = run_train_steps(cfg, 1)
    losses = {k: v for k, v in storage.latest().items() if k.startswith("loss_")}
    assert set(losses) == {"loss_silog", "loss_icm_f1", "loss_icm_f2", "loss_icm_f3"}
    assert all(torch.isfinite(torch.tensor(v[0])) for v in losses.values())

    model = trainer.model.eval()
    inputs = [
        {
            "image": torch.randint(0, 255, (3, 45, 70), dtype=torch.uint8),
            "height": 90,
            "width": 140,
        },
        {"image": torch.randint(0, 255, (3, 64, 33), dtype=torch.uint8)},
    ]
    with torch.no_grad():
        outputs = model(inputs)
    assert outputs[0]["depth"].shape == (90, 140)
    assert outputs[1]["depth"].shape == (64, 33)
    assert (outputs[0]["depth"] > 0).all()
    assert [tuple(m.shape) for m in outputs[0]["cluster_maps"]] == [(3, 5), (6, 9), (12, 18)]
    assert int(outputs[1]["cluster_maps"][2].max()) < 4


def _tiny_model(extra=()):
    cfg = plugin_cfg("configs/ICMDepth/demo.yaml", TINY + list(extra))
    return build_model(cfg)


def test_batch_with_empty_instances_and_no_icm_keys_without_icm():
    model = _tiny_model()
    model.train()
    depth = torch.rand(40, 56) * 20 + 1
    ids = torch.zeros(40, 56, dtype=torch.long)
    with_inst = ids.clone()
    with_inst[10:20, 10:30] = 1
    batch = [
        {"image": torch.rand(3, 40, 56) * 255, "depth": depth, "instance_ids": ids},
        {
            "image": torch.rand(3, 33, 50) * 255,
            "depth": depth[:33, :50],
            "instance_ids": with_inst[:33, :50],
        },
    ]
    with EventStorage(0):
        losses = model(batch)
        sum(losses.values()).backward()
    assert model.decoder.clusters.grad is not None
    assert torch.isfinite(model.decoder.clusters.grad).all()

    no_icm = _tiny_model(["MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT", "0.0"])
    no_icm.train()
    with EventStorage(0):
        assert set(no_icm(batch)) == {"loss_silog"}


def test_resnet_backbone_gives_f1_f2_f3():
    cfg = plugin_cfg(
        "configs/ICMDepth/tableV_III_icm_R50_40k_cityscapes_dvps.yaml",
        [
            "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu",
            "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
            "MODEL.RESNETS.STEM_OUT_CHANNELS", "16", "MODEL.ICM_DEPTH.DIM", "16",
            "MODEL.ICM_DEPTH.NECK_NORM", "",
        ],
    )  # fmt: skip
    model = build_model(cfg).eval()
    feats = model.backbone(torch.rand(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "F1": (1, 16, 4, 6), "F2": (1, 16, 8, 12), "F3": (1, 16, 16, 24),
    }  # fmt: skip


def test_decoders_return_attention_per_level():
    feats = [torch.randn(2, 8, h, w) for h, w in [(2, 3), (4, 6), (8, 12)]]
    for cls in (SequentialClusterDecoder, IndependentClusterDecoder):
        depth, attns = cls(dim=8, num_clusters=5, mlp_ratio=0)(feats, [None] * 3)
        assert depth.shape == (2, 1, 8, 12) and (depth > 0).all()
        assert [tuple(a.shape) for a in attns] == [(2, 5, 6), (2, 5, 24), (2, 5, 96)]
        torch.testing.assert_close(attns[0].sum(1), torch.ones(2, 6))


def test_sequential_update_carries_clusters_across_scales():
    torch.manual_seed(0)
    dec = SequentialClusterDecoder(dim=8, num_clusters=3, mlp_ratio=0)
    feats = [torch.randn(1, 8, h, w) for h, w in [(2, 2), (4, 4), (8, 8)]]
    _, attn_a = dec(feats, [None] * 3)
    feats[0] = torch.randn(1, 8, 2, 2)  # only F1 changes
    _, attn_b = dec(feats, [None] * 3)
    # A1 at F3 depends on F1 through the sequentially updated clusters.
    assert not torch.allclose(attn_a[2], attn_b[2])


def test_optimizer_is_adamw_with_smaller_encoder_lr(toy_root):
    from icm_depth.engine import ICMDepthTrainer

    cfg = plugin_cfg(
        "configs/ICMDepth/demo.yaml", TINY + ["SOLVER.ICM_DEPTH.ENCODER_LR_FACTOR", "0.1"]
    )
    model = build_model(cfg)
    opt = ICMDepthTrainer.build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.AdamW)
    enc = {id(p) for p in model.backbone.encoder.parameters()}
    lrs = {g["lr"] for g in opt.param_groups if any(id(p) in enc for p in g["params"])}
    assert lrs == {cfg.SOLVER.BASE_LR * 0.1}


def test_converted_swin_checkpoint_loads_into_the_encoder(tmp_path):
    """A Swin checkpoint converted the Mask2Former way (bare Swin keys, matching heuristics)."""
    import pickle

    from detectron2.checkpoint import DetectionCheckpointer

    model = _tiny_model()
    swin = {k: v.clone().fill_(0.5).numpy() for k, v in model.backbone.encoder.state_dict().items()}
    path = tmp_path / "swin.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": swin, "__author__": "third_party", "matching_heuristics": True}, f)
    DetectionCheckpointer(model).load(str(path))
    weight = model.backbone.encoder.patch_embed.proj.weight
    assert torch.all(weight == 0.5)
    assert not torch.all(model.backbone.lateral[0].weight == 0.5)


def _frame(seed, size=(40, 56), instances=True, depth_valid=True):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    depth = torch.rand(h, w, generator=g) * 20 + 1
    ids = torch.zeros(h, w, dtype=torch.long)
    if instances:
        ids[5:20, 8:30] = 1
        ids[22:38, 30:50] = 2
        depth[ids == 1] = 6.0 + torch.rand(int((ids == 1).sum()), generator=g)
    if not depth_valid:
        depth[:] = 0
    return {"image": torch.rand(3, h, w, generator=g) * 255, "depth": depth, "instance_ids": ids}


def test_model_losses_average_over_the_frames_that_contribute():
    """A frame without instances and one without valid depth do not pull the means to 0."""
    torch.manual_seed(0)
    model = _tiny_model()
    model.train()
    valid = [_frame(1), _frame(2)]
    no_instances, no_depth = _frame(3, instances=False), _frame(4, depth_valid=False)
    with EventStorage(0), torch.no_grad():
        two_valid = model(valid)
        mixed = model(valid + [no_instances, no_depth])
        silog_with_x = model(valid + [no_instances])["loss_silog"]
        alone = model([no_instances, no_depth])
    for key in ("loss_icm_f1", "loss_icm_f2", "loss_icm_f3"):
        torch.testing.assert_close(mixed[key], two_valid[key], rtol=1e-5, atol=1e-6)
        assert float(alone[key]) == 0.0
    # SI_log: the frame without instances has valid depth and counts; the empty one does not.
    torch.testing.assert_close(mixed["loss_silog"], silog_with_x, rtol=1e-5, atol=1e-6)
    with EventStorage(0), torch.no_grad():
        only_x = model([no_instances])["loss_silog"]
    torch.testing.assert_close(alone["loss_silog"], only_x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("update", ["sequential", "independent"])
def test_weight_decay_is_selected_by_full_parameter_name(update):
    from icm_depth.engine import ICMDepthTrainer

    cfg = plugin_cfg(
        "configs/ICMDepth/demo.yaml", TINY + ["MODEL.ICM_DEPTH.CLUSTER_UPDATE", update]
    )
    model = build_model(cfg)
    opt = ICMDepthTrainer.build_optimizer(cfg, model)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    clusters = [n for n in names if n.startswith("decoder.clusters")]
    expected = ["decoder.clusters"] if update == "sequential" else [
        "decoder.clusters.0", "decoder.clusters.1", "decoder.clusters.2"
    ]  # fmt: skip
    assert clusters == expected
    assert all(decay[id(names[n])] == 0.0 for n in clusters)
    assert decay[id(names["decoder.updates.0.to_q.weight"])] == cfg.SOLVER.WEIGHT_DECAY > 0
    assert decay[id(names["decoder.updates.0.to_q.bias"])] == 0.0
    assert decay[id(names["decoder.updates.0.norm_clusters.weight"])] == 0.0
    assert len(decay) == len(names)  # every parameter in exactly one group


def test_each_loss_term_share_is_logged():
    model = _tiny_model()
    model.train()
    with EventStorage(0) as storage, torch.no_grad():
        losses = model([_frame(1), _frame(2)])
    shares = {k: v[0] for k, v in storage.latest().items() if k.startswith("term_share/")}
    total = sum(float(v) for v in losses.values())
    assert set(shares) == {"term_share/" + k[len("loss_") :] for k in losses}
    for k, v in losses.items():
        assert shares["term_share/" + k[len("loss_") :]] == pytest.approx(float(v) / total)


@pytest.mark.parametrize("cls", [SequentialClusterDecoder, IndependentClusterDecoder])
def test_decoder_idisc_options_heads_sine_encoding_iterations(cls):
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, h, w) for h, w in [(2, 3), (4, 6), (8, 12)]]
    plain = cls(dim=8, num_clusters=5, mlp_ratio=0)
    assert not any("refinements" in n for n, _ in plain.named_parameters())
    dec = cls(
        dim=8, num_clusters=5, mlp_ratio=0, num_heads=4, position_encoding="sine", iterations=2
    )
    assert dec.updates[0].num_heads == 4 and len(dec.refinements[2]) == 1
    depth, attns = dec(feats, [None] * 3)
    assert depth.shape == (2, 1, 8, 12) and (depth > 0).all()
    for attn in attns:
        torch.testing.assert_close(attn.sum(1), torch.ones(2, attn.shape[-1]))
    # A1 of the finest level is the second (last) update's, fed the first update's clusters.
    pixels = feats[0].flatten(2).transpose(1, 2)
    pos = sine_position_encoding(2, 3, 8)
    start = dec.clusters if cls is SequentialClusterDecoder else dec.clusters[0]
    clusters, _ = dec.updates[0](start.expand(2, -1, -1), pixels, None, pos)
    _, want = dec.refinements[0][0](clusters, pixels, None, pos)
    torch.testing.assert_close(attns[0], want)
    with pytest.raises(ValueError, match="position encoding"):
        cls(dim=8, num_clusters=5, position_encoding="learned")


def test_table_v_row_i_configs_use_the_idisc_decoder():
    for name in (
        "tableV_I_idisc_like_R50_40k_cityscapes_dvps",
        "idisc_like_swinL_40k_kitti",
        "demo_idisc_like",
    ):
        m = plugin_cfg(f"configs/ICMDepth/{name}.yaml").MODEL.ICM_DEPTH
        assert (m.CLUSTER_UPDATE, m.NUM_HEADS, m.POSITION_ENCODING, m.ITERATIONS) == (
            "independent", 4, "sine", 2
        ), name  # fmt: skip
        assert m.LOSS.ICM_WEIGHT == 0.0
    model = _tiny_model(
        ["MODEL.ICM_DEPTH.CLUSTER_UPDATE", "independent", "MODEL.ICM_DEPTH.NUM_HEADS", "4"]
        + ["MODEL.ICM_DEPTH.POSITION_ENCODING", "sine", "MODEL.ICM_DEPTH.ITERATIONS", "2"]
    )
    model.train()
    with EventStorage(0):
        losses = model([_frame(1), _frame(2)])
        sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.decoder.refinements.parameters())
