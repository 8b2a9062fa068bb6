"""Config keys of GRMNet: ``cfg.MODEL.GRMNET``, ``cfg.INPUT.GRMNET`` and ``cfg.SOLVER.GRMNET``."""

from detectron2.config import CfgNode as CN


def add_grmnet_config(cfg):
    """Adds GRMNet's subtrees to ``cfg`` in place. Idempotent; touches no other project's keys."""
    if "GRMNET" not in cfg.MODEL:
        cfg.MODEL.GRMNET = CN()
        # Concatenate the tiled sentence feature to every FPN level before the RPN head
        # ("RPN Fusion Step", Sec. 2.2).
        cfg.MODEL.GRMNET.RPN_FUSION = True
        # Concatenate the tiled sentence feature to the RoIAlign features of the box and mask
        # heads ("RoI Fusion Step", Sec. 2.2).
        cfg.MODEL.GRMNET.ROI_FUSION = True
        # How the fusion steps combine the features: "paper" (concatenation, Sec. 3.1) or
        # "authors" (their code: before the RPN, MLP(sentence) + 8 coordinate channels + two
        # conv-BN-ReLU blocks + L2 normalisation; in the box head, conv-BN-ReLU + L2
        # normalisation of [RoI, sentence, GRM]; the mask head fuses nothing). See fusion.py.
        cfg.MODEL.GRMNET.FUSION = "paper"
        # FUSION "authors": output size of the MLP applied to the sentence before the RPN.
        cfg.MODEL.GRMNET.FUSION_MLP_DIM = 512
        # FUSION "authors": normalisation of the conv blocks (detectron2 norm name).
        cfg.MODEL.GRMNET.FUSION_NORM = "BN"

        cfg.MODEL.GRMNET.LANGUAGE = CN()
        # Token list (one token a line, "<pad>" = 0, "<unk>" = 1). Empty: the "vocab_file" of the
        # metadata of DATASETS.TRAIN[0] (or DATASETS.TEST[0]).
        cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE = ""
        # Maximum number of time steps of the BiLSTM; longer expressions are truncated (15).
        cfg.MODEL.GRMNET.LANGUAGE.MAX_LENGTH = 15
        # Word-embedding size.
        cfg.MODEL.GRMNET.LANGUAGE.EMBED_DIM = 256
        # Hidden size of each LSTM direction; the sentence feature has 2 * HIDDEN_DIM channels.
        cfg.MODEL.GRMNET.LANGUAGE.HIDDEN_DIM = 256
        # Number of stacked BiLSTM layers.
        cfg.MODEL.GRMNET.LANGUAGE.NUM_LAYERS = 1
        # Dropout on the word embeddings.
        cfg.MODEL.GRMNET.LANGUAGE.DROPOUT = 0.0
        # Linear + ReLU between the embedding and the BiLSTM, its output size (0: none; the
        # authors' code: 512).
        cfg.MODEL.GRMNET.LANGUAGE.MLP_DIM = 0
        # Sentence feature: "final_states" (final hidden states of both directions) or
        # "last_token" (the authors' code: the BiLSTM output at the last word).
        cfg.MODEL.GRMNET.LANGUAGE.POOLING = "final_states"

        cfg.MODEL.GRMNET.GRM = CN()
        # K: number of references per candidate RoI (0 disables the references, Table 2 #2/#3).
        cfg.MODEL.GRMNET.GRM.TOP_K = 10
        # Reference selection: "consistency" (top-K post-NMS proposals by objectness, the paper)
        # or "distance" (K nearest proposals by centre distance, MAttNet; Table 2 #1).
        cfg.MODEL.GRMNET.GRM.MANNER = "consistency"
        # Reference information delta_ij: "corner" (Eq. 1, top-left / bottom-right offsets, 5-d),
        # "center" (the authors' code: corners measured from the candidate centre, 5-d) or
        # "center3" (centre offsets + area ratio, 3-d; Table 2 #6).
        cfg.MODEL.GRMNET.GRM.RELATIVE = "corner"
        # Append the candidate's absolute position [x1/W, y1/H, x2/W, y2/H, wh/WH] ("PosInfo.").
        cfg.MODEL.GRMNET.GRM.ABSOLUTE = True
        # Reference pool in training: "proposals" (the post-NMS RPN proposals, as at test time)
        # or "sampled" (the authors' code: the first K+1 sampled RoIs of the image, in sampling
        # order, so mostly foreground RoIs; ground-truth boxes included).
        cfg.MODEL.GRMNET.GRM.TRAIN_POOL = "proposals"

        cfg.MODEL.GRMNET.BACKBONE = CN()
        # Stage widths of the small sketch backbone "build_grm_sketchnet_fpn_backbone" (demo).
        cfg.MODEL.GRMNET.BACKBONE.WIDTHS = [16, 32, 64, 128]
        # Normalisation of the small sketch backbone's convolutions (detectron2 norm name).
        cfg.MODEL.GRMNET.BACKBONE.NORM = "BN"

    if "GRMNET" not in cfg.INPUT:
        cfg.INPUT.GRMNET = CN()
        # Probability of a horizontal flip in training that also swaps "left" / "right" (and
        # "leftmost" / "rightmost") in the expression; 0 disables it. detectron2's own
        # INPUT.RANDOM_FLIP is dropped by GRMDatasetMapper (it would not swap the words).
        cfg.INPUT.GRMNET.HFLIP_PROB = 0.0

    if "GRMNET" not in cfg.SOLVER:
        cfg.SOLVER.GRMNET = CN()
        # Optimizer of GRMTrainer: "AdamW" (the paper) or "SGD" (detectron2's default).
        cfg.SOLVER.GRMNET.OPTIMIZER = "AdamW"
        # AdamW betas.
        cfg.SOLVER.GRMNET.BETAS = (0.9, 0.999)
    return cfg
