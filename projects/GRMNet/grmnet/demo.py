"""What ``make demo`` runs for GRMNet: the toy model with K = 10 references and with K = 0."""

import os

import cv2
from detectron2.data import DatasetCatalog, MetadataCatalog

from d2common.visualization import panel_grid, save_rgb

from .predictor import ReferringPredictor
from .visualize import draw_instances, draw_references

DEMO_RUNS = [
    ("GRMNet (GRM, K = 10)", "configs/GRMNet/demo.yaml", []),
    ("GRMNet without GRM (K = 0)", "configs/GRMNet/demo.yaml", ["MODEL.GRMNET.GRM.TOP_K", "0"]),
]

HEADLINE_METRICS = ["segm/AP", "segm/AP50", "segm/AP75", "bbox/AP"]


def visualize_demo(cfg, output_dir: str, num_queries: int = 6):
    """Writes ``grmnet_<image_id>.png``: sketch + expression | prediction | references of the top
    prediction, for a few validation queries."""
    predictor = ReferringPredictor(cfg)
    names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).thing_classes
    records = DatasetCatalog.get(cfg.DATASETS.TEST[0])
    step = max(1, len(records) // num_queries)
    paths = []
    for record in records[::step][:num_queries]:
        result = predictor(cv2.imread(record["file_name"], cv2.IMREAD_COLOR), record["expression"])
        panels = [(record["expression"], result.image)]
        panels.append(("referred instances", draw_instances(result.image, result.instances, names)))
        if len(result.instances):
            box = result.instances.pred_boxes.tensor[0]
            refs, probs = predictor.references(result, box)
            panels.append(("GRM references", draw_references(result.image, box, refs, probs)))
        path = os.path.join(output_dir, f"grmnet_{record['image_id']}.png")
        paths.append(save_rgb(path, panel_grid(panels, columns=3, height=256)))
    return paths
