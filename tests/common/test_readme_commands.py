"""The command lines of the READMEs work as written.

Every command of ``README.md``, ``projects/*/README.md`` and ``datasets/README.md`` (extraction
rule: ``_readme_commands.py``) is first checked without running (``_readme_probe.py``): its
script exists and parses the exact argument list, its ``--config-file`` loads with its
``KEY VALUE`` overrides, and any other config path it names exists; ``python -m MODULE`` needs an
importable module. Then, in README order, each command that this machine can run is executed
exactly as written in a sandbox of the repository (``_readme_commands.Sandbox``); only
``tools/train_net.py`` commands get ``TRAIN_OVERRIDES`` / ``EVAL_OVERRIDES`` appended.

A command is only checked, not run, for the reason the test prints, when it names a placeholder
(``CFG``, ``W``, ``path/to/...``, ``<name>``, ``...``, an ALL_CAPS option value) or has optional
``[--flag value]`` groups of a synopsis (checked without them), starts several processes
(``--num-gpus``), uses a dataset that is not a generated toy dataset
(``<package>_toy_{train,val}``) or downloaded weights, or is a script of ``NOT_RUN_SCRIPTS``.
``make`` targets other than ``demo`` are only checked to exist.

``make demo`` runs (its Makefile recipe, restricted to the projects concerned, with the same
overrides) when a later command of the README reads from its output folder. That folder belongs
to ``make demo`` alone: any other command that writes into it fails, and what it wrote there is
removed, so a later command finds only what ``make demo`` itself writes.
"""

import fnmatch
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from d2common.testing import repo_root

from ._readme_commands import Sandbox, extract_commands, make_recipe

REPO = repo_root()
README_FILES = ["README.md", "datasets/README.md"] + sorted(
    str(p.relative_to(REPO)) for p in REPO.glob("projects/*/README.md")
)
TRAIN_OVERRIDES = ["SOLVER.MAX_ITER", "2", "TEST.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0"]
EVAL_OVERRIDES = ["DATALOADER.NUM_WORKERS", "0"]
NOT_RUN_SCRIPTS = {
    "tools/benchmark_*.py": "a timing benchmark (minutes on a CPU), not a correctness check",
    "tools/reproduce_fusion.py": "trains several models over several seeds (an hour on a CPU)",
    "tools/run_seeds.py": "trains every arm over several seeds (hours on a CPU)",
    "tools/sweep_*.py": "trains one model per method, value and seed (hours on a CPU)",
    "tools/train_zero_dce.py": (
        "trains Zero-DCE++ for minutes (test_lowlight_nl_zero_dce_pipeline.py runs it briefly)"
    ),
    "tools/convert_vgg16.py": "converts torchvision's VGG-16 download, not in the repository",
    "datasets/prepare_*.py": "prepares a real dataset, which is not in the repository",
}
# Two-iteration trainings (and make demo's) are bounded; any other tool that runs longer than this
# on toy data is a study or a benchmark that the README test should not run.
TRAINING_TIMEOUT_S, TOOL_TIMEOUT_S = 900, 240
_PLACEHOLDER = re.compile(r"^(CFG\w*|W\d*|\.\.\.)$|path/to/|<[^>]+>")
_CAPS = re.compile(r"^[A-Z][A-Z0-9_]*$")
PLACEHOLDER_HINT = (
    "a placeholder or an optional part? Write it as CFG, W, path/to/..., <name>, an ALL_CAPS "
    "option value (--weights W2) or [--flag value]"
)


def split_synopsis(argv):
    """``(argv without its [--optional] groups, the words of those groups)``.

    A group starts with ``[-`` (a flag), so that list values (``"['a', 'b']"``) stay arguments.
    """
    kept, optional, depth = [], [], 0
    for word in argv:
        depth += word.startswith("[-")
        (optional if depth else kept).append(word)
        depth -= depth > 0 and word.endswith("]")
    return kept, optional


