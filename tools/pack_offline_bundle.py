#!/usr/bin/env python
"""Packs what a locked-down GPU host lacks into one folder, and unpacks it there.

A GPU node often has a recent Python, torch, torchvision and NumPy but no package registry and no
detectron2. On a machine with network access:

    python tools/pack_offline_bundle.py pack --output dist/offline_bundle --python-version 3.12

downloads wheels built for the target Python and platform (``pip download --only-binary=:all:``;
the few pure-Python packages that PyPI serves as source only are built into ``py3-none-any``
wheels), writes detectron2's Python code from the vendored source tarball as a pure-Python wheel
(no compiled ``_C``: detectron2 then falls back to torchvision's ops and pycocotools' COCOeval),
and records everything in ``manifest.json``. The folder stays under ``--max-mb`` (default 60):
the required packages always go in, the optional ones (scipy, scikit-image, matplotlib, OpenCV)
in that order while they fit; ``manifest.json`` names those the host must provide itself.

On the host, without pip:

    python tools/pack_offline_bundle.py unpack dist/offline_bundle --target output/offline_site
    PYTHONPATH=output/offline_site python ...        # or: make gpu-check BUNDLE=dist/offline_bundle

or into a virtual environment that sees the host's torch (``--system-site-packages``):
``pip install --no-index --no-deps dist/offline_bundle/wheels/*.whl``.
"""

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_D2_SOURCE = REPO.parent / "shared" / "vendor" / "detectron2-02b5c4e.tar.gz"
DEFAULT_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# A host with torch and torchvision has these (torchvision requires Pillow).
DEFAULT_HOST_HAS = ["torch", "torchvision", "numpy", "pillow", "typing-extensions"]

