"""Two CPU processes (GLOO) train the GAN under DDP and end with identical G and D weights."""

import socket
import sys
from pathlib import Path

import pytest
from detectron2.engine import launch

from ._tiny import TINY_OPTS

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
from flash_ambient_ddp_worker import train_and_digest  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_keeps_replicas_in_sync(tmp_path):
    opts = TINY_OPTS + [
        "OUTPUT_DIR", str(tmp_path / "out"),
        "SOLVER.MAX_ITER", 2,
        "SOLVER.IMS_PER_BATCH", 4,  # 2 per rank: BatchNorm needs more than one value
        "SOLVER.CHECKPOINT_PERIOD", 100,
        "DATASETS.TEST", (),
    ]  # fmt: skip
    launch(
        train_and_digest,
        num_gpus_per_machine=2,
        dist_url=f"tcp://127.0.0.1:{_free_port()}",
        args=("configs/FlashAmbient/demo.yaml", opts, str(tmp_path / "digests")),
    )
    digests = [(tmp_path / "digests" / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert digests[0] == digests[1]
    assert (tmp_path / "out" / "model_final.pth").exists()
