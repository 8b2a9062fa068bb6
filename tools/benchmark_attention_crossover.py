#!/usr/bin/env python
"""Which softmax-attention kernel is fastest on the CPU, per form, head width and length.

Times forward + backward of ``softmax_attention`` (LowLightNL's non-local means) for every
applicable backend ("dense" is the N x M matrix with autograd) on the shapes of the softmax
forms: embedded Gaussian (E = Ev), Gaussian (key is query, E = 2 Ev) and, with
``--subsampled``, the sub-sampled Gaussian (M = N / 4 keys, E = 2 Ev). One thread, CPU time of
the process (best of ``--repeat`` after a warm-up), so that other jobs on a shared machine count
less. The "auto" rules of ``lowlight_nl/ops/weighted_nonlocal.py`` (``SDPA_PADDED_MAX_WIDTH``)
come from this table.

    python tools/benchmark_attention_crossover.py --lengths 480 1920 4096
    python tools/benchmark_attention_crossover.py --subsampled --lengths 480 1920 4096 8192
"""
import argparse
import json
import time

import torch

from lowlight_nl.ops.weighted_nonlocal import _auto_backend, softmax_attention

# name: (key is query, E, Ev, queries per key): widths of R18 (the demo) and R50 (the paper)
FORMS = {
    "embedded_gaussian C'=16": (False, 16, 16, 1),
    "embedded_gaussian C'=128": (False, 128, 128, 1),
    "embedded_gaussian C'=512": (False, 512, 512, 1),
    "gaussian C=64": (True, 64, 16, 1),
    "gaussian C=256": (True, 256, 128, 1),
    "gaussian C=1024": (True, 1024, 512, 1),
}
SUBSAMPLED = {
    "gaussian sub-sampled C=64": (False, 64, 32, 4),
    "gaussian sub-sampled C=256": (False, 256, 128, 4),
    "gaussian sub-sampled C=1024": (False, 1024, 512, 4),
}


def inputs(symmetric, n, m, e, ev):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, n, e, generator=gen) * 0.5
    k = q if symmetric else torch.randn(1, m, e, generator=gen) * 0.5
    v = torch.randn(1, m, ev, generator=gen)
    return (
        q.requires_grad_(True),
        k if symmetric else k.requires_grad_(True),
        v.requires_grad_(True),
    )


def time_backend(backend, q, k, v, repeat):
    """Best CPU seconds of one forward + backward."""
    best = float("inf")
    for i in range(repeat + 1):
        start = time.process_time()
        out = softmax_attention(q, k, v, backend)
        out.backward(torch.ones_like(out))
        if i:
            best = min(best, time.process_time() - start)
        for t in (q, k, v):
            t.grad = None
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[480, 1024, 1920, 4096])
    parser.add_argument("--subsampled", action="store_true", help="the sub-sampled shapes")
    parser.add_argument("--max-elements", type=float, default=2**26, help="skip larger N * M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for form, (symmetric, e, ev, ratio) in (SUBSAMPLED if args.subsampled else FORMS).items():
        backends = ["dense"] + (["symmetric"] if symmetric else ["sdpa", "chunked"])
        for n in args.lengths:
            m = max(1, n // ratio)
            if n * m > args.max_elements:
                continue
            q, k, v = inputs(symmetric, n, m, e, ev)
            times = {b: time_backend(b, q, k, v, args.repeat) for b in backends}
            row = {"form": form, "n": n, "m": m, **times}
            row["fastest"], row["auto"] = min(times, key=times.get), _auto_backend(q, k, v)
            rows.append(row)
            cells = "  ".join(f"{b} {t:.3f}s" for b, t in times.items())
            print(f"{form:28} N={n:5} M={m:5}  {cells}  fastest {row['fastest']:9}  "
                  f"auto {row['auto']}", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
