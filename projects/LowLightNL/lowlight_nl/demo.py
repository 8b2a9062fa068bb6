"""What ``make demo`` runs for LowLightNL, and its pictures."""

import os

import cv2
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.visualizer import Visualizer

from d2common.visualization import panel_grid, save_rgb

from .data.builtin import TOY_SEED
from .data.toy import render_toy_image
from .predictor import LowLightPredictor

DEMO_RUNS = [
    ("wNL Mask R-CNN R18-FPN (ours)", "configs/LowLightNL/demo.yaml", []),
    (
        "Mask R-CNN R18-FPN",
        "configs/LowLightNL/demo.yaml",
        ["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"],
    ),
]
HEADLINE_METRICS = ["segm/AP", "segm/AP50", "segm/APs", "bbox/AP"]


def visualize_demo(cfg, output_dir, num_images: int = 4, score_threshold: float = 0.3):
    """Fig. 4-style panels: normal light, low light, prediction, ground truth (toy val images).

    Only detections scoring at least ``score_threshold`` are drawn.
    """
    cfg = cfg.clone()
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_threshold
    dataset_name = cfg.DATASETS.TEST[0]
    metadata = MetadataCatalog.get(dataset_name)
    predictor = LowLightPredictor(cfg)
    for record in DatasetCatalog.get(dataset_name)[:num_images]:
        image_bgr = cv2.imread(record["file_name"])
        image = image_bgr[:, :, ::-1]
        instances = predictor(image_bgr)["instances"].to("cpu")
        predicted = Visualizer(image, metadata).draw_instance_predictions(instances).get_image()
        truth = Visualizer(image, metadata).draw_dataset_dict(record).get_image()
        index = int(os.path.splitext(os.path.basename(record["file_name"]))[0])
        _, clean, _ = render_toy_image(TOY_SEED, "val", index)
        grid = panel_grid(
            [
                ("normal light", clean),
                ("low-light input", image),
                ("prediction", predicted),
                ("ground truth", truth),
            ]
        )
        save_rgb(os.path.join(output_dir, os.path.basename(record["file_name"]) + ".png"), grid)
