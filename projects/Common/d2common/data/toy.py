"""Deterministic, process-safe generation of toy datasets on first use."""

import hashlib
import logging
import os
import shutil
import time
from typing import Callable

import numpy as np

logger = logging.getLogger(__name__)

_DONE_MARKER = ".complete"


def seeded_rng(seed: int, *keys) -> np.random.Generator:
    """A generator determined by ``seed`` and any hashable ``keys`` (e.g. split, image index)."""
    digest = hashlib.sha256(repr((seed,) + tuple(keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def ensure_generated(target_dir: str, generate: Callable[[str], None], timeout_s: float = 600):
    """Makes sure ``target_dir`` holds a complete toy dataset; generates it if missing.

    ``generate(tmp_dir)`` writes the dataset into an empty temporary directory that is renamed
    to ``target_dir`` once complete, so a crash never leaves a half-written dataset behind and
    concurrent processes (DDP ranks, parallel test runs) never read one.

    Returns:
        str: ``target_dir``.
    """
    marker = os.path.join(target_dir, _DONE_MARKER)
    if os.path.exists(marker):
        return target_dir
    parent = os.path.dirname(os.path.abspath(target_dir))
    os.makedirs(parent, exist_ok=True)
    lock = target_dir.rstrip("/") + ".lock"
    deadline = time.time() + timeout_s
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileExistsError:
            if os.path.exists(marker):
                return target_dir
            if _lock_is_stale(lock) or time.time() > deadline:
                logger.warning("Removing stale lock %s", lock)
                _remove(lock)
            time.sleep(0.2)
    try:
        if os.path.exists(marker):
            return target_dir
        tmp = target_dir.rstrip("/") + f".tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        logger.info("Generating toy dataset in %s ...", target_dir)
        try:
            generate(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        open(os.path.join(tmp, _DONE_MARKER), "w").close()
        shutil.rmtree(target_dir, ignore_errors=True)
        os.replace(tmp, target_dir)
    finally:
        _remove(lock)
    return target_dir


def _lock_is_stale(lock: str) -> bool:
    try:
        pid = int(open(lock).read().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
