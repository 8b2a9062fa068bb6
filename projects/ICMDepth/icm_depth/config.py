"""Config keys of ICMDepth: the ``ICM_DEPTH`` subtrees of MODEL, INPUT, SOLVER and TEST."""

from detectron2.config import CfgNode as CN


def add_icm_depth_config(cfg):
    """Adds the ICMDepth subtrees to ``cfg`` in place. Idempotent; touches no other keys."""
    if "ICM_DEPTH" not in cfg.MODEL:
        cfg.MODEL.ICM_DEPTH = _model_config()
    if "ICM_DEPTH" not in cfg.INPUT:
        cfg.INPUT.ICM_DEPTH = _input_config()
    if "ICM_DEPTH" not in cfg.TEST:
        cfg.TEST.ICM_DEPTH = _test_config()
    if "ICM_DEPTH" not in cfg.SOLVER:
        cfg.SOLVER.ICM_DEPTH = _solver_config()
    return cfg


def _model_config():
    _C = CN()
    # Channels D of the multi-scale features F1, F2, F3 and of the depth clusters (paper: 256).
    _C.DIM = 256
    # Number N of depth clusters (rows of C; paper: 32).
    _C.NUM_CLUSTERS = 32
    # "sequential": one C updated over F1 -> F2 -> F3 (the paper, Table V II/III);
    # "independent": C1, C2, C3 per scale, three depth maps averaged (Table V I, iDisc-like).
    _C.CLUSTER_UPDATE = "sequential"
    # Divide each row of A1 by its sum over pixels before A1 F_v (iDisc's sink competition);
    # False uses eq. (1) literally, whose update then grows with the number of pixels.
    _C.NORMALIZE_ATTENTION_ROWS = True
    # Hidden width of the MLP after each attention update, as a multiple of D (0: no MLP, i.e.
    # eq. (1) and (2) alone).
    _C.MLP_RATIO = 2.0
    # Attention heads of eq. (1) and (2); D is split among them and A1 is their mean (paper: not
    # stated, 1 here; iDisc: 4).
    _C.NUM_HEADS = 1
    # Positional encoding added to the pixel keys of eq. (1) and queries of eq. (2): "none"
    # (paper: not stated) or "sine" (iDisc).
    _C.POSITION_ENCODING = "none"
    # Cluster updates (eq. 1) per resolution, each with its own weights; the ICM loss sees A1 of
    # the last one (paper: 1; iDisc: 2).
    _C.ITERATIONS = 1
    # Depth (metres) the output head starts at: the bias of f in eq. (3) is log(INIT_DEPTH).
    _C.INIT_DEPTH = 10.0
    # Backbone input features at strides 4, 8, 16, 32 (names of the wrapped encoder's outputs).
    _C.IN_FEATURES = ["p0", "p1", "p2", "p3"]
    # Normalisation in the feature pyramid convs: "" (none), "GN", "BN", "SyncBN".
    _C.NECK_NORM = "GN"

    _C.SWIN = CN()
    # Swin encoder of detectron2 (Swin-L: 192, (2, 2, 18, 2), (6, 12, 24, 48), window 12).
    _C.SWIN.EMBED_DIM = 192
    _C.SWIN.DEPTHS = [2, 2, 18, 2]
    _C.SWIN.NUM_HEADS = [6, 12, 24, 48]
    _C.SWIN.WINDOW_SIZE = 12
    _C.SWIN.MLP_RATIO = 4.0
    # Stochastic depth; detectron2 imports timm for values > 0.
    _C.SWIN.DROP_PATH_RATE = 0.0
    # Input size the checkpoint was pre-trained at (only used for absolute position embedding).
    _C.SWIN.PRETRAIN_IMG_SIZE = 384

    _C.LOSS = CN()
    # Weight of L_SI_log in eq. (7) (iDisc: 10).
    _C.LOSS.SILOG_WEIGHT = 10.0
    # 1 - lambda of SI_log is the weight of mean(g)^2 (iDisc: lambda = 0.85).
    _C.LOSS.SILOG_VARIANCE_FOCUS = 0.85
    # Weight of each L_ICM_l in eq. (7) (paper: 1); 0 disables the ICM loss (Table V, II).
    _C.LOSS.ICM_WEIGHT = 1.0
    # Resolutions l (1: F1, 2: F2, 3: F3) at which L_ICM is applied (paper: all three).
    _C.LOSS.ICM_LEVELS = [1, 2, 3]
    # Degree of fuzziness m of eq. (4) (paper: 2).
    _C.LOSS.FUZZINESS = 2.0
    # Divisor of eq. (6) per image: "matched" (the min(N, M) matched pairs, a mean cost per
    # instance) or "clusters" (N, eq. (6) read literally: the loss then scales with M / N).
    _C.LOSS.ICM_NORMALIZER = "matched"
    return _C


