"""Config keys of the LowLightNL project."""

from detectron2.config import CfgNode as CN


def add_lowlight_nl_config(cfg):
    """Adds the LowLightNL subtrees to ``cfg`` in place."""
    cfg.MODEL.LOWLIGHT_NL = CN()
    # Seed of the procedurally generated toy dataset (lowlight_nl_toy_{train,val}).
    cfg.MODEL.LOWLIGHT_NL.TOY_SEED = 0
