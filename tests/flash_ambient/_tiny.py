"""Tiny-model overrides shared by the training tests (toy data, 16x16 crops, 4-channel nets)."""

TINY_OPTS = [
    "MODEL.DEVICE", "cpu",
    "MODEL.WEIGHTS", "",
    "MODEL.FLASH_AMBIENT.GENERATOR.BASE_CHANNELS", 4,
    "MODEL.FLASH_AMBIENT.DISCRIMINATOR.BASE_CHANNELS", 4,
    "DATASETS.TRAIN", ("flash_ambient_toy_train",),
    "DATASETS.TEST", ("flash_ambient_toy_val",),
    "DATALOADER.NUM_WORKERS", 0,
    "INPUT.FLASH_AMBIENT.RESIZE", (32, 24),
    "INPUT.FLASH_AMBIENT.CROP_BASE", 24,
    "INPUT.FLASH_AMBIENT.CROP_SIZE", 16,
    "SOLVER.IMS_PER_BATCH", 2,
    "SOLVER.BASE_LR", 1e-3,
    "SOLVER.FLASH_AMBIENT.D_BASE_LR", 1e-3,
    "TEST.EVAL_PERIOD", 0,
]  # fmt: skip
