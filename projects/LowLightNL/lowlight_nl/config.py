"""Config keys of the LowLightNL project (``MODEL.LOWLIGHT_NL``, ``INPUT.LOWLIGHT_NL``,
``DATASETS.LOWLIGHT_NL``, ``TEST.LOWLIGHT_NL``)."""

from detectron2.config import CfgNode as CN


def add_lowlight_nl_config(cfg):
    """Adds the LowLightNL subtrees to ``cfg`` in place. Idempotent: existing values are kept."""
    if "LOWLIGHT_NL" not in cfg.MODEL:
        cfg.MODEL.LOWLIGHT_NL = _model_node()
    if "LOWLIGHT_NL" not in cfg.INPUT:
        cfg.INPUT.LOWLIGHT_NL = _input_node()
    if "LOWLIGHT_NL" not in cfg.DATASETS:
        cfg.DATASETS.LOWLIGHT_NL = CN()
        # COCO-format folders to register, as "prefix=/path" items: every
        # /path/annotations/instances_<split>.json with images in /path/<split>/ becomes the
        # dataset "<prefix>_<split>" (registered by LowLightTrainer before anything is built).
        cfg.DATASETS.LOWLIGHT_NL.COCO_DIRS = []
    _lis_keys(cfg)
    return cfg


def _lis_keys(cfg):
    """``DATASETS.LOWLIGHT_NL.LIS_ROOT`` and ``TEST.LOWLIGHT_NL`` (zero-shot evaluation on LIS)."""
    if "LIS_ROOT" not in cfg.DATASETS.LOWLIGHT_NL:
        # Folder of the LIS dataset (Chen et al.), the one holding RGB-dark/, RGB-normal/ and
        # annotations/. When set, LowLightTrainer registers lis_{dark,normal}_{train,test,
        # traintest} from it (replacing those under $DETECTRON2_DATASETS/LIS); "" keeps those.
        cfg.DATASETS.LOWLIGHT_NL.LIS_ROOT = ""
    if "LOWLIGHT_NL" not in cfg.TEST:
        cfg.TEST.LOWLIGHT_NL = CN()
        # Class mapping applied to the predictions before COCO AP (evaluator
        # LowLightNLCOCOEvaluator): "" (none) or a name of lowlight_nl.class_mapping
        # .CLASS_MAPPINGS, e.g. "coco80_to_lis8" (a COCO-80 model scored on LIS's 8 classes;
        # the other 72 classes' predictions are dropped).
        cfg.TEST.LOWLIGHT_NL.CLASS_MAPPING = ""
        # Interpolation of the test-time resize: "bilinear" (detectron2's) or "nearest" (the LIS
        # authors' test pipeline: it keeps the noise level of the dark images).
        cfg.TEST.LOWLIGHT_NL.RESIZE_INTERP = "bilinear"


