"""tools/gpu_check.py without a GPU, the offline bundle packer without network, STACK=."""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

from d2common.testing import load_tool

REPO = Path(__file__).resolve().parents[2]


gpu_check = load_tool("gpu_check")
packer = load_tool("pack_offline_bundle")


# --- gpu_check: plan, step runner, report --------------------------------------------------


def plan(tmp_path, cuda, gpus=0, modules_ok=True, **overrides):
    args = gpu_check.parse_args(["--output-dir", str(tmp_path)])
    for key, value in overrides.items():
        setattr(args, key, value)
    ok = {"ok": modules_ok}
    info = {
        "cuda_available": cuda,
        "gpus": ["GPU"] * gpus,
        "modules": {"detectron2": ok, "d2common.projects": ok},
    }
    return {s.name: s for s in gpu_check.plan_steps(args, info, tmp_path)}


def test_plan_on_a_gpu_host_trains_every_project_with_amp_then_evaluates(tmp_path):
    steps = plan(tmp_path, cuda=True, gpus=1)
    assert steps["op_tests"].needs is None and "not cpu" in steps["op_tests"].cmd
    for project in gpu_check.PAPER_RUNS:
        train, evaluate = steps[f"train_{project}"], steps[f"eval_{project}"]
        assert train.needs is None
        opts = train.cmd[train.cmd.index("--config-file") + 2 :]
        pairs = dict(zip(opts[::2], opts[1::2]))
        assert pairs["SOLVER.AMP.ENABLED"] == "True" and pairs["MODEL.DEVICE"] == "cuda"
        assert pairs["SOLVER.MAX_ITER"] == "20" and pairs["MODEL.WEIGHTS"] == ""
        assert "_toy_" in pairs["DATASETS.TRAIN"]
        assert (REPO / train.cmd[train.cmd.index("--config-file") + 1]).is_file()
        assert "--eval-only" in evaluate.cmd and evaluate.after == train.name
        assert evaluate.cmd[-1] == str(Path(pairs["OUTPUT_DIR"]) / "model_final.pth")
    assert steps["nccl"].needs == "1 GPU(s): the NCCL run needs 2"
    assert plan(tmp_path, cuda=True, gpus=2)["nccl"].needs is None


def test_plan_without_cuda_skips_every_cuda_step_with_a_reason(tmp_path):
    steps = plan(tmp_path, cuda=False)
    assert "op_tests" not in steps and "--collect-only" in steps["op_tests_collect"].cmd
    for name, step in steps.items():
        if name != "op_tests_collect":
            assert step.needs and "no CUDA" in step.needs, name
    cpu = plan(tmp_path, cuda=False, cpu_iters=2)
    opts = cpu["train_GRMNet"].cmd
    assert cpu["train_GRMNet"].needs is None and opts[opts.index("SOLVER.MAX_ITER") + 1] == "2"
    assert opts[opts.index("SOLVER.AMP.ENABLED") + 1] == "False"
    missing = plan(tmp_path, cuda=True, gpus=1, modules_ok=False)
    assert "cannot import detectron2" in missing["train_LowLightNL"].needs
    assert missing["bench_nonlocal"].needs is None  # needs torch and the op only


def test_op_test_files_cover_every_op_test():
    files = gpu_check.op_test_files()
    assert "tests/lowlight_nl/test_lowlight_nl_nonlocal_op.py" in files
    expected = {str(p.relative_to(REPO)) for p in REPO.glob("tests/*/test_*ops*.py")}
    assert expected <= set(files) and len(expected) >= 5


def py(code):
    return [sys.executable, "-c", code]


