#!/usr/bin/env python
"""Installs every project package found under ``projects/<ProjectDir>/<package>/``.

detectron2 itself is deliberately not a hard requirement: users who built detectron2 from
source must not be forced onto a particular distribution name. The pinned prebuilt wheel is
listed in ``requirements-detectron2.txt`` and installed by the Makefile.
"""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent


def discover_packages():
    """Returns (packages, package_dir) for all project packages under ``projects/``."""
    packages, package_dir = [], {}
    for project_dir in sorted(p for p in (ROOT / "projects").iterdir() if p.is_dir()):
        for pkg in find_packages(str(project_dir)):
            packages.append(pkg)
            package_dir[pkg] = str((project_dir / pkg.replace(".", "/")).relative_to(ROOT))
    return packages, package_dir


PACKAGES, PACKAGE_DIR = discover_packages()

setup(
    name="d2-paper-projects",
    version="0.1.0",
    description="detectron2 projects: LowLightNL, FlashAmbient, GRMNet, OverheadFusion, ICMDepth",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    install_requires=[
        # detectron2 is required at run time but not declared: see module docstring.
        "torch>=1.10",
        "fvcore",
        "pycocotools",
        "opencv-python-headless",
        "numpy",
        "scipy",
        "scikit-image",
        "tqdm",
    ],
    extras_require={"prebuilt-detectron2": ["sal-detectron2==0.7.2"]},
)
