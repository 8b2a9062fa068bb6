"""d2common.cli: the --model LABEL=CONFIG@WEIGHTS / --opts-<LABEL> parsing of comparison tools."""

import argparse

import pytest

from d2common.cli import parse_labelled_models


def _parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--num", type=int, default=1)
    return parser


def test_models_and_their_overrides_in_order():
    argv = ["--model", "a=x.yaml@w{seed}.pth", "--num", "3", "--model", "b=y.yaml@v.pth"]
    argv += ["--opts-b", "K", "1", "L", "''", "--opts-a", "M", "2"]
    args, specs = parse_labelled_models(_parser(), argv)
    assert args.num == 3
    assert specs == [
        ("a", "x.yaml", "w{seed}.pth", ["M", "2"]),
        ("b", "y.yaml", "v.pth", ["K", "1", "L", "''"]),
    ]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "a=x.yaml"], "must look like LABEL=CONFIG@WEIGHTS"),
        (["--model", "a=x.yaml@w", "stray"], "unexpected argument 'stray'"),
        (["--model", "a=x.yaml@w", "--opts-c", "K", "1"], "--opts-c names no --model label"),
    ],
)
def test_malformed_command_lines_name_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_labelled_models(_parser(), argv)
    assert message in capsys.readouterr().err
