"""Command-line pieces shared by the tools that compare several trained models."""

import argparse
from typing import List, Optional, Sequence, Tuple

ModelSpec = Tuple[str, str, str, List[str]]


def parse_labelled_models(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> Tuple[argparse.Namespace, List[ModelSpec]]:
    """Parses repeated ``--model LABEL=CONFIG@WEIGHTS`` and per-model ``--opts-<LABEL> KEY VALUE``.

    ``parser`` must define ``--model`` with ``action="append"``; every other argument is its own.

    Returns:
        (namespace, [(label, config, weights, config overrides)]) in ``--model`` order. A malformed
        spec, a stray token or ``--opts-<LABEL>`` of no ``--model`` label exits through
        ``parser.error``.
    """
    args, rest = parser.parse_known_args(argv)
    opts, current = {}, None
    for token in rest:
        if token.startswith("--opts-"):
            current = token[len("--opts-") :]
            opts[current] = []
        elif current is None:
            parser.error(f"unexpected argument {token!r}")
        else:
            opts[current].append(token)
    specs = []
    for spec in args.model:
        label, sep, rest_spec = spec.partition("=")
        config, at, weights = rest_spec.partition("@")
        if not (sep and at and weights):
            parser.error(f"--model {spec!r} must look like LABEL=CONFIG@WEIGHTS")
        specs.append((label, config, weights, opts.pop(label, [])))
    if opts:
        parser.error(f"--opts-{next(iter(opts))} names no --model label")
    return args, specs
