#!/usr/bin/env python
"""Times FlashAmbient's pieces at the paper's sizes and prints / writes the numbers.

    python tools/benchmark_flash_ambient.py --device cpu --repeat 3 --json bench.json

Measures: generator inference on a 320x240 image, one full GAN training iteration (D step +
G step) on 224x224 crops, the attention map, the bilateral filter of the DeepFlash baseline,
and the three metrics of the evaluator on one 320x240 pair. Median wall time over ``--repeat``.
"""
import argparse
import json
import platform
import statistics
import time

import torch


def _timed(fn, device, repeat, warmup=1):
    """Median wall and process-CPU seconds of ``fn`` (CPU time matters on a shared machine)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="training batch (the paper's 8)")
    parser.add_argument("--base-channels", type=int, default=64, help="64 = VGG-16")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)

    from flash_ambient.modeling import (
        FlashAmbientGANLoss,
        FlashAmbientStridedDiscriminator,
        FlashAmbientVGG16UNet,
    )
    from flash_ambient.ops import (
        attention_map,
        bilateral_filter,
        psnr,
        ssim_gaussian,
        ssim_gray_uniform7,
    )

    device = torch.device(args.device)
    torch.manual_seed(0)
    gen = FlashAmbientVGG16UNet(base_channels=args.base_channels).to(device)
    disc = FlashAmbientStridedDiscriminator(base_channels=args.base_channels).to(device)
    opt_g = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], 2e-5, (0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), 2e-6, (0.5, 0.999))
    loss = FlashAmbientGANLoss()
    image = torch.rand(1, 3, 240, 320, device=device)
    flash = torch.rand(args.batch, 3, 224, 224, device=device)
    ambient = torch.rand(args.batch, 3, 224, 224, device=device)
    pair_u8 = [
        torch.randint(0, 256, (1, 3, 240, 320), dtype=torch.uint8, device=device) for _ in "ab"
    ]

    def inference():
        with torch.no_grad():
            gen.eval()(image)

    def train_step():
        gen.train()
        outputs = {"flash": flash, "target": ambient, "fake": gen(flash)}
        outputs["attention"] = attention_map(ambient, flash)
        opt_d.zero_grad()
        sum(loss.discriminator_losses(outputs, disc).values()).backward()
        opt_d.step()
        opt_g.zero_grad()
        sum(loss.generator_losses(outputs, disc).values()).backward()
        opt_g.step()

    def metrics():
        psnr(*pair_u8)
        ssim_gaussian(*pair_u8)
        ssim_gray_uniform7(*pair_u8)

    rows = {
        "generator_inference_320x240": _timed(inference, device, args.repeat),
        f"gan_train_iteration_b{args.batch}_224": _timed(train_step, device, args.repeat),
        f"attention_map_b{args.batch}_224": _timed(
            lambda: attention_map(ambient, flash), device, args.repeat
        ),
        "bilateral_filter_320x240": _timed(
            lambda: bilateral_filter(image * 255.0), device, args.repeat
        ),
        "metrics_320x240": _timed(metrics, device, args.repeat),
    }
    info = {
        "device": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or "cpu"
        ),
        "torch_threads": torch.get_num_threads(),
        "base_channels": args.base_channels,
        "repeat": args.repeat,
    }
    print(f"{'':36s} {'wall ms':>10s} {'cpu ms':>10s}")
    for key, value in rows.items():
        print(f"{key:36s} {value['wall_s'] * 1000:10.1f} {value['cpu_s'] * 1000:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": info, "results": rows}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
