#!/usr/bin/env python
"""Converts a torchvision VGG-16 state dict into a checkpoint for FlashAmbient's encoder.

    python tools/convert_vgg16.py vgg16-397923af.pth checkpoints/vgg16_imagenet_flash_ambient.pth

The input is the file torchvision's ``vgg16(weights="IMAGENET1K_V1")`` uses (or any state dict
of ``torchvision.models.vgg16``); nothing is downloaded. The output holds
``generator.encoder.<i>.{weight,bias}`` (torchvision's ``features.<i>``) for ``MODEL.WEIGHTS``;
the classifier is dropped and the decoder starts from scratch.
"""
import argparse
import os
import sys

import torch

# torchvision's features.<i> indices of VGG-16's 13 convolutions, with their (out, in) channels.
VGG16_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
    14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512),
    26: (512, 512), 28: (512, 512),
}  # fmt: skip
TARGET_PREFIX = "generator.encoder."


def convert(state_dict: dict, source: str = "state dict") -> dict:
    """torchvision VGG-16 state dict -> ``{"model": {generator.encoder.* tensors}, ...}``."""
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    state_dict = {
        k[len("module.") :] if k.startswith("module.") else k: v for k, v in state_dict.items()
    }
    model = {}
    for index, (out_ch, in_ch) in VGG16_CONVS.items():
        for suffix, shape in (("weight", (out_ch, in_ch, 3, 3)), ("bias", (out_ch,))):
            key = f"features.{index}.{suffix}"
            if key not in state_dict:
                raise KeyError(f"{source}: '{key}' missing - not a torchvision VGG-16 state dict")
            tensor = state_dict[key]
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"{source}: '{key}' has shape {tuple(tensor.shape)}, VGG-16 has {shape}"
                    " (VGG-16-BN and other VGG depths use other layouts)"
                )
            model[f"{TARGET_PREFIX}{index}.{suffix}"] = tensor.detach().clone().float()
    return {"model": model, "__author__": "torchvision VGG-16 via tools/convert_vgg16.py"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="torchvision VGG-16 state dict (.pth)")
    parser.add_argument("output", help="checkpoint to write (.pth), for MODEL.WEIGHTS")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.source):
        sys.exit(f"error: {args.source} not found")
    try:
        state_dict = torch.load(args.source, map_location="cpu")
    except Exception as e:
        sys.exit(f"error: could not read {args.source} as a torch state dict: {e}")
    if not isinstance(state_dict, dict):
        sys.exit(f"error: {args.source} holds a {type(state_dict).__name__}, not a state dict")
    try:
        checkpoint = convert(state_dict, args.source)
    except (KeyError, ValueError) as e:
        sys.exit(f"error: {e.args[0]}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    torch.save(checkpoint, args.output)
    print(f"wrote {len(checkpoint['model'])} encoder tensors to {args.output}")


if __name__ == "__main__":
    main()
