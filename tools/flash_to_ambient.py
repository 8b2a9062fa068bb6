#!/usr/bin/env python
"""Turns a folder of flash images into ambient images with a trained FlashAmbient checkpoint.

    python tools/flash_to_ambient.py --config-file configs/FlashAmbient/demo.yaml \
        --input datasets/toy/flash_ambient/images --output out/ MODEL.WEIGHTS model_final.pth

Every image in ``--input`` is a flash image, except files named ``*_ambient.*``. Each output has
its flash image's size and aspect: by default the network runs at the photo's native resolution
(reflect-padded to a multiple of 16 and cropped back; ``--tile`` splits large photos into
overlapping tiles); ``--scale config`` runs it at the config's ``INPUT.FLASH_AMBIENT.RESIZE`` (the
training scale) and resizes the output back. The ambient image is optional: for a FAID-named
``<Category>_<id>_flash.png``, the ``<Category>_<id>_ambient.png`` next to it (or in
``--ambient-dir``) is shown beside the output with the attention map, as in the paper's Fig. 6,
when it has the flash image's size (otherwise the grid leaves it out with a warning). Writes
``<name>_output.png`` and ``<name>_grid.png`` per image; flash images that cannot be used
(unreadable, smaller than 16x16) are listed with their reason, and the tool then exits with an
error.
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


def _read_ambient(path, flash_shape):
    """The ambient image for the grid, or None (with a warning) when it cannot be shown."""
    from d2common.data.validation import BadSampleError, read_image_checked

    if path is None:
        return None
    try:
        ambient = read_image_checked(path, format="RGB")
    except BadSampleError as e:
        logger.warning("%s: ambient image left out of the grid", e)
        return None
    if ambient.shape != flash_shape:
        logger.warning(
            "%s: ambient image of %dx%d, flash image of %dx%d: left out of the grid",
            path,
            ambient.shape[1],
            ambient.shape[0],
            flash_shape[1],
            flash_shape[0],
        )
        return None
    return ambient


def translate(model, flash, scale, resize, tile, overlap):
    """(H, W, 3) uint8 flash photo -> (H, W, 3) uint8 ambient prediction of the same size."""
    import cv2

    from flash_ambient.data.mapper import resize_by_orientation
    from flash_ambient.evaluation import quantize
    from flash_ambient.inference import check_min_size, predict_image

    check_min_size(flash.shape, "flash image")
    h, w = flash.shape[:2]
    net_input = resize_by_orientation(flash, resize) if scale == "config" else flash
    output = predict_image(model, net_input, tile=tile, overlap=overlap)
    if output.shape[:2] != (h, w):
        output = cv2.resize(output, (w, h), interpolation=cv2.INTER_LINEAR)
    return quantize(torch.from_numpy(output).permute(2, 0, 1)).permute(1, 2, 0).numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input", required=True, help="folder of flash images")
    parser.add_argument("--output", required=True, help="folder for outputs and grids")
    parser.add_argument("--ambient-dir", default=None, help="folder of *_ambient.* images")
    parser.add_argument(
        "--scale",
        choices=("native", "config"),
        default="native",
        help="run the network at the photo's resolution or at INPUT.FLASH_AMBIENT.RESIZE",
    )
    parser.add_argument(
        "--tile", type=int, default=0, help="square tile side (multiple of 16); 0: whole image"
    )
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides (MODEL.WEIGHTS ...)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from d2common.data.validation import BadSampleError, read_image_checked
    from flash_ambient.inference import check_min_size
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
    resize = tuple(cfg.INPUT.FLASH_AMBIENT.RESIZE)
    os.makedirs(args.output, exist_ok=True)
    failed = []
    with torch.no_grad():
        for flash_path, ambient_path in tqdm(items, desc="flash -> ambient"):
            try:
                flash = read_image_checked(flash_path, format="RGB")
                check_min_size(flash.shape, flash_path)
                output = translate(model, flash, args.scale, resize, args.tile, args.overlap)
            except (BadSampleError, ValueError) as e:
                msg = str(e) if flash_path in str(e) else f"{flash_path}: {e}"
                logger.error("%s", msg)
                failed.append(msg)
                continue
            ambient = _read_ambient(ambient_path, flash.shape)
            name = os.path.splitext(os.path.basename(flash_path))[0]
            save_rgb(os.path.join(args.output, f"{name}_output.png"), output)
            save_rgb(
                os.path.join(args.output, f"{name}_grid.png"),
                comparison_panel(flash, output, ambient),
            )
    print(f"wrote {len(items) - len(failed)} outputs to {args.output}")
    if failed:
        sys.exit(f"error: {len(failed)} flash image(s) not translated:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main()