def _input_config():
    _C = CN()
    # Training crop (height, width) taken at a random position; [] keeps the whole image.
    _C.CROP_SIZE = []
    # Random horizontal flip probability during training.
    _C.FLIP_PROB = 0.5

    # Geometric augmentation after crop and flip (the baseline iDisc trains with one): a
    # similarity transform about the centre; depth and instance ids are warped with nearest
    # sampling, pixels from outside the frame become invalid (depth 0, id 0).
    _C.GEOMETRIC = CN()
    _C.GEOMETRIC.ENABLED = False
    # Probability of applying a transform to a training sample.
    _C.GEOMETRIC.PROB = 0.5
    # Maximum rotation in degrees (0: none).
    _C.GEOMETRIC.ROTATION = 2.5
    # Zoom factor range [min, max] ([]: none).
    _C.GEOMETRIC.SCALE = [1.0, 1.2]
    # Maximum shift as a fraction of the image height / width (0: none).
    _C.GEOMETRIC.TRANSLATION = 0.05
    # Divide depth by the zoom factor (a zoom by s shows the scene as if s times closer).
    _C.GEOMETRIC.SCALE_DEPTH = True

    # Photometric augmentation of the image only (iDisc: brightness, contrast, saturation,
    # gamma, hue, sharpness); factors drawn from [1 - x, 1 + x], hue shifted by [-x, x] turns.
    _C.PHOTOMETRIC = CN()
    _C.PHOTOMETRIC.ENABLED = False
    # Probability of applying each change.
    _C.PHOTOMETRIC.PROB = 0.5
    _C.PHOTOMETRIC.BRIGHTNESS = 0.2
    _C.PHOTOMETRIC.CONTRAST = 0.2
    _C.PHOTOMETRIC.SATURATION = 0.2
    _C.PHOTOMETRIC.GAMMA = 0.1
    _C.PHOTOMETRIC.HUE = 0.05
    _C.PHOTOMETRIC.SHARPNESS = 0.5
    return _C


def _test_config():
    _C = CN()
    # Evaluation crop: "auto" (the dataset's metadata), "none", "garg" or "eigen".
    _C.CROP = "auto"
    # GT and predictions are capped to [MIN_DEPTH, MAX_DEPTH]; MAX_DEPTH 0 takes the dataset's
    # metadata (KITTI: 80 m).
    _C.MIN_DEPTH = 1e-3
    _C.MAX_DEPTH = 0.0
    # "auto" (the dataset's metadata: per_image everywhere, as iDisc and PolyphonicFormer),
    # "per_image" (each metric per image, averaged over images) or "pooled" (all valid pixels
    # of the dataset as one set).
    _C.AGGREGATION = "auto"
    # GT deeper than MAX_DEPTH: "auto" (the dataset's metadata: drop on KITTI as iDisc, clamp on
    # Cityscapes-DVPS / SemKITTI-DVPS as PolyphonicFormer), "drop" (not evaluated) or "clamp"
    # (set to MAX_DEPTH and evaluated).
    _C.GT_CAP = "auto"
    return _C


def _solver_config():
    _C = CN()
    # Optimizer built by ICMDepthTrainer: "AdamW" (iDisc) or "SGD".
    _C.OPTIMIZER = "AdamW"
    # AdamW betas.
    _C.BETAS = [0.9, 0.999]
    # Learning-rate multiplier of the pre-trained encoder (iDisc: 2e-5 / 2e-4 = 0.1).
    _C.ENCODER_LR_FACTOR = 0.1
    # Regular expressions searched in FULL parameter names whose parameters get no weight decay
    # (norms and biases never do): the depth clusters, the sequential decoder's
    # decoder.clusters and the independent decoder's decoder.clusters.0 / .1 / .2 alike.
    _C.NO_DECAY_NAMES = [r"(^|\.)clusters(\.[0-9]+)?$"]
    return _C