def test_run_step_isolates_failures_timeouts_and_dependencies(tmp_path):
    env, done = gpu_check.subprocess_env(None), {}
    ok = gpu_check.Step("ok", py("print('fine')"), 60)
    failing = gpu_check.Step("failing", py("import sys; print('boom'); sys.exit(3)"), 60)
    slow = gpu_check.Step("slow", py("import time; time.sleep(60)"), 1)
    after = gpu_check.Step("after_failing", py("print(1)"), 60, after="failing")
    skipped = gpu_check.Step("skipped", py("print(1)"), 60, needs="no CUDA device")
    results = {}
    for step in (ok, failing, slow, after, skipped):
        results[step.name] = gpu_check.run_step(step, env, tmp_path, 100, done)
        done[step.name] = results[step.name]["status"]
    assert results["ok"]["status"] == "passed"
    assert "fine" in Path(results["ok"]["log"]).read_text()
    assert results["failing"]["status"] == "failed"
    assert (
        results["failing"]["message"] == "exit code 3" and "boom" in results["failing"]["log_tail"]
    )
    assert results["slow"]["status"] == "timeout" and results["slow"]["seconds"] < 30
    assert results["after_failing"]["status"] == "skipped"
    assert results["skipped"] == {**results["skipped"], "status": "skipped"}
    spent = gpu_check.run_step(ok, env, tmp_path, 2, {})
    assert spent["status"] == "skipped" and "budget" in spent["message"]


