"""Worker for the 2-process DDP test: trains, then writes each rank's G and D weight digests."""

import hashlib
from pathlib import Path


def parameter_digest(module) -> str:
    """SHA-256 of a module's parameters (not buffers: BatchNorm statistics stay per rank)."""
    module = getattr(module, "module", module)
    digest = hashlib.sha256()
    for name, param in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_and_digest(config_file, opts, out_dir):
    import torch
    from detectron2.utils import comm

    from d2common.engine import build_trainer
    from d2common.testing import plugin_cfg

    torch.set_num_threads(1)  # two ranks share the test machine's cores
    cfg = plugin_cfg(config_file, opts)
    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    step = trainer._trainer
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, f"rank{comm.get_rank()}.txt").write_text(
        f"{parameter_digest(trainer.model)} {parameter_digest(step.discriminator)}"
    )
    comm.synchronize()
