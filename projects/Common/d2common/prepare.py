"""What every ``datasets/prepare_*.py`` script shares: a manifest, atomic writes, a summary.

Imports neither torch nor detectron2, so the scripts start fast.

- The generation parameters are written to ``<output_dir>/<manifest>`` next to the output. A
  rerun with other parameters refuses to mix outputs (:class:`ManifestMismatch`) unless it is
  told to ``overwrite``; a rerun with the same parameters skips what is already there.
- Files are written to a temporary name and renamed, so an interrupted run never leaves a
  half-written file that a rerun would take as done.
- :meth:`PrepareRun.finish` prints "N written, M already there, K failed" with the reasons and
  returns the exit code: non-zero when anything failed.
"""

import json
import os
import tempfile
from collections import Counter
from typing import Dict, List, Optional, Tuple

MANIFEST_VERSION = 1


class ManifestMismatch(RuntimeError):
    """The output folder was generated with other parameters."""


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_image(path: str, image, params: Optional[List[int]] = None) -> None:
    """Encodes an (H, W[, 3]) BGR / grey array by ``path``'s extension and writes it atomically."""
    import cv2

    ok, buf = cv2.imencode(os.path.splitext(path)[1], image, params or [])
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode a {image.shape} {image.dtype} image")
    atomic_write_bytes(path, buf.tobytes())


def atomic_write_json(path: str, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


class PrepareRun:
    """Book-keeping of one prepare run over ``output_dir``.

    Args:
        output_dir: the folder the script writes into.
        params: every parameter that changes the output (seed, ranges, flags, input folder).
        overwrite: regenerate existing outputs, replacing a manifest with other parameters.
        manifest_name: the manifest's file name in ``output_dir``.
    """

    def __init__(
        self,
        output_dir: str,
        params: Dict,
        overwrite: bool = False,
        manifest_name: str = "manifest.json",
    ):
        self.output_dir = output_dir
        self.params = json.loads(json.dumps(params))  # normalised: tuples -> lists
        self.overwrite = overwrite
        self.manifest_path = os.path.join(output_dir, manifest_name)
        self.num_written = 0
        self.num_present = 0
        self.failures: List[Tuple[str, str]] = []
        self._check_manifest()
        # Record the parameters before the first file: a crash mid-run still leaves outputs
        # that are known to come from these parameters.
        self._write_manifest(finished=False)

    def _check_manifest(self) -> None:
        if not os.path.isfile(self.manifest_path):
            return
        with open(self.manifest_path) as f:
            old = json.load(f).get("params", {})
        if old == self.params or self.overwrite:
            return
        keys = sorted(k for k in set(old) | set(self.params) if old.get(k) != self.params.get(k))
        diff = "; ".join(f"{k}: {old.get(k)!r} -> {self.params.get(k)!r}" for k in keys)
        raise ManifestMismatch(
            f"{self.output_dir} was generated with other parameters ({diff}). Mixing them would "
            "leave outputs that do not match the manifest: pass --overwrite to regenerate "
            "everything, or choose another output folder."
        )

    def needs(self, path: str) -> bool:
        """True when ``path`` must be (re)generated; counts it as already there otherwise."""
        if self.overwrite or not os.path.isfile(path):
            return True
        self.num_present += 1
        return False

    def wrote(self, path: str) -> None:
        self.num_written += 1

    def failed(self, path: str, reason: str) -> None:
        self.failures.append((str(path), str(reason)))

    def summary(self) -> str:
        text = (
            f"{self.num_written} written, {self.num_present} already there, "
            f"{len(self.failures)} failed"
        )
        if self.failures:
            reasons = Counter(r.split(" (", 1)[0] for _, r in self.failures)
            text += " (" + ", ".join(f"{r}: {n}" for r, n in reasons.most_common()) + ")"
        return text

    def _write_manifest(self, finished: bool) -> None:
        atomic_write_json(
            self.manifest_path,
            {
                "version": MANIFEST_VERSION,
                "params": self.params,
                "finished": finished,
                "written": self.num_written,
                "already_there": self.num_present,
                "failed": [{"file": p, "reason": r} for p, r in self.failures],
            },
        )

    def finish(self) -> int:
        """Writes the manifest, prints the summary and each failure; returns the exit code."""
        self._write_manifest(finished=True)
        print(f"{self.output_dir}: {self.summary()}")
        for path, reason in self.failures:
            print(f"  failed: {path}: {reason}")
        return 1 if self.failures else 0
