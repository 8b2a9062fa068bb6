"""What ``make demo`` runs for ICMDepth: the ICM model and the same model without ICM."""

from .visualization import load_model, model_label, visualize_dataset

DEMO_RUNS = [
    ("ICM: sequential clusters + ICM loss", "configs/ICMDepth/demo.yaml", []),
    ("no ICM: sequential clusters, SI_log only", "configs/ICMDepth/demo_no_icm.yaml", []),
]

HEADLINE_METRICS = [
    "depth/abs_rel",
    "depth/rmse",
    "depth/delta1",
    "depth/delta1_instance",
    "depth/delta1_background",
]


def visualize_demo(cfg, output_dir):
    """Image, GT depth, predicted depth and argmax-of-A1 cluster map on toy validation scenes."""
    model = load_model(cfg)
    return visualize_dataset(
        cfg, [(model_label(cfg), model)], cfg.DATASETS.TEST[0], output_dir, num=3
    )
