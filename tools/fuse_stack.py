#!/usr/bin/env python
"""Fuses a real image stack with a trained OverheadFusion model: writes the fused image, the
relative quality map of every view and the segmentation of the fused image.

    python tools/fuse_stack.py --config-file output/run/config.yaml \
        --weights output/run/model_final.pth --stack path/to/location --output out/location

``--stack`` is one location of the stack layout (``view_*`` images, co-registered, same size;
see ``overhead_fusion/data/stacks.py``). Large images are processed window by window
(``--window`` px plus a ``--margin`` of context on each side, which is cut off again), so memory
does not grow with the image. GeoTIFF views are read by windows with rasterio where it is
installed, and the outputs are then written as GeoTIFFs with the first view's transform and CRS;
otherwise every view is read whole (OpenCV) and the outputs are PNGs.
"""
import argparse
import logging
import os

import cv2
import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import MetadataCatalog

from d2common.engine import trainer_class
from d2common.testing import plugin_cfg
from overhead_fusion.data.stacks import stack_files
from overhead_fusion.engine import resolve_dataset
from overhead_fusion.ops import quality_fusion, segment_ids_from_counts

logger = logging.getLogger("overhead_fusion.fuse_stack")
GEOTIFF = (".tif", ".tiff")


class PlainReader:
    """Whole-image reader (OpenCV): views as (H, W, 3) uint8 RGB."""

    def __init__(self, paths):
        self.images = []
        for path in paths:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"cannot read view {path}")
            self.images.append(np.ascontiguousarray(image[:, :, ::-1]))
        self.height, self.width = self.images[0].shape[:2]
        self.num_views = len(paths)
        for path, image in zip(paths, self.images):
            if image.shape[:2] != (self.height, self.width):
                raise ValueError(f"view {path} is {image.shape[:2]}, not {self.height, self.width}")
        self.profile = None

    def window(self, k, y0, y1, x0, x1) -> np.ndarray:
        return self.images[k][y0:y1, x0:x1]


class RasterioReader:
    """Windowed GeoTIFF reader: only the window of every view is decoded."""

    def __init__(self, paths):
        import rasterio

        self._rasterio = rasterio
        self.sources = [rasterio.open(p) for p in paths]
        first = self.sources[0]
        self.height, self.width = first.height, first.width
        self.num_views = len(paths)
        for path, src in zip(paths, self.sources):
            if (src.height, src.width) != (self.height, self.width) or src.count < 3:
                raise ValueError(f"view {path}: {src.count} bands of {src.height}x{src.width}")
        self.profile = first.profile

    def window(self, k, y0, y1, x0, x1) -> np.ndarray:
        win = self._rasterio.windows.Window(x0, y0, x1 - x0, y1 - y0)
        data = self.sources[k].read([1, 2, 3], window=win)
        return np.ascontiguousarray(np.moveaxis(data, 0, -1)).astype(np.uint8)


def open_views(paths):
    if all(os.path.splitext(p)[1].lower() in GEOTIFF for p in paths):
        try:
            return RasterioReader(paths)
        except ImportError:
            logger.info("rasterio is not installed: reading the GeoTIFF views whole")
    return PlainReader(paths)


@torch.no_grad()
def fuse_window(model, views: np.ndarray):
    """(V, h, w, 3) uint8 -> fused (3, h, w), quality (V, h, w), class probabilities (C, h, w)."""
    x = torch.from_numpy(views).permute(0, 3, 1, 2).float().to(model.device) / 255.0
    ids = segment_ids_from_counts(torch.tensor([len(x)], device=model.device))
    if model.fusion == "quality":
        fused, quality = quality_fusion(x, model.quality_net(x), ids, 1)
    else:  # the mean: every view weighs 1 / V
        quality = torch.full_like(x[:, :1], 1.0 / len(x))
        fused = (x * quality).sum(dim=0, keepdim=True)
    probs = model.seg_net(fused).softmax(dim=1)
    return fused[0], quality[:, 0], probs[0]


