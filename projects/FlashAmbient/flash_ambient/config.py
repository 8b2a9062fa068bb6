"""Config keys of the FlashAmbient project (attention-guided cGAN, Chávez et al. 2020)."""

from detectron2.config import CfgNode as CN


def add_flash_ambient_config(cfg):
    """Adds ``MODEL.FLASH_AMBIENT``, ``INPUT.FLASH_AMBIENT`` and ``SOLVER.FLASH_AMBIENT``.

    Idempotent: a second call leaves existing values (e.g. merged from a YAML) untouched.
    """
    if "FLASH_AMBIENT" not in cfg.MODEL:
        cfg.MODEL.FLASH_AMBIENT = _model_node()
    if "FLASH_AMBIENT" not in cfg.INPUT:
        cfg.INPUT.FLASH_AMBIENT = _input_node()
    if "FLASH_AMBIENT" not in cfg.SOLVER:
        cfg.SOLVER.FLASH_AMBIENT = _solver_node()
    return cfg


def _model_node():
    node = CN()
    # The attention map M = 1 - mean_c |I_a - I_f| (Eq. 1) applied (Eq. 2) to the reconstruction
    # term, R_M (the generator's switch in the authors' code) ...
    node.ATTENTION_G = True
    # ... and to what the discriminator sees, real I_a * M and fake G(I_f) * M, in both the D loss
    # and G's adversarial term, A_M (the discriminator's switch). Both True: the paper's default;
    # both False: Table 2's "R + A" (and "R" without a discriminator).
    node.ATTENTION_D = True
    # Weight of the reconstruction term R (masked L1, Eq. 3). The paper's L = R + lambda * A.
    node.L1_WEIGHT = 1.0
    # lambda in Eq. 4: weight of the adversarial term A in the generator objective.
    node.ADV_WEIGHT = 1.0
    # Weight of the discriminator objective: 1.0 in the authors' code (fake + real), 0.5 in pix2pix.
    node.D_LOSS_WEIGHT = 1.0

    node.GENERATOR = CN()
    # Generator G in FLASH_AMBIENT_GENERATOR_REGISTRY: "FlashAmbientVGG16UNet" (the paper's
    # VGG-16 encoder-decoder) or "FlashAmbientSIDUNet" (Table 2 condition 4, Chen et al. 2018).
    node.GENERATOR.NAME = "FlashAmbientVGG16UNet"
    # Channels of the first encoder stage (64 in VGG-16 / 32 in the SID U-Net); later stages
    # scale with it. Smaller values only for tests and the toy demo (then no VGG weights load).
    node.GENERATOR.BASE_CHANNELS = 64
    # Freeze the 13 VGG-16 convolutions (the paper, Sec. 4.2). The authors' code trains them.
    node.GENERATOR.FREEZE_ENCODER = True
    # Output activation: "sigmoid" (images in [0, 1]), "tanh" (DeepFlash's signed target), "none".
    node.GENERATOR.OUTPUT_ACTIVATION = "sigmoid"
    # Conv+ReLU per decoder level of FlashAmbientVGG16UNet, deepest level first: (3, 3, 2, 2)
    # mirrors the encoder (the paper's "symmetric" decoder); the authors' vgg16_decoder has
    # (3, 2, 2, 2).
    node.GENERATOR.DECODER_CONVS = (3, 3, 2, 2)
    # Decoder upsampling of both generators: "transposed" (stride-2 transposed conv, the paper) or
    # "resize_conv" (nearest-neighbour resize + conv, which leaves no checkerboard pattern).
    node.GENERATOR.UPSAMPLE = "transposed"

    node.DISCRIMINATOR = CN()
    # Discriminator D in FLASH_AMBIENT_DISCRIMINATOR_REGISTRY: "FlashAmbientStridedDiscriminator"
    # (the authors' 5-level net), "FlashAmbientPatchGAN" (pix2pix 70x70), or "" for none
    # (Table 2 condition 3, "R" only).
    node.DISCRIMINATOR.NAME = "FlashAmbientStridedDiscriminator"
    # Channels of the first discriminator layer (64 in both published nets).
    node.DISCRIMINATOR.BASE_CHANNELS = 64
    # Conditional D: it sees cat(I_f, image) (pix2pix) instead of the image alone (authors' code).
    node.DISCRIMINATOR.CONDITIONAL = False

    node.ENHANCER = CN()
    # Training-free baseline of FlashAmbientEnhancer (Table 1): "lime" (Guo et al. 2017) or
    # "srie" (Fu et al. 2016), both on the flash image alone.
    node.ENHANCER.NAME = "lime"
    # LIME: alpha (weight of the structure prior), sigma of the structure-aware weights' Gaussian,
    # gamma of the illumination map.
    node.ENHANCER.LIME_ALPHA = 0.15
    node.ENHANCER.LIME_SIGMA = 2.0
    node.ENHANCER.LIME_GAMMA = 0.8
    # SRIE: c1 (reflectance TV), c2 (illumination smoothness), the split-Bregman penalty lambda,
    # the illumination gamma, and the stopping rule (relative change of r and l, iteration cap).
    node.ENHANCER.SRIE_C1 = 0.01
    node.ENHANCER.SRIE_C2 = 0.1
    node.ENHANCER.SRIE_LAMBDA = 1.0
    node.ENHANCER.SRIE_GAMMA = 2.2
    node.ENHANCER.SRIE_TOL = 1e-3
    node.ENHANCER.SRIE_MAX_ITER = 100

    node.DEEPFLASH = CN()
    # Bilateral filter of the DeepFlash baseline (Capece et al. 2019) on 0-255 values:
    # window diameter, sigma_space (pixels) and sigma_range (intensity levels).
    node.DEEPFLASH.FILTER_DIAMETER = 7
    node.DEEPFLASH.SIGMA_SPACE = 7.0
    node.DEEPFLASH.SIGMA_RANGE = 102.0
    # Which bilateral filter: "opencv" (cv2.bilateralFilter: disc window, joint colour distance,
    # reflect-101 borders, float output, applied to the training crop) or "authors" (the authors'
    # re-implementation: square window, one range weight per channel, zero padding, output
    # truncated to uint8, applied to the full image before the training crop).
    node.DEEPFLASH.FILTER = "opencv"
    return node


def _input_node():
    node = CN()
    # Every pair is resized to (long side, short side) by orientation: 320x240 / 240x320 (4.1).
    node.RESIZE = (320, 240)
    # Random square crop of side CROP_BASE * U(CROP_SCALE) resized to CROP_SIZE (authors' code:
    # 240 * U(0.8, 1.0) -> 224, the paper's "random crops of 224x224").
    node.CROP_BASE = 240
    node.CROP_SCALE = (0.8, 1.0)
    node.CROP_SIZE = 224
    # Random horizontal flip (probability 0.5) during training.
    node.RANDOM_FLIP = True
    return node


def _solver_node():
    node = CN()
    # Adam betas for both networks: beta1 = 0.5 (Sec. 4.2, from pix2pix).
    node.BETAS = (0.5, 0.999)
    # Discriminator learning rate (2e-6 in the paper; SOLVER.BASE_LR = 2e-5 is G's).
    node.D_BASE_LR = 2e-6
    return node