# Found by importing every project, running the op tests and a training in a Python with only
# torch, torchvision, NumPy and Pillow. Version limits: those of detectron2's setup.py.
REQUIRED = [
    "fvcore>=0.1.5,<0.1.6",
    "iopath>=0.1.7,<0.1.10",
    "pycocotools>=2.0.2",
    "yacs>=0.1.8",
    "tabulate",
    "termcolor>=1.1",
    "portalocker",
    "omegaconf>=2.1,<2.4",
    "hydra-core>=1.1",
    "antlr4-python3-runtime==4.9.*",
    "cloudpickle",
    "pyyaml>=5.1",
    "tqdm>4.29.0",
    "packaging",
    # torch.utils.tensorboard, which detectron2's default event writers import
    "tensorboard",
    "protobuf",
    "absl-py",
    "six",
    # the test runner
    "pytest",
    "pluggy",
    "iniconfig",
    "pygments",
]
# Added in this order while the bundle stays under its size limit; each group all or nothing.
OPTIONAL = [
    ("scipy", ["scipy"]),  # data, evaluation and op code of several projects
    ("scikit-image", ["scikit-image", "lazy-loader"]),  # metric references of the tests
    (
        "matplotlib",  # detectron2's Visualizer: the demo's drawings only
        ["matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing"]
        + ["python-dateutil"],
    ),
    ("opencv-python-headless", ["opencv-python-headless"]),  # toy data sets, mappers
]


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement ('hydra_core>=1.1' -> 'hydra-core')."""
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(path: str) -> str:
    """The normalised distribution name of a wheel file name."""
    return re.sub(r"[-_.]+", "-", Path(path).name.split("-")[0]).lower()


def requirements_to_pack(host_has: Iterable[str]) -> Tuple[List[str], List[Tuple[str, List[str]]]]:
    """(required, optional groups) without the distributions the host already has."""
    have = {requirement_name(n) for n in host_has}
    required = [r for r in REQUIRED if requirement_name(r) not in have]
    optional = []
    for group, requirements in OPTIONAL:
        if requirement_name(group) in have:
            continue
        optional.append((group, [r for r in requirements if requirement_name(r) not in have]))
    return required, optional


def choose_optional(
    base_bytes: int, groups: Sequence[Tuple[str, int]], max_bytes: int
) -> Tuple[List[str], List[str]]:
    """Greedy, in the given order: (groups that fit, groups left out) under ``max_bytes``."""
    chosen, left_out, total = [], [], base_bytes
    for group, size in groups:
        if total + size <= max_bytes:
            chosen.append(group)
            total += size
        else:
            left_out.append(group)
    return chosen, left_out


def _pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def fetch_wheel(requirement: str, dest: Path, python_version: str, platforms: List[str]) -> Path:
    """Downloads one requirement's wheel for the target, or builds it when it is pure Python."""
    before = set(dest.glob("*.whl"))
    args = ["download", "--no-deps", "--only-binary=:all:", "--dest", str(dest)]
    args += ["--python-version", python_version, "--implementation", "cp"]
    for platform in platforms:
        args += ["--platform", platform]
    built_here = _pip(*args, requirement).returncode != 0
    if built_here:
        # Only a source distribution: fine if it builds into a pure-Python wheel.
        proc = _pip("wheel", "--no-deps", "--wheel-dir", str(dest), requirement)
        if proc.returncode != 0:
            raise RuntimeError(f"cannot get a wheel of {requirement}:\n{proc.stderr[-2000:]}")
    name = requirement_name(requirement)
    found = [p for p in set(dest.glob("*.whl")) - before if wheel_name(p.name) == name]
    found = found or [p for p in dest.glob("*.whl") if wheel_name(p.name) == name]
    if not found:
        raise RuntimeError(f"pip reported success but no wheel of {requirement} is in {dest}")
    wheel = found[0]
    if built_here and not wheel.name.endswith("-none-any.whl"):
        raise RuntimeError(f"{wheel.name}: {requirement} has no wheel for the target on PyPI")
    return wheel


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def detectron2_wheel(source: Path, dest: Path) -> Path:
    """Writes detectron2's Python code (and its model-zoo configs) as a py3-none-any wheel.

    ``source``: the upstream source tarball, whose single top folder holds ``detectron2/`` and
    ``configs/`` (installed as ``detectron2/model_zoo/configs`` like upstream's setup.py does).
    """
    if not source.is_file():
        raise FileNotFoundError(f"{source}: detectron2 source tarball not found (--d2-source)")
    files: Dict[str, bytes] = {}
    with tarfile.open(source) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not member.isfile():
                continue
            inner = parts[1]
            if inner.startswith("detectron2/") and not inner.endswith((".pyc", ".so")):
                files[inner] = tar.extractfile(member).read()
            elif inner.startswith("configs/"):
                files["detectron2/model_zoo/" + inner] = tar.extractfile(member).read()
    if "detectron2/__init__.py" not in files:
        raise ValueError(f"{source}: no detectron2/__init__.py under its top folder")
    match = re.search(
        r"__version__\s*=\s*['\"]([^'\"]+)['\"]", files["detectron2/__init__.py"].decode()
    )
    version = match.group(1) if match else "0"
    dist_info = f"detectron2-{version}.dist-info"
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: detectron2\nVersion: {version}\n"
        f"Summary: detectron2's Python code from {source.name}, without the compiled _C\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: pack_offline_bundle\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"detectron2-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            zf.writestr(name, files[name])
    return wheel