def fuse_stack(model, reader, window: int, margin: int):
    """Fuses every window; returns fused (H, W, 3) float, quality (V, H, W), labels (H, W)."""
    height, width, num = reader.height, reader.width, reader.num_views
    fused = np.zeros((height, width, 3), np.float32)
    quality = np.zeros((num, height, width), np.float32)
    labels = np.zeros((height, width), np.uint8)
    for y in range(0, height, window):
        for x in range(0, width, window):
            y0, x0 = max(0, y - margin), max(0, x - margin)
            y1, x1 = min(height, y + window + margin), min(width, x + window + margin)
            views = np.stack([reader.window(k, y0, y1, x0, x1) for k in range(num)])
            f, q, p = fuse_window(model, views)
            cy, cx = y - y0, x - x0
            h, w = min(window, height - y), min(window, width - x)
            fused[y : y + h, x : x + w] = f.permute(1, 2, 0).cpu().numpy()[cy : cy + h, cx : cx + w]
            quality[:, y : y + h, x : x + w] = q.cpu().numpy()[:, cy : cy + h, cx : cx + w]
            labels[y : y + h, x : x + w] = p.argmax(0).cpu().numpy()[cy : cy + h, cx : cx + w]
    return fused, quality, labels


def write_outputs(out_dir, reader, fused, quality, labels, colors):
    """Writes fused, quality_<k> and segmentation images; GeoTIFFs with the views' georeference
    when they were read with rasterio."""
    os.makedirs(out_dir, exist_ok=True)
    fused8 = (np.clip(fused, 0, 1) * 255).round().astype(np.uint8)
    quality8 = (np.clip(quality, 0, 1) * 255).round().astype(np.uint8)
    seg = colors[labels] if colors is not None else labels
    written = []
    if reader.profile is not None:
        import rasterio

        def write(name, array):  # (H, W) or (H, W, 3)
            bands = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
            profile = dict(reader.profile, count=len(bands), dtype="uint8", driver="GTiff")
            path = os.path.join(out_dir, name + ".tif")
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(bands)
            written.append(path)

    else:

        def write(name, array):
            path = os.path.join(out_dir, name + ".png")
            cv2.imwrite(path, array[:, :, ::-1] if array.ndim == 3 else array)
            written.append(path)

    write("fused", fused8)
    for k, q in enumerate(quality8):
        write(f"quality_{k}", q)
    write("segmentation", np.ascontiguousarray(seg.astype(np.uint8)))
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--stack", required=True, help="folder with the view_* images of a location")
    p.add_argument("--output", required=True)
    p.add_argument("--window", type=int, default=512, help="window side in pixels")
    p.add_argument("--margin", type=int, default=64, help="context around every window")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = p.parse_args(argv)
    cfg = plugin_cfg(os.path.abspath(args.config_file), args.opts)
    model = trainer_class(cfg).build_model(cfg).eval()
    DetectionCheckpointer(model).load(args.weights)
    if model.fusion == "clean":
        raise ValueError("a clean-fusion model has no fusion to apply to a stack")
    views, _, _ = stack_files(args.stack)
    if not views:
        raise FileNotFoundError(f"no view_* images in {args.stack}")
    reader = open_views(views)
    fused, quality, labels = fuse_stack(model, reader, args.window, args.margin)
    colors = None
    if cfg.DATASETS.TEST:  # the class colours of the model's test set, when it has them
        name = resolve_dataset(cfg, cfg.DATASETS.TEST[0])
        meta_colors = MetadataCatalog.get(name).get("stuff_colors", None)
        colors = None if meta_colors is None else np.asarray(meta_colors, np.uint8)
    written = write_outputs(args.output, reader, fused, quality, labels, colors)
    print("\n".join(written))
    return written


if __name__ == "__main__":
    main()
