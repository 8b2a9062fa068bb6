"""Config keys of the OverheadFusion project."""

from detectron2.config import CfgNode as CN


def add_overhead_fusion_config(cfg):
    """Adds the ``OVERHEAD_FUSION`` subtrees of MODEL, INPUT, SOLVER and TEST to ``cfg``.

    Idempotent: keys already present (e.g. merged from a YAML) are left alone.
    """
    if "OVERHEAD_FUSION" not in cfg.MODEL:
        m = cfg.MODEL.OVERHEAD_FUSION = CN()
        # How views are fused: "quality" (the paper: softmax of quality logits, Eqs. 1-2), "mean"
        # (the paper's baseline), "clean" (segments the artifact-free image: the upper bound).
        m.FUSION = "quality"
        # C, number of segmentation classes.
        m.NUM_CLASSES = 3
        # alpha_i of Eq. 3, one weight per class (paper: background 0.5, building 1, road 2).
        m.CLASS_WEIGHTS = [0.5, 1.0, 2.0]
        # Label value excluded from the loss and from evaluation.
        m.IGNORE_VALUE = 255
        # First-level channels of the quality U-Net phi; 16 is the paper's 1/4-width U-Net.
        m.QUALITY_BASE_WIDTH = 16
        # First-level channels of the segmentation U-Net psi (paper: 16).
        m.SEG_BASE_WIDTH = 16
        # Number of 2x down-samplings of both U-Nets (paper: 4).
        m.UNET_DEPTH = 4
        # Zero-initialise the last 1x1 convolution of the quality U-Net phi: every Q_j starts at 0,
        # so Q*_j = 1 / K and training starts exactly at mean fusion. False: PyTorch's default init
        # (the paper: random initialisation).
        m.QUALITY_ZERO_INIT = False

    if "OVERHEAD_FUSION" not in cfg.INPUT:
        i = cfg.INPUT.OVERHEAD_FUSION = CN()
        # Side of the square network input after tiling (paper: 300).
        i.IMAGE_SIZE = 300
        # (min, max) views I_1..I_K per sample, K sampled uniformly per training sample when they
        # differ; evaluation uses max (paper S1: 2, S2: 6; authors' default 4).
        i.NUM_VIEWS = (4, 4)
        # Artifact of view j is ARTIFACT_TYPES[j % len]: "cloud", "occlusion" or "none".
        i.ARTIFACT_TYPES = ("cloud", "occlusion")
        # Artifact area / image area per view (paper S1: 0.25, S2: 0.5).
        i.AREA_FRACTION = 0.5
        # How artifacts are drawn (ops/artifacts.py): "authors" (their released procedure, which
        # produced the paper's numbers: every view at AREA_FRACTION, corner triangles covering
        # about half of it up to 0.51, slanted lines above, clouds inside the image) or "paper"
        # (the paper's "up to": each view's area drawn from U(0, AREA_FRACTION) and lost exactly).
        i.ARTIFACT_MODE = "authors"
        # Folder of cloud photographs blended into clouds; empty: procedural fractal-noise clouds.
        i.CLOUD_TEXTURE_DIR = ""
        # Gaussian blur of the cloud alpha map in pixels at a 300 px image; scaled with the size.
        i.CLOUD_BLUR_SIGMA = 5.0
        # Seed of the evaluation artifacts (repeat r of image i uses (SEED, i, r)); training draws
        # fresh artifacts every time a sample is loaded.
        i.SEED = 0
        # Image pixels of NODATA_COLOR (Massachusetts Roads / Buildings: white outside the
        # photographed area, where the masks still draw roads): "ignore" labels them
        # MODEL.OVERHEAD_FUSION.IGNORE_VALUE (no loss, not scored); "drop" also leaves out the
        # tiles with more than NODATA_MAX_FRACTION of them (from training and evaluation, listed
        # as excluded in the evaluation's records); "keep" uses their labels as they are.
        i.NODATA = "ignore"
        # (r, g, b) of no-data pixels; empty: none.
        i.NODATA_COLOR = [255, 255, 255]
        # Largest fraction of no-data pixels of a tile kept with NODATA "drop".
        i.NODATA_MAX_FRACTION = 0.01
        # Datasets of image / colour-label folders registered by any process that reads this
        # config (training, evaluate_fusion.py, visualize_fusion.py): entries
        # "NAME:LABEL_FORMAT:IMAGE_DIR:LABEL_DIR", one tile per image (LABEL_FORMAT a key of
        # data/label_formats.py). tools/reproduce_fusion.py writes its road folds this way.
        i.FOLDER_DATASETS = []
        # Real image stacks (data/stacks.py: one folder per location with view_* images, an
        # optional label and clean image), trained and evaluated on as they are, without
        # synthetic artifacts: entries "NAME:ROOT[:LABEL_FORMAT]" (no format: unlabelled).
        i.STACK_DATASETS = []
        # Megabytes of resized tiles kept per data-loader process: a source image is decoded once
        # and all its tiles are cut and kept (least recently used out); 0 decodes the whole source
        # for every tile.
        i.TILE_CACHE_MB = 256
        # Random horizontal / vertical flips of training tiles (views and labels together).
        i.RANDOM_FLIP = True

    if "OVERHEAD_FUSION" not in cfg.SOLVER:
        s = cfg.SOLVER.OVERHEAD_FUSION = CN()
        # "ADAM" (the paper: Adam, betas below, weight decay SOLVER.WEIGHT_DECAY) or "SGD"
        # (detectron2's default optimizer).
        s.OPTIMIZER = "ADAM"
        # (beta_1, beta_2) of Adam (paper: 0.9, 0.999).
        s.BETAS = (0.9, 0.999)

    if "OVERHEAD_FUSION" not in cfg.TEST:
        t = cfg.TEST.OVERHEAD_FUSION = CN()
        # Evaluations with fresh artifacts per test run; mean and std are reported (paper: 10).
        t.REPEATS = 1
    return cfg
