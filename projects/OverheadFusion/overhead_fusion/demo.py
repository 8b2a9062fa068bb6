"""What ``make demo`` runs for OverheadFusion: quality fusion vs. the mean-fusion baseline."""

import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog

from d2common.engine import trainer_class
from d2common.visualization import save_rgb

from .visualize import fusion_figure

DEMO_RUNS = [
    ("quality fusion (ours)", "configs/OverheadFusion/demo.yaml", []),
    ("mean fusion (baseline)", "configs/OverheadFusion/demo_mean.yaml", []),
]

HEADLINE_METRICS = ["fusion/L1", "fusion/mIoU", "fusion/pACC", "fusion/fwIoU"]


def visualize_demo(cfg, output_dir: str, num_samples: int = 4):
    """Writes ``fusion_<k>.png`` (views, quality maps, fused, clean, prediction, labels)."""
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    dataset_name = cfg.DATASETS.TEST[0]
    mapper = trainer_cls.build_dataset_mapper(cfg, False)
    colors = MetadataCatalog.get(dataset_name).get("stuff_colors")
    colors = torch.tensor(colors, dtype=torch.uint8).numpy()
    paths = []
    for k, record in enumerate(DatasetCatalog.get(dataset_name)[:num_samples]):
        inputs = mapper(record)
        if inputs is None:
            continue
        with torch.no_grad():
            output = model([inputs])[0]
        path = os.path.join(output_dir, f"fusion_{k}.png")
        paths.append(save_rgb(path, fusion_figure(inputs, output, colors)))
    return paths
