"""What ``make demo`` runs for FlashAmbient: the cGAN on the toy data, the identity and R only."""

import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog

from d2common.engine import trainer_class
from d2common.visualization import save_rgb

from .data import FlashAmbientDatasetMapper
from .evaluation import quantize
from .visualize import comparison_panel

DEMO_RUNS = [
    ("attention-guided cGAN (R_M + A_M)", "configs/FlashAmbient/demo.yaml", []),
    ("identity (flash image)", "configs/FlashAmbient/demo_identity.yaml", [], True),
    ("R only (L1, Table 2 cond. 3)", "configs/FlashAmbient/demo_r_only.yaml", []),
]

HEADLINE_METRICS = [
    "flash_ambient/PSNR",
    "flash_ambient/SSIM_rgb_gaussian",
    "flash_ambient/SSIM_gray_uniform7",
]


def visualize_demo(cfg, output_dir: str, num_images: int = 4):
    """Writes ``flash_ambient_<pair>.png`` (flash | output | ambient | M) for a few test pairs."""
    model = trainer_class(cfg).build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    mapper = FlashAmbientDatasetMapper(cfg, is_train=False)
    dicts = DatasetCatalog.get(cfg.DATASETS.TEST[0])[:num_images]
    paths = []
    with torch.no_grad():
        for d in dicts:
            inputs = mapper(d)
            if inputs is None:
                continue
            output = quantize(model([inputs])[0]["ambient"].cpu())
            panel = comparison_panel(
                *(t.permute(1, 2, 0).numpy() for t in (inputs["image"], output, inputs["ambient"]))
            )
            path = os.path.join(output_dir, f"flash_ambient_{d['image_id']}.png")
            paths.append(save_rgb(path, panel))
    return paths
