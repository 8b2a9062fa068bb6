"""Test utilities: shared real-data samples, tiny configs, one training / inference step."""

import importlib.util
import os
from pathlib import Path

import torch

SHARED_DATA_ENV = "D2_SHARED_DATA"


def repo_root() -> Path:
    """The repository root (three levels above this package's directory)."""
    return Path(__file__).resolve().parents[3]


def load_tool(name: str):
    """``tools/<name>.py`` imported as a module (the tools are scripts, not a package; in-process,
    so a test pays no second interpreter start-up)."""
    spec = importlib.util.spec_from_file_location(name, repo_root() / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_data_dir() -> Path:
    """``$D2_SHARED_DATA``, else ``../shared/data`` next to the repository root."""
    default = repo_root().parent / "shared" / "data"
    return Path(os.environ.get(SHARED_DATA_ENV, str(default)))


def shared_data(subdir: str) -> Path:
    """Path of a real-data sample folder; skips the calling test with a reason when absent."""
    import pytest

    path = shared_data_dir() / subdir
    if not path.exists():
        pytest.skip(
            f"real-data sample {path} not found: set {SHARED_DATA_ENV} to the folder holding "
            f"'{subdir}' to run this test"
        )
    return path


def cuda_devices():
    """Devices to parametrise op tests over: cpu always, cuda when available."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def plugin_cfg(config_file: str = None, opts=None):
    """A frozen-free plugin cfg with every project's keys, merged from a repo-relative YAML."""
    from .engine import resolve_device
    from .projects import get_plugin_cfg, import_all_projects

    import_all_projects()
    cfg = get_plugin_cfg()
    if config_file:
        cfg.merge_from_file(str(repo_root() / config_file))
    if opts:
        cfg.merge_from_list(list(opts))
    return resolve_device(cfg)


def run_train_steps(cfg, num_steps: int = 1):
    """Builds the configured trainer and runs ``num_steps`` iterations of its ``run_step``.

    No hooks run (no checkpoint, no evaluation). Returns ``(trainer, storage)``; the storage
    holds the scalars logged by the last step.
    """
    from detectron2.utils.events import EventStorage

    from .engine import build_trainer

    trainer = build_trainer(cfg)
    with EventStorage(0) as storage:
        for step in range(num_steps):
            storage.iter = trainer.iter = step
            trainer.run_step()
    return trainer, storage


def state_dict_digest(model) -> str:
    """SHA-256 over a model's state dict (names, shapes and bytes), for comparing replicas."""
    import hashlib

    model = getattr(model, "module", model)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def ddp_train_worker(config_file: str, opts: list, digest_dir: str):
    """Entry point for ``detectron2.engine.launch`` in multi-process tests.

    Trains with the configured trainer (hooks included: checkpoints are written by rank 0), then
    writes each rank's weight digest to ``<digest_dir>/rank<r>.sha256``.
    """
    from detectron2.utils import comm

    from .engine import build_trainer

    cfg = plugin_cfg(config_file, opts)
    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    Path(digest_dir).mkdir(parents=True, exist_ok=True)
    rank_file = Path(digest_dir) / f"rank{comm.get_rank()}.sha256"
    rank_file.write_text(state_dict_digest(trainer.model))
    comm.synchronize()


def run_amp_train_step(cfg):
    """One iteration of the configured trainer with ``SOLVER.AMP.ENABLED`` (in place on ``cfg``).

    Returns ``(trainer, storage, dtypes)``: ``dtypes`` is the set of output dtypes of the
    model's convolutions and linear layers during the step (autocast's dtype when it ran).
    """
    from detectron2.utils.events import EventStorage
    from torch import nn

    from .engine import build_trainer

    cfg.SOLVER.AMP.ENABLED = True
    trainer = build_trainer(cfg)
    dtypes = set()
    layers = [m for m in trainer.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(lambda _, __, out: dtypes.add(out.dtype)) for m in layers]
    try:
        with EventStorage(0) as storage:
            trainer.iter = 0
            trainer.run_step()
    finally:
        for handle in handles:
            handle.remove()
    return trainer, storage, dtypes