def test_junit_counts_and_report(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase name="test_a[cuda]"/><testcase name="test_a[cpu]"/>'
        '<testcase name="test_b[cuda]"><failure message="x"/></testcase>'
        '<testcase name="test_c"><skipped message="y"/></testcase>'
        "</testsuite></testsuites>"
    )
    counts = gpu_check.junit_counts(xml)
    assert counts == {"passed": 2, "failed": 1, "skipped": 1, "cuda_passed": 1}
    report = {
        "host": "h",
        "started": "now",
        "seconds": 3.0,
        "budget_s": 480,
        "result": "failed: x",
        "environment": {"python": "3.x", "modules": {"cv2": {"ok": False}}},
        "steps": [{"name": "x", "status": "failed", "seconds": 1.0, "message": "exit code 1"}],
    }
    gpu_check.write_reports(report, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert "| x | failed | 1 | exit code 1 |" in markdown and "cv2" in markdown
    assert json.loads((tmp_path / "report.json").read_text()) == report


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA host runs the real check")
def test_report_digest_sets_the_block_against_sdpa_and_its_flop_floor():
    rows = [
        {"mode": "embedded_gaussian", "stage": "res5", "dtype": "bf16", "efficient_s": 0.006,
         "efficient_peak_mb": 12.0, "efficient_over_sdpa": 6.2, "floor_over_sdpa": 4.9},
        {"mode": "gaussian", "stage": "res5", "dtype": "bf16", "efficient_s": 0.1,
         "efficient_peak_mb": 1.0},
    ]  # fmt: skip
    line = gpu_check.summarise({"name": "bench_nonlocal", "results": {"blocks": rows}})
    assert line == "res5 bf16: 6.0 ms, 12 MB, 6.20x SDPA (FLOP floor 4.90x)"
    step = {"wnl": 0.19, "plain": 0.1, "ratio": 1.9, "flop_ratio": 1.86}
    line = gpu_check.summarise({"name": "bench_wnl_step", "results": {"train_step_cuda": step}})
    assert line == "wNL step 190 ms, plain 100 ms, ratio 1.90 (FLOP ratio 1.86)"


def test_report_digests_split_the_grm_and_icm_shares():
    grm = {
        "train_step": {
            "grmnet_ms": 129.0,
            "without_grm_ms": 109.0,
            "heads_share": 0.12,
            "op_in_step_share": 0.014,
            "flop_share": 0.081,
        }
    }
    line = gpu_check.summarise({"name": "bench_grm", "results": grm})
    assert line == (
        "step 129 ms, GRM share 15.5% (wider heads 12.0%, the op timed in the step 1.4%; "
        "FLOP share 8.1%)"
    )
    layouts = {
        "per_level": {"fwd_bwd_s": 0.0108, "dispatched_ops": 557},
        "stacked": {"fwd_bwd_s": 0.0061, "dispatched_ops": 267},
    }
    icm = {
        "devices": {
            "cuda": {
                "loss": [{"M": 5}, {"M": 20, "layouts": layouts}],
                "step": {"step_with_icm_s": 0.049, "icm_share_of_loss_timing": 0.22},
            }
        }
    }
    line = gpu_check.summarise({"name": "bench_icm", "results": icm})
    assert line == (
        "step 49 ms, ICM share 22.0%; M = 20 fwd + bwd: per_level 10.8 ms (557 ops), "
        "stacked 6.1 ms (267 ops)"
    )


def test_gpu_check_runs_end_to_end_without_cuda(tmp_path):
    cmd = [sys.executable, str(REPO / "tools" / "gpu_check.py"), "--output-dir", str(tmp_path)]
    proc = subprocess.run(cmd + ["--only", "bench", "nccl"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no CUDA device here" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    statuses = {s["name"]: s["status"] for s in report["steps"]}
    assert statuses == {
        "environment": "passed",
        "bench_nonlocal": "skipped",
        "bench_gaussian_sdpa": "skipped",
        "bench_wnl_step": "skipped",
        "bench_grm": "skipped",
        "bench_icm": "skipped",
        "nccl": "skipped",
    }
    assert report["environment"]["modules"]["lowlight_nl.ops"]["ok"]
    assert report["environment"]["torch"] == torch.__version__
    assert "| bench_grm | skipped |" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_op_tests_import_without_detectron2():
    code = (
        "import sys; sys.modules['detectron2'] = None; import pytest; "
        "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider'] + sys.argv[1:]))"
    )
    proc = subprocess.run(
        py(code) + gpu_check.op_test_files(), cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "tests collected" in summary and "error" not in summary, summary


# --- pack_offline_bundle: what goes in, the detectron2 wheel, unpacking --------------------


def test_requirement_names_and_host_exclusions():
    assert packer.requirement_name("hydra_core>=1.1") == "hydra-core"
    assert packer.requirement_name("antlr4-python3-runtime==4.9.*") == "antlr4-python3-runtime"
    assert packer.requirement_name("PyYAML>=5.1") == "pyyaml"
    assert packer.wheel_name("scikit_image-0.26.0-cp312-cp312-manylinux_2_28_x86_64.whl") == (
        "scikit-image"
    )
    required, optional = packer.requirements_to_pack(["torch", "PyYAML", "scipy", "six"])
    names = [packer.requirement_name(r) for r in required]
    assert "pyyaml" not in names and "six" not in names and "fvcore" in names
    assert "torch" not in names and "pycocotools" in names
    groups = dict(optional)
    assert "scipy" not in groups and "python-dateutil" in groups["matplotlib"]
    assert [g for g, _ in optional] == ["scikit-image", "matplotlib", "opencv-python-headless"]


def test_choose_optional_keeps_order_and_skips_what_does_not_fit():
    groups = [("a", 30), ("big", 50), ("b", 15), ("c", 10)]
    assert packer.choose_optional(10, groups, 60) == (["a", "b"], ["big", "c"])
    assert packer.choose_optional(10, groups, 200) == (["a", "big", "b", "c"], [])
    assert packer.choose_optional(70, groups, 60) == ([], ["a", "big", "b", "c"])


def test_wheel_tags_against_the_running_python():
    assert packer.wheel_supported("six-1.17.0-py2.py3-none-any.whl", (3, 12))
    assert packer.wheel_supported("protobuf-7.3-cp310-abi3-manylinux2014_x86_64.whl", (3, 12))
    assert not packer.wheel_supported("protobuf-7.3-cp310-abi3-manylinux2014_x86_64.whl", (3, 9))
    assert packer.wheel_supported("pyyaml-6.0-cp312-cp312-manylinux_2_28_x86_64.whl", (3, 12))
    assert not packer.wheel_supported("pyyaml-6.0-cp312-cp312-manylinux_2_28_x86_64.whl", (3, 11))


def add_file(tar, name, text):
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_bundle(tmp_path, extra_wheels=()):
    source = tmp_path / "d2.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        add_file(tar, "d2-abc/detectron2/__init__.py", '__version__ = "0.6"\n')
        add_file(tar, "d2-abc/detectron2/layers/op.py", "VALUE = 41 + 1\n")
        add_file(tar, "d2-abc/configs/Base.yaml", "MODEL: {}\n")
        add_file(tar, "d2-abc/setup.py", "raise SystemExit\n")
    bundle = tmp_path / "bundle"
    wheel = packer.detectron2_wheel(source, bundle / "wheels")
    for name, files in extra_wheels:
        with zipfile.ZipFile(bundle / "wheels" / name, "w") as zf:
            for path, text in files.items():
                zf.writestr(path, text)
    (bundle / "manifest.json").write_text(json.dumps({"wheels": [wheel.name]}))
    return bundle, wheel


def test_detectron2_wheel_has_its_code_configs_and_a_valid_record(tmp_path):
    _, wheel = make_bundle(tmp_path)
    assert wheel.name == "detectron2-0.6-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {"detectron2/layers/op.py", "detectron2/model_zoo/configs/Base.yaml"} <= names
        assert not any(n.endswith("setup.py") for n in names)
        record = zf.read("detectron2-0.6.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if digest:
                data = zf.read(path)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode() and int(size) == len(data)
        assert "Root-Is-Purelib: true" in zf.read("detectron2-0.6.dist-info/WHEEL").decode()


def test_detectron2_wheel_rejects_a_tarball_without_detectron2(tmp_path):
    source = tmp_path / "other.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        add_file(tar, "top/README.md", "nothing\n")
    with pytest.raises(ValueError, match="other.tar.gz"):
        packer.detectron2_wheel(source, tmp_path / "w")
    with pytest.raises(FileNotFoundError, match="missing.tar.gz"):
        packer.detectron2_wheel(tmp_path / "missing.tar.gz", tmp_path / "w")


def test_unpack_gives_an_importable_folder(tmp_path):
    data_wheel = (
        "extra-1.0-py3-none-any.whl",
        {
            "extra/__init__.py": "NAME = 'extra'\n",
            "extra-1.0.data/purelib/extra_plugin.py": "X = 7\n",
            "extra-1.0.data/scripts/tool": "#!/bin/sh\n",
        },
    )
    bundle, _ = make_bundle(tmp_path, [data_wheel])
    target = tmp_path / "site"
    names = packer.unpack(bundle, target)
    assert sorted(names) == ["detectron2-0.6-py3-none-any.whl", "extra-1.0-py3-none-any.whl"]
    assert not (target / "tool").exists() and not (target / "extra-1.0.data").exists()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import detectron2.layers.op as op, "
        "extra_plugin; print(op.VALUE, extra_plugin.X)"
    )
    proc = subprocess.run(py(code) + [str(target)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.split() == ["42", "7"], proc.stderr
    (target / "detectron2" / "layers" / "op.py").write_text("VALUE = 0\n")
    packer.unpack(bundle, target)  # same manifest: left as it is
    assert (target / "detectron2" / "layers" / "op.py").read_text() == "VALUE = 0\n"


def test_unpack_names_wheels_for_another_python(tmp_path):
    other = "cp39" if sys.version_info[:2] != (3, 9) else "cp38"
    name = f"native-1.0-{other}-{other}-manylinux2014_x86_64.whl"
    bundle, _ = make_bundle(tmp_path, [(name, {"native.py": ""})])
    with pytest.raises(RuntimeError, match=name):
        packer.unpack(bundle, tmp_path / "site")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        packer.unpack(tmp_path, tmp_path / "site")


# --- the Makefile's two stacks -----------------------------------------------------------


def make_dry_run(*args):
    cmd = ["make", "-n", "--no-print-directory", "-C", str(REPO), *args]
    # under `make test STACK=current` the outer make exports its command-line variables
    # (MAKEFLAGS, STACK); a nested make must see only the ones the test passes
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STACK"}
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode == 0:  # what make would run must at least parse as shell
        syntax = subprocess.run(["bash", "-n"], input=proc.stdout, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr + proc.stdout
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.skipif(not Path("/usr/bin/make").exists(), reason="make is not installed")
def test_make_selects_the_stack():
    # -B: print the venv recipe even when the venv is up to date
    code, out = make_dry_run("-B", "venv", "STACK=current")
    assert code == 0, out
    assert "requirements-current.txt" in out and ".venv-current/bin/python" in out
    assert "--no-build-isolation" in out and "detectron2-02b5c4e.tar.gz" in out
    code, out = make_dry_run("-B", "venv")
    assert code == 0 and "requirements-detectron2.txt" in out and "--no-build-isolation" not in out
    code, out = make_dry_run("-B", "venv", "STACK=current", "OWN_TORCH=1", "PYTHON=/x/python")
    assert code == 0 and "--system-site-packages" in out and "requirements-own-torch" in out
    code, out = make_dry_run("test", "STACK=newest")
    assert code != 0 and "STACK must be 'pinned' or 'current'" in out
