"""What ``make demo`` runs for GRMNet: the toy model with K = 10 references and with K = 0."""

import os

import cv2
from detectron2.data import DatasetCatalog

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
    records = DatasetCatalog.get(cfg.DATASETS.TEST[0])
    step = max(1, len(records) // num_queries)
    paths = []
    for record in records[::step][:num_queries]:
        result = predictor(cv2.imread(record["file_name"], cv2.IMREAD_COLOR), record["expression"])
        referred = draw_instances(result.image, result.instances, predictor.class_names)
        panels = [(record["expression"], result.image), ("referred instances", referred)]
        if len(result.instances):
            box = predictor.classified_proposal(result, 0)
            refs, probs = predictor.references(result, box)
            detection = result.instances.pred_boxes.tensor[0]
            drawing = draw_references(result.image, box, refs, probs, detection)
            panels.append(("GRM references of the top detection's proposal", drawing))
        path = os.path.join(output_dir, f"grmnet_{record['image_id']}.png")
        paths.append(save_rgb(path, panel_grid(panels, columns=3, height=referred.shape[0])))
    return paths
