"""refer_sketch.py, the demo visualisation and the predictor, on a 1-step checkpoint."""

import torch
from detectron2.checkpoint import DetectionCheckpointer

from d2common.testing import load_tool, run_train_steps

from .test_grmnet_model import TINY, tiny_cfg


def test_refer_sketch_and_demo_visualisation(tmp_path, registered_toy, monkeypatch):
    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch)
    trainer, _ = run_train_steps(cfg, 1)
    weights = tmp_path / "model.pth"
    DetectionCheckpointer(trainer.model, save_dir=str(tmp_path)).save("model")
    sketch = registered_toy / "toy" / "grmnet" / "val" / "DRAWING_GT" / "L0_sample10001.png"
    vocab = cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE
    out = tmp_path / "refer.png"
    load_tool("refer_sketch").main(
        ["--config-file", "configs/GRMNet/demo.yaml", "--image", str(sketch),
         "--expression", "the two cars", "--expression", "the sun", "--output", str(out),
         "--score-thresh", "0.0", *TINY, "MODEL.WEIGHTS", str(weights),
         "MODEL.GRMNET.LANGUAGE.VOCAB_FILE", vocab]
    )  # fmt: skip
    assert (tmp_path / "refer_0.png").stat().st_size > 0 and (tmp_path / "refer_1.png").exists()

    from grmnet.demo import DEMO_RUNS, HEADLINE_METRICS, visualize_demo

    assert DEMO_RUNS[0][1] == "configs/GRMNet/demo.yaml" and "segm/AP" in HEADLINE_METRICS
    cfg.MODEL.WEIGHTS = str(weights)
    paths = visualize_demo(cfg, str(tmp_path / "vis"), num_queries=2)
    assert len(paths) == 2 and all(p.endswith(".png") for p in paths)


def test_predictor_references_follow_objectness(tmp_path, registered_toy, monkeypatch):
    from detectron2.structures import Boxes, Instances

    from grmnet.predictor import ReferringPredictor, ReferringResult

    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch, "MODEL.GRMNET.GRM.TOP_K", "2")
    predictor = ReferringPredictor(cfg)
    proposals = Instances((50, 50))
    proposals.proposal_boxes = Boxes(
        torch.tensor([[0.0, 0, 9, 9], [10, 10, 20, 20], [30, 0, 40, 9]])
    )
    proposals.objectness_logits = torch.tensor([0.0, 3.0, 1.0])
    result = ReferringResult(None, None, proposals)
    refs, probs = predictor.references(result, torch.tensor([10.0, 10, 20, 20]))
    assert refs.tolist() == [[30, 0, 40, 9], [0, 0, 9, 9]]
    torch.testing.assert_close(probs, torch.sigmoid(torch.tensor([1.0, 0.0])))


def test_benchmark_stand_in_has_the_grm_output_shape():
    """The step benchmark's "heads only" arm replaces the GRM op by zeros of its exact shape."""
    from grmnet.ops import grm_features, pad_reference_pool

    bench = load_tool("benchmark_grm")
    g = torch.Generator().manual_seed(0)
    corners = [torch.rand(n, 2, generator=g) * 100 for n in (7, 5)]
    proposals = [torch.cat([c, c + 10], 1) for c in corners]
    pool = pad_reference_pool(proposals, [torch.randn(len(p), generator=g) for p in proposals])
    cand, image = torch.cat(proposals)[:9], torch.tensor([0] * 5 + [1] * 4)
    image_hw = torch.full((2, 2), 128.0)
    for top_k, relative, absolute in (
        (10, "corner", True),
        (3, "center3", False),
        (0, "corner", True),
    ):
        kwargs = dict(top_k=top_k, relative=relative, manner="consistency", use_absolute=absolute)
        want = grm_features(cand, image, *pool, image_hw, **kwargs)
        got = bench._zero_grm_features(cand, image, *pool, image_hw, **kwargs)
        assert got.shape == want.shape and got.dtype == want.dtype and not got.any()
