#!/usr/bin/env python
"""Turns a folder of flash images into ambient images with a trained FlashAmbient checkpoint.

    python tools/flash_to_ambient.py --config-file configs/FlashAmbient/demo.yaml \
        --input datasets/toy/flash_ambient/images --output out/ MODEL.WEIGHTS model_final.pth

Every image in ``--input`` is a flash image, except files named ``*_ambient.*``: for a FAID-named
``<Category>_<id>_flash.png``, the ``<Category>_<id>_ambient.png`` next to it (or in
``--ambient-dir``) is shown beside the output with the attention map, as in the paper's Fig. 6.
Images are resized like the test set (``INPUT.FLASH_AMBIENT.RESIZE``). Writes
``<name>_output.png`` and ``<name>_grid.png`` per image.
"""
import argparse
import glob
import logging
import os
import sys

import torch
from detectron2.checkpoint import DetectionCheckpointer
from tqdm import tqdm

from d2common.engine import trainer_class
from d2common.testing import plugin_cfg
from d2common.visualization import save_rgb

logger = logging.getLogger("flash_to_ambient")
_EXTS = (".png", ".jpg", ".jpeg")


def find_inputs(input_dir, ambient_dir=None):
    """[(flash path, ambient path or None)] for the flash images of ``input_dir``."""
    from flash_ambient.data import pair_name

    files = sorted(p for p in glob.glob(os.path.join(input_dir, "*")) if p.lower().endswith(_EXTS))
    items = []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem.lower().endswith("_ambient"):
            continue
        ambient = None
        if stem.lower().endswith("_flash"):
            for folder in (ambient_dir, os.path.dirname(path)):
                candidates = glob.glob(os.path.join(folder or "", pair_name(path) + "_ambient.*"))
                if folder and candidates:
                    ambient = candidates[0]
                    break
        items.append((path, ambient))
    return items


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input", required=True, help="folder of flash images")
    parser.add_argument("--output", required=True, help="folder for outputs and grids")
    parser.add_argument("--ambient-dir", default=None, help="folder of *_ambient.* images")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides (MODEL.WEIGHTS ...)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from flash_ambient.data import FlashAmbientDatasetMapper
    from flash_ambient.evaluation import quantize
    from flash_ambient.visualize import comparison_panel

    if not os.path.isdir(args.input):
        sys.exit(f"error: input folder {args.input} not found")
    items = find_inputs(args.input, args.ambient_dir)
    if not items:
        sys.exit(f"error: no flash images ({', '.join(_EXTS)}) in {args.input}")
    cfg = plugin_cfg(None, None)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    model = trainer_class(cfg).build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    else:
        logger.warning("MODEL.WEIGHTS is empty: using an untrained model")
    model.eval()
    mapper = FlashAmbientDatasetMapper(cfg, is_train=False)
    os.makedirs(args.output, exist_ok=True)
    skipped = 0
    with torch.no_grad():
        for flash_path, ambient_path in tqdm(items, desc="flash -> ambient"):
            record = {"file_name": flash_path, "image_id": os.path.basename(flash_path)}
            if ambient_path:
                record["ambient_file_name"] = ambient_path
            inputs = mapper(record)
            if inputs is None:
                skipped += 1
                continue
            output = quantize(model([inputs])[0]["ambient"].cpu()).permute(1, 2, 0).numpy()
            flash = inputs["image"].permute(1, 2, 0).numpy()
            ambient = inputs["ambient"].permute(1, 2, 0).numpy() if "ambient" in inputs else None
            name = os.path.splitext(os.path.basename(flash_path))[0]
            save_rgb(os.path.join(args.output, f"{name}_output.png"), output)
            save_rgb(
                os.path.join(args.output, f"{name}_grid.png"),
                comparison_panel(flash, output, ambient),
            )
    print(f"wrote {len(items) - skipped} outputs to {args.output} ({skipped} unreadable skipped)")


if __name__ == "__main__":
    main()