def _model_node():
    nl = CN()
    # Seed of the procedurally generated toy dataset (lowlight_nl_toy_{train,val}).
    nl.TOY_SEED = 0
    # ResNet stages followed by a weighted NL block (paper: res3, res4, res5; res2 also works).
    # Used by the backbones build_resnet_wnl(_fpn)_backbone.
    nl.STAGES = ["res3", "res4", "res5"]
    # Non-local form f: "embedded_gaussian" (paper's best), "gaussian", "dot_product",
    # "concatenation" (Wang et al. 2018).
    nl.MODE = "embedded_gaussian"
    # Reduction r per stage res2..res5: inner width C' = C // r (paper: 4 after res2, 2 elsewhere).
    nl.REDUCTIONS = [4, 2, 2, 2]
    # Initial blending weight w per stage res2..res5 in z = w W_z(y) + (1 - w) x (Eq. 1);
    # 0 makes each block the identity at the start, so pretrained features are kept.
    nl.WEIGHT_INITS = [0.0, 0.0, 0.0, 0.0]
    # Learn w (paper); False keeps the initial w fixed (the Table 2 ablation).
    nl.LEARN_WEIGHT = True
    # Max-pool (2x2) phi and g before the non-local sum (Wang et al.'s sub-sampling).
    nl.SUB_SAMPLE = False
    # Norm layer of W_z: "BN", "SyncBN", "GN", ... (not "FrozenBN": its scale must learn).
    nl.NORM = "BN"
    # Initial scale (gamma) of W_z's norm. None: 1 for a block whose w starts at 0 (identity at
    # step 0, and w gets a gradient even when every consumer of the block is normalised), 0 for
    # a block whose w does not (its gamma then gets the gradient). Both at 0 never trains.
    nl.NORM_GAMMA_INIT = None
    # Liveness check: after this many training iterations, warn about every block whose w and
    # W_z's gamma have both moved by at most LIVENESS_TOL from their values at the start of
    # training (a block that does not learn). 0 disables the warning. w, the RMS of gamma, its
    # largest change and ||W_z|| of every block are logged at every iteration as
    # wnl/<stage>/{w,gamma,gamma_change,wz_norm} (LowLightTrainer's liveness hook).
    nl.LIVENESS_CHECK_ITER = 50
    nl.LIVENESS_TOL = 1e-4
    # Kernel of the softmax forms: "auto" (the symmetric tile kernel for the Gaussian form
    # without sub-sampling; otherwise fused SDPA on CUDA, and on CPU fused SDPA when theta and g
    # have one width or the padded width is narrow, query blocks with recomputation when not: the
    # crossover measured by tools/benchmark_attention_crossover.py), "sdpa", "chunked",
    # "symmetric" (Gaussian form without sub-sampling only), all O(N) in memory, or "dense"
    # (the N x N matrix: a reference).
    nl.ATTENTION_BACKEND = "auto"
    # The paper's training mode: only the backbone (ResNet, NL blocks, FPN) learns; the RPN
    # and ROI heads keep their pretrained weights (meta architecture LowLightRCNN).
    nl.TRAIN_BACKBONE_ONLY = False
    return nl


def _input_node():
    ll = CN()
    ll.SYNTHESIS = CN()
    # Apply Lv et al.'s low-light synthesis to training images on the fly (new noise per epoch).
    ll.SYNTHESIS.ENABLED = False
    # Probability of synthesising a given training image (the rest stay normal-light).
    ll.SYNTHESIS.PROB = 1.0
    # DoRF 201_CRF_data.mat (or its folder); "" uses $LOWLIGHT_NL_CRF or the parametric family.
    ll.SYNTHESIS.CRF_PATH = ""
    # Base seed of the synthesizer (offline datasets); on-the-fly draws follow detectron2's seed.
    ll.SYNTHESIS.SEED = 0
    # Uniform ranges of the synthesis parameters (Lv et al.): darkening I' = beta (alpha I)^gamma,
    # noise std sqrt(L sig_s^2 + sig_c^2) on the irradiance L.
    ll.SYNTHESIS.ALPHA = [0.9, 1.0]
    ll.SYNTHESIS.BETA = [0.5, 1.0]
    ll.SYNTHESIS.GAMMA = [1.5, 5.0]
    ll.SYNTHESIS.SIG_S = [0.0, 0.16]
    ll.SYNTHESIS.SIG_C = [0.0, 0.06]
    # Enhancer applied to every image before the model (two-stage baselines): "none", "gamma"
    # (255 (I / 255)^(1 / GAMMA)), "clahe" (CLAHE on Lab lightness) or "zero_dce++" (the learned
    # Zero-DCE++ of Li et al., TPAMI 2021; weights in ZERO_DCE.WEIGHTS).
    ll.ENHANCER = "none"
    ll.ZERO_DCE = CN()
    # Zero-DCE++ state dict: the authors' Epoch99.pth or tools/train_zero_dce.py's output. Read
    # when the mapper / predictor is built: a missing or wrong file stops the run there.
    ll.ZERO_DCE.WEIGHTS = ""
    # The curve map is estimated at 1 / SCALE_FACTOR of the image size (authors' test: 12).
    ll.ZERO_DCE.SCALE_FACTOR = 12
    # Device of the enhancer. "cuda" only with DATALOADER.NUM_WORKERS 0 (or the predictor):
    # forked loader workers cannot use CUDA.
    ll.ZERO_DCE.DEVICE = "cpu"
    # Exponent g of the gamma-correction enhancer.
    ll.GAMMA = 2.2
    # CLAHE clip limit and tiles per side.
    ll.CLAHE_CLIP_LIMIT = 2.0
    ll.CLAHE_TILES = 8
    return ll