def placeholders(argv):
    """The words of a command that stand for something the reader fills in."""
    kept, optional = split_synopsis(argv)
    after_flag = [w for f, w in zip(kept, kept[1:]) if f.startswith("--") and _CAPS.match(w)]
    return [w for w in kept if _PLACEHOLDER.search(w)] + after_flag + optional


def _readme_commands(readme):
    return extract_commands((REPO / readme).read_text(), readme)


def _demo_recipe():
    """``make demo``'s command (argv) and the output folder it writes, from the Makefile."""
    recipe = make_recipe(REPO / "Makefile", "demo")
    assert recipe and len(recipe) == 1, f"Makefile: expected a one-line demo recipe, got {recipe}"
    argv = recipe[0].replace("$(PY)", "python").split()
    assert "$(" not in " ".join(argv), f"Makefile demo recipe uses make variables: {recipe[0]}"
    output_dir = argv[argv.index("--output-dir") + 1].rstrip("/")
    return argv, output_dir


def _probe_requests(commands):
    """One probe request per python command and per ``make demo`` (its recipe)."""
    requests = []
    for command in commands:
        if command.argv[0] == "make":
            if "demo" in _make_targets(command):
                argv = _demo_recipe()[0]
                requests.append({"script": argv[1], "argv": argv[2:]})
            else:
                requests.append(None)
        elif command.argv[1:2] == ["-m"]:
            requests.append(None)
        elif len(command.argv) < 2 or not (REPO / command.argv[1]).is_file():
            requests.append({"script": None})
        else:
            argv = split_synopsis(command.argv)[0]
            requests.append(
                {"script": argv[1], "argv": argv[2:], "placeholders": placeholders(argv)}
            )
    return requests


