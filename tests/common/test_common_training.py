"""End-to-end behaviour of tools/train_net.py with detectron2's stock Mask R-CNN on toy data."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from detectron2.engine import launch
from detectron2.modeling import build_model

from d2common.testing import ddp_train_worker, plugin_cfg, repo_root, run_train_steps

CONFIG = "configs/LowLightNL/maskrcnn_R18_FPN_200it_toy.yaml"
# A smaller model and batch than the toy config, so that each step takes well under a second.
TINY = [
    "MODEL.RESNETS.DEPTH", "18", "MODEL.FPN.OUT_CHANNELS", "64",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "256", "MODEL.ROI_MASK_HEAD.CONV_DIM", "64",
    "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
    "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MIN_SIZE_TEST", "128",
]  # fmt: skip


def _train_net(*args, timeout=300, **popen):
    cmd = [sys.executable, str(repo_root() / "tools" / "train_net.py"), *args]
    return subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True, timeout=timeout)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_train_step_and_inference(tmp_path):
    cfg = plugin_cfg(CONFIG, TINY + ["OUTPUT_DIR", str(tmp_path)])
    trainer, storage = run_train_steps(cfg, num_steps=2)
    losses = {k: v.latest() for k, v in storage.histories().items() if k.startswith("loss_")}
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())

    model = build_model(cfg).eval()
    images = [torch.randint(0, 255, (3, 97, 131), dtype=torch.uint8) for _ in range(2)]
    with torch.no_grad():
        outputs = model([{"image": im, "height": 97, "width": 131} for im in images])
    assert len(outputs) == 2
    assert outputs[0]["instances"].image_size == (97, 131)


def test_resume_after_interruption_and_eval_only_matches_training(tmp_path):
    out = tmp_path / "run"
    opts = TINY + ["SOLVER.CHECKPOINT_PERIOD", "3", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"]
    # Interrupt a long run right after its first checkpoint (iteration 2) is tagged.
    cmd = [sys.executable, str(repo_root() / "tools/train_net.py"), "--config-file", CONFIG]
    proc = subprocess.Popen(
        cmd + opts + ["SOLVER.MAX_ITER", "1000", "OUTPUT_DIR", str(out)],
        cwd=repo_root(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    tag = out / "last_checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and not (tag.exists() and tag.read_text().strip()):
        assert proc.poll() is None, "training exited before writing a checkpoint"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tag.read_text().strip() == "model_0000002.pth"

    result = _train_net(
        "--config-file", CONFIG, "--resume", *opts, "SOLVER.MAX_ITER", "5", "OUTPUT_DIR", str(out)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting training from iteration 3" in result.stderr + result.stdout
    iterations = [json.loads(line)["iteration"] for line in open(out / "metrics.json")]
    # Nothing of iterations 0-2 was re-run; iteration 4 was the last trained one.
    assert min(iterations) >= 3 and 4 in iterations
    assert (out / "model_final.pth").exists()
    assert (out / "config.yaml").exists()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(out))
    trained = json.loads((out / "eval_results.json").read_text())
    trained_preds = json.loads(
        (out / "inference/lowlight_nl_toy_val/coco_instances_results.json").read_text()
    )

    eval_dir = tmp_path / "eval"
    result = _train_net(
        "--config-file", CONFIG, "--eval-only", *opts,
        "MODEL.WEIGHTS", str(out / "model_final.pth"), "OUTPUT_DIR", str(eval_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Average Precision" in result.stdout + result.stderr
    evaluated = json.loads((eval_dir / "eval_only_results.json").read_text())
    eval_preds = json.loads(
        (eval_dir / "inference/lowlight_nl_toy_val/coco_instances_results.json").read_text()
    )
    assert len(trained_preds) > 0 and len(trained_preds) == len(eval_preds)
    for a, b in zip(trained_preds, eval_preds):
        assert a["image_id"] == b["image_id"] and a["category_id"] == b["category_id"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    assert trained.keys() == evaluated.keys()
    for key, value in trained.items():
        assert value == pytest.approx(evaluated[key], abs=1e-6, nan_ok=True), key


def test_two_process_ddp_on_cpu_writes_one_checkpoint_with_equal_replicas(tmp_path):
    out, digests = tmp_path / "ddp", tmp_path / "digests"
    opts = TINY + ["SOLVER.MAX_ITER", "3", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"]
    opts += ["MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(out)]
    launch(
        ddp_train_worker,
        num_gpus_per_machine=2,
        dist_url=f"tcp://127.0.0.1:{_free_port()}",
        args=(str(repo_root() / CONFIG), opts, str(digests)),
    )
    checkpoints = sorted(p.name for p in out.glob("*.pth"))
    assert checkpoints == ["model_final.pth"]
    rank0, rank1 = (digests / "rank0.sha256").read_text(), (digests / "rank1.sha256").read_text()
    assert rank0 == rank1
    saved = torch.load(out / "model_final.pth", map_location="cpu")
    assert saved["iteration"] == 2
