"""One intra-op thread per FlashAmbient test: the tiny tensors here gain nothing from more, and on
a busy 2-core machine competing OpenMP threads made a training step cost 10x the CPU time."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