# Broken variants of a README command that the probe must reject (with the text of its message).
_DEMO = ["--config-file", "configs/LowLightNL/demo.yaml"]
PROBE_CONTROLS = [
    (["tools/train_net.py", *_DEMO, "--eval-only", "OUTPUT_DIR", "o"], None),
    (["tools/train_net.py", *_DEMO, "--evaluate-only"], "unrecognized arguments"),
    (["tools/train_net.py", *_DEMO, "SOLVER.NO_SUCH_KEY", "2"], "SOLVER.NO_SUCH_KEY"),
    (["tools/train_net.py", "--config-file", "configs/LowLightNL/no_such.yaml"], "no_such.yaml"),
    (["tools/refer_sketch.py", *_DEMO, "--image", "x.png"], "required"),
    (["tools/run_seeds.py", "--study", "configs/NoSuch/studies/demo.yaml"], "no file matches"),
]


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    """``({readme: [(command, probe result or None), ...]}, control results)``, in one process."""
    commands = {readme: _readme_commands(readme) for readme in README_FILES}
    requests = {readme: _probe_requests(cmds) for readme, cmds in commands.items()}
    flat = [r for reqs in requests.values() for r in reqs if r and r.get("script")]
    flat += [{"script": argv[0], "argv": argv[1:]} for argv, _ in PROBE_CONTROLS]
    folder = tmp_path_factory.mktemp("readme_probe")
    (folder / "requests.json").write_text(json.dumps(flat))
    probe = os.path.join(os.path.dirname(__file__), "_readme_probe.py")
    run = subprocess.run(
        [sys.executable, probe, str(folder / "requests.json"), str(folder / "results.json")],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=_environment({}),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    all_results = json.loads((folder / "results.json").read_text())
    results = iter(all_results[: len(all_results) - len(PROBE_CONTROLS)])
    probed = {}
    for readme, cmds in commands.items():
        probed[readme] = []
        for command, request in zip(cmds, requests[readme]):
            if request is None:
                probed[readme].append((command, None))
            elif request.get("script") is None:
                error = f"no script {command.argv[1:2]} in the repository"
                probed[readme].append((command, {"error": error}))
            else:
                probed[readme].append((command, next(results)))
    return probed, all_results[len(all_results) - len(PROBE_CONTROLS) :]


@pytest.fixture(scope="module")
def probed(probe_run):
    return probe_run[0]


def _environment(extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    env.pop("DETECTRON2_DATASETS", None)  # the READMEs' paths assume the default ./datasets
    return env


def _make_targets(command):
    return [w for w in command.argv[1:] if "=" not in w and not w.startswith("-")]


def why_not_run(command, result):
    """The reason a python command is only checked, not run here; None when it runs."""
    script = command.argv[1]
    for pattern, reason in NOT_RUN_SCRIPTS.items():
        if fnmatch.fnmatch(script, pattern):
            return reason
    unfilled = placeholders(command.argv)
    if unfilled:
        return f"names placeholders or optional parts {unfilled}"
    processes = (result.get("args") or {}).get("num_gpus") or 1
    if processes > 1:
        return (
            f"starts {processes} processes (GPUs, or CPU processes over GLOO); "
            "tests/common/test_common_training.py runs two"
        )
    real = [
        name for name in result.get("datasets", []) if not re.search(r"_toy_(train|val)$", name)
    ]
    if real:
        return f"needs the datasets {real}, which are not in the repository"
    if "://" in (result.get("weights") or ""):
        return f"needs the pretrained weights {result['weights']}"
    return None


def _weights_read(command, result):
    """Checkpoint paths the command reads (``MODEL.WEIGHTS`` and ``--*weights`` arguments)."""
    paths = [v for k, v in (result.get("args") or {}).items() if "weights" in k and v]
    argv = command.argv
    paths += [argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "MODEL.WEIGHTS" and argv[i + 1]]
    return [p for p in paths if isinstance(p, str) and "://" not in p]


def _demo_projects_read(commands, demo_dir):
    """Projects whose ``make demo`` outputs a command among ``commands`` reads."""
    projects = set()
    for command in commands:
        for word in command.argv:
            match = re.search(rf"(?:^|[=@]){re.escape(demo_dir)}/([^/\s]+)/", word)
            if match:
                projects.add(match.group(1))
    return sorted(projects)


def _run(argv, sandbox, command, timeout=None):
    """Runs one command in the sandbox; returns ``[]`` or ``[failure message]``."""
    timeout = timeout or TRAINING_TIMEOUT_S
    # A session of its own, so that a timeout also ends the processes the command started.
    process = subprocess.Popen(
        argv, cwd=sandbox.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=_environment(command.env), start_new_session=True,
    )  # fmt: skip
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return [
            f"{command.where}: `{command.text}` ran longer than {timeout} s: a study or a "
            "benchmark belongs in NOT_RUN_SCRIPTS of this test, with the reason"
        ]
    if process.returncode == 0:
        return []
    return [f"{command.where}: `{command.text}` exited with {process.returncode}:\n{log[-2500:]}"]


def _module_exists(names):
    try:
        return bool(names) and importlib.util.find_spec(names[0]) is not None
    except ModuleNotFoundError:
        return False


def _static_failures(readme, probed):
    failures = []
    for command, result in probed[readme]:
        if command.argv[0] == "make":
            for target in _make_targets(command):
                if make_recipe(REPO / "Makefile", target) is None:
                    failures.append(f"{command.where}: the Makefile has no target '{target}'")
        elif command.argv[1:2] == ["-m"] and not _module_exists(command.argv[2:3]):
            failures.append(f"{command.where}: no module {command.argv[2:3]}")
        if result is not None and result["error"]:
            failures.append(
                f"{command.where}: `{command.text}`: {result['error']}\n({PLACEHOLDER_HINT})"
            )
    return failures


def test_extraction_rule():
    markdown = "\n".join(
        [
            "Text `python tools/x.py` inline is not a command.",
            "",
            "```bash",
            "# a comment line",
            "python tools/train_net.py --config-file a.yaml \\",
            "    OUTPUT_DIR /tmp/x  # trailing comment",
            "for c in k0 k5; do",
            "  python tools/train_net.py --config-file configs/G/g-${c}.yaml OUTPUT_DIR o/$c",
            "done",
            "OMP_NUM_THREADS=1 .venv/bin/python tools/b.py --json 'a b.json'",
            "setup.py  Makefile",
            "```",
            "",
            "```yaml",
            "python: not a command",
            "```",
            "",
            "    make demo    # both runs",
            "    projects/<Project>/",
            "",
            "Done.",
        ]
    )
    commands = extract_commands(markdown, "R.md")
    loop_k0, loop_k5 = ["OUTPUT_DIR", "o/k0"], ["OUTPUT_DIR", "o/k5"]
    assert [(c.line, c.argv) for c in commands] == [
        (5, ["python", "tools/train_net.py", "--config-file", "a.yaml", "OUTPUT_DIR", "/tmp/x"]),
        (8, ["python", "tools/train_net.py", "--config-file", "configs/G/g-k0.yaml", *loop_k0]),
        (8, ["python", "tools/train_net.py", "--config-file", "configs/G/g-k5.yaml", *loop_k5]),
        (10, [".venv/bin/python", "tools/b.py", "--json", "a b.json"]),
        (18, ["make", "demo"]),
    ]  # fmt: skip
    assert commands[3].env == {"OMP_NUM_THREADS": "1"}
    with pytest.raises(ValueError, match="R.md: line 3: cannot split"):
        extract_commands("Text.\n\n    python tools/x.py --expression 'the sun\n", "R.md")


def test_placeholders_and_datasets_decide_what_runs():
    def command(*argv):
        return extract_commands("```\n" + " ".join(argv) + "\n```\n", "R.md")[0]

    toy = {"error": None, "args": {"num_gpus": 1}, "datasets": ["x_toy_train", "x_toy_val"]}
    assert (
        why_not_run(command("python", "tools/train_net.py", "--config-file", "c.yaml"), toy) is None
    )
    assert "placeholders" in why_not_run(
        command("python", "tools/t.py", "--config-file", "CFG"), toy
    )
    assert "placeholders" in why_not_run(command("python", "t.py", "--input", "path/to/x"), toy)
    assert "processes" in why_not_run(command("python", "t.py"), {**toy, "args": {"num_gpus": 2}})
    real = {**toy, "datasets": ["coco_2017_train", "x_toy_val"]}
    assert "coco_2017_train" in why_not_run(command("python", "t.py"), real)
    assert "benchmark" in why_not_run(command("python", "tools/benchmark_grm.py"), toy)
    synopsis = ["p", "t.py", "--out", "d", "[--platform", "x]", "[--has", "a", "...]", "K", "['v']"]
    assert split_synopsis(synopsis) == (
        ["p", "t.py", "--out", "d", "K", "['v']"],
        ["[--platform", "x]", "[--has", "a", "...]"],
    )
    filled = ["python", "t.py", "--config-file", "c.yaml", "OUTPUT_DIR", "/tmp/o", "SEED", "1"]
    assert placeholders(filled) == []
    unfilled = ["python", "t.py", "--config-file", "M2F_CFG", "--split", "SPLIT_FILE", "--n", "3"]
    assert placeholders(unfilled) == ["M2F_CFG", "SPLIT_FILE"]


@pytest.mark.slow
def test_probe_rejects_a_renamed_flag_key_config_or_file(probe_run):
    for (argv, expected), result in zip(PROBE_CONTROLS, probe_run[1]):
        if expected is None:
            assert result["error"] is None, (argv, result["error"])
            assert result["args"]["eval_only"] and result["args"]["opts"] == ["OUTPUT_DIR", "o"]
            assert result["datasets"] == ["lowlight_nl_toy_train", "lowlight_nl_toy_val"]
        else:
            assert result["error"] and expected in result["error"], (argv, result["error"])


@pytest.mark.slow
def test_every_project_readme_has_a_runnable_quick_start(probed):
    for readme in README_FILES:
        if not readme.startswith("projects/") or readme.startswith("projects/Common/"):
            continue
        runnable = [
            c.where
            for c, result in probed[readme]
            if c.argv[0] != "make" and result and not result["error"] and not why_not_run(c, result)
        ]
        assert runnable, f"{readme}: no command that runs on the toy data"


def run_readme(readme, entries, root):
    """Runs a README's runnable commands in order in a sandbox under ``root``; returns failures."""
    failures, sandbox = [], None
    commands = [c for c, _ in entries]
    demo_argv, demo_dir = _demo_recipe()
    for index, (command, result) in enumerate(entries):
        if command.argv[0] == "make":
            projects = _demo_projects_read(commands[index + 1 :], demo_dir)
            if "demo" not in _make_targets(command) or not projects or result["error"]:
                continue
            sandbox = sandbox or Sandbox(REPO, root)
            for project in projects:  # --projects=P: the overrides after it stay overrides
                argv = sandbox.map_argv(demo_argv) + [f"--projects={project}"] + TRAIN_OVERRIDES
                failures += _run(argv, sandbox, command)
            continue
        if result is None or result["error"] or why_not_run(command, result):
            continue  # python -m MODULE: only checked to be importable
        sandbox = sandbox or Sandbox(REPO, root)
        missing = [p for p in _weights_read(command, result) if not sandbox.path(p).is_file()]
        if missing:
            written = sorted(
                str(p.relative_to(sandbox.root))
                for p in sandbox.root.glob("**/model_final.pth")
                if "datasets" not in p.relative_to(sandbox.root).parts
            )
            failures.append(
                f"{command.where}: `{command.text}` reads {missing}, which the README's earlier "
                f"commands do not write (they wrote {written or 'no model_final.pth'})"
            )
            continue
        argv = sandbox.map_argv(command.argv)
        if command.argv[1] == "tools/train_net.py":  # other tools may end on an nargs="+" option
            argv += EVAL_OVERRIDES if result["args"]["eval_only"] else TRAIN_OVERRIDES
        before = sandbox.files_under(demo_dir)
        is_training = command.argv[1] == "tools/train_net.py"
        timeout = TRAINING_TIMEOUT_S if is_training else TOOL_TIMEOUT_S
        failures += _run(argv, sandbox, command, timeout)
        after = sandbox.files_under(demo_dir)
        changed = [p for p in after if before.get(p) != after[p]]
        intruders = sorted(str(p.relative_to(sandbox.root)) for p in changed)
        if intruders:
            failures.append(
                f"{command.where}: `{command.text}` writes into {demo_dir}/, the folder of "
                f"`make demo`, where its files would pass for make demo's: {intruders[:5]}"
            )
            for path in intruders:
                (sandbox.root / path).unlink()
    return failures


@pytest.fixture(scope="module")
def readme_runs(request, probed, tmp_path_factory):
    """``{readme: future of run_readme(...)}`` for the selected READMEs, two at a time.

    The READMEs are independent (one sandbox each; toy data generation is process-safe), so
    two run at once: CI has two cores and most of a command's time is one core's import time.
    """
    selected = [
        item.callspec.params["readme"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_readme_commands_work_as_written"
    ]
    pool = ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1)))
    futures = {
        readme: pool.submit(run_readme, readme, probed[readme], tmp_path_factory.mktemp("readme"))
        for readme in dict.fromkeys(selected)
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.slow
@pytest.mark.parametrize("readme", README_FILES)
def test_readme_commands_work_as_written(readme, probed, readme_runs):
    for command, result in probed[readme]:
        if command.argv[0] != "make" and result and not result["error"]:
            reason = why_not_run(command, result)
            print(f"{command.where}: {'checked only: ' + reason if reason else 'ran'}")
    failures = _static_failures(readme, probed) + readme_runs[readme].result()
    assert not failures, "\n\n".join(failures)