def pack(args) -> dict:
    out = Path(args.output)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: pass an empty or new folder to --output")
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    max_bytes = int(args.max_mb * 1e6)
    required, optional = requirements_to_pack(args.host_has)
    packed = {"detectron2": detectron2_wheel(Path(args.d2_source), wheels).name}
    for requirement in required:
        print(f"[pack] {requirement}", flush=True)
        packed[requirement_name(requirement)] = fetch_wheel(
            requirement, wheels, args.python_version, args.platform
        ).name
    base = sum(p.stat().st_size for p in wheels.glob("*.whl"))
    sizes, group_files = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for group, requirements in optional:
            print(f"[pack] optional {group}", flush=True)
            staging = Path(tmp) / group
            staging.mkdir()
            group_files[group] = [
                fetch_wheel(r, staging, args.python_version, args.platform) for r in requirements
            ]
            sizes.append((group, sum(p.stat().st_size for p in group_files[group])))
        chosen, left_out = choose_optional(base, sizes, max_bytes)
        for group in chosen:
            for wheel in group_files[group]:
                shutil.move(str(wheel), wheels / wheel.name)
                packed[wheel_name(wheel.name)] = wheel.name
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = {
        "python_version": args.python_version,
        "platforms": args.platform,
        "d2_source": str(args.d2_source),
        "host_has": sorted(requirement_name(n) for n in args.host_has),
        "host_must_provide": left_out,
        "optional_sizes_mb": {g: round(s / 1e6, 1) for g, s in sizes},
        "wheels": dict(sorted(packed.items())),
        "size_mb": round(total / 1e6, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if total > max_bytes:
        raise RuntimeError(f"{out}: {total / 1e6:.1f} MB, over --max-mb {args.max_mb}")
    print(f"[pack] {out}: {len(packed)} wheels, {total / 1e6:.1f} MB", flush=True)
    if left_out:
        print(f"[pack] over the size limit, so the host must provide: {', '.join(left_out)}")
    return manifest


def wheel_supported(filename: str, version: Tuple[int, int] = sys.version_info[:2]) -> bool:
    """Whether a wheel's Python / ABI tags fit a CPython of ``version`` (platform not checked)."""
    python_tag, abi_tag = filename[: -len(".whl")].split("-")[-3:-1]
    for tag in python_tag.split("."):
        if tag in ("py3", "py2.py3") or tag.startswith("py3"):
            return True
        match = re.fullmatch(r"cp(\d)(\d+)", tag)
        if match:
            wanted = (int(match.group(1)), int(match.group(2)))
            if wanted == version or ("abi3" in abi_tag and wanted <= version):
                return True
    return False


def unpack(bundle: Path, target: Path) -> List[str]:
    """Extracts every wheel of ``bundle`` into ``target`` (a folder for PYTHONPATH).

    Skips the work when ``target`` already holds this bundle (same manifest). Returns the wheel
    file names. Raises with the file's name when a wheel is not for this Python.
    """
    manifest_path = bundle / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: not an offline bundle (no manifest.json)")
    manifest = manifest_path.read_text()
    wheels = sorted((bundle / "wheels").glob("*.whl"))
    bad = [w.name for w in wheels if not wheel_supported(w.name)]
    if bad:
        running = "%d.%d" % sys.version_info[:2]
        raise RuntimeError(
            f"{bundle}: wheels built for another Python than this {running}: {', '.join(bad)}"
        )
    stamp = target / ".bundle_manifest.json"
    if stamp.is_file() and stamp.read_text() == manifest:
        return [w.name for w in wheels]
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = info.filename
                # <dist>.data/purelib|platlib/... belongs at the top; scripts / headers are unused
                data = re.match(r"[^/]+\.data/(purelib|platlib)/(.+)", name)
                if data:
                    name = data.group(2)
                elif re.match(r"[^/]+\.data/", name):
                    continue
                if info.is_dir():
                    continue
                path = target / name
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                mode = info.external_attr >> 16
                if mode & 0o111:
                    path.chmod(0o755)
    stamp.write_text(manifest)
    return [w.name for w in wheels]


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="download / build the wheels into a new folder")
    p.add_argument("--output", required=True, help="new (or empty) folder for the bundle")
    p.add_argument("--python-version", default="3.12", help="the host's Python, e.g. 3.12")
    p.add_argument(
        "--platform", action="append", help=f"pip platform tags (default {DEFAULT_PLATFORMS})"
    )
    p.add_argument(
        "--host-has",
        nargs="*",
        default=DEFAULT_HOST_HAS,
        help="distributions the host already has (default: %(default)s)",
    )
    p.add_argument("--max-mb", type=float, default=60.0, help="size limit of the folder (1e6 B)")
    p.add_argument("--d2-source", default=str(DEFAULT_D2_SOURCE), help="detectron2 source tarball")
    u = sub.add_parser("unpack", help="extract a bundle's wheels into a folder (no pip needed)")
    u.add_argument("bundle")
    u.add_argument("--target", required=True, help="folder to put on PYTHONPATH")
    args = parser.parse_args(argv)
    if args.command == "pack" and not args.platform:
        args.platform = list(DEFAULT_PLATFORMS)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == "pack":
        pack(args)
    else:
        names = unpack(Path(args.bundle), Path(args.target))
        print(f"{len(names)} wheels in {args.target}: PYTHONPATH={Path(args.target).resolve()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, FileExistsError, RuntimeError, ValueError) as error:
        sys.exit(f"error: {error}")
