"""Checks README command lines without running them (one process for all of them).

    python _readme_probe.py REQUESTS.json RESULTS.json     (run from the repository root)

REQUESTS is a list of ``{"script": path, "argv": [...], "placeholders": [...]}``. Each script is
executed as ``__main__`` with that argv until its argument parser has parsed it: parsing errors
(an unknown or renamed flag, a missing required argument, a bad value) are reported, and the
script stops before doing any work. Then the command's ``--config-file``, unless a placeholder, is
loaded into the plugin config with the command's ``KEY VALUE`` overrides (a renamed key or a
missing YAML is reported); any other ``configs/...yaml`` path in the command (a study file,
``LABEL=CONFIG@WEIGHTS``) must exist, and one holding a ``<placeholder>`` must match at least one
file. RESULTS holds, per request, ``error`` (None when everything checks), the parsed arguments,
and the datasets and ``MODEL.WEIGHTS`` of the loaded config.
"""

import argparse
import contextlib
import glob
import io
import json
import re
import runpy
import sys
import traceback

_CONFIG_PATH = re.compile(r"configs/[^\s@=,]+?\.yaml")


class _Parsed(Exception):
    def __init__(self, namespace):
        super().__init__("parsed")
        self.namespace = namespace


def _parse_only(script: str, argv):
    """Runs ``script`` until its first top-level ``parse_args`` / ``parse_known_args`` returns.

    ``parse_args`` is intercepted after it returns, so that it has rejected unknown arguments.
    """
    originals = {
        name: getattr(argparse.ArgumentParser, name) for name in ("parse_args", "parse_known_args")
    }
    depth = {"n": 0}

    def intercept(name):
        def parse(self, args=None, namespace=None):
            depth["n"] += 1
            try:
                result = originals[name](self, args, namespace)
            finally:
                depth["n"] -= 1
            if depth["n"] == 0:
                raise _Parsed(result if name == "parse_args" else result[0])
            return result

        return parse

    for name in originals:
        setattr(argparse.ArgumentParser, name, intercept(name))
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [script] + list(argv)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
    except _Parsed as parsed:
        return parsed.namespace, None
    except SystemExit as exit_:
        return None, f"exit {exit_.code} before its arguments were parsed: {stderr.getvalue()}"
    except BaseException:  # noqa: B036 - any failure of the script is the finding
        return None, traceback.format_exc(limit=3)
    finally:
        for name, original in originals.items():
            setattr(argparse.ArgumentParser, name, original)
        sys.argv, sys.path[:] = saved_argv, saved_path
    return None, "the script finished without parsing command-line arguments"


def _load(config_file, opts):
    from d2common.projects import get_plugin_cfg, import_all_projects

    import_all_projects()
    cfg = get_plugin_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    if opts:
        cfg.merge_from_list(list(opts))
    return cfg


def _check_configs(argv, namespace, placeholders):
    """Loads the command's config and checks that the others exist: ``(error, cfg or None)``."""
    main_config = getattr(namespace, "config_file", None)
    opts = [o for o in getattr(namespace, "opts", None) or [] if o != "--"]
    main_cfg = None
    try:
        if main_config and main_config not in placeholders:
            main_cfg = _load(main_config, opts)
        elif opts:
            _load(None, opts)  # keys must exist even when the config is a placeholder
        for word in argv:
            for path in _CONFIG_PATH.findall(word):
                if path == main_config or path in placeholders:
                    continue
                if not glob.glob(re.sub(r"<[^>]+>", "*", path)):
                    return f"no file matches {path}", main_cfg
    except Exception as error:  # noqa: BLE001 - reported with the command
        return f"{type(error).__name__}: {error}", main_cfg
    return None, main_cfg


def probe(request):
    namespace, error = _parse_only(request["script"], request["argv"])
    result = {"error": error, "args": None, "datasets": [], "weights": ""}
    if namespace is None:
        return result
    result["args"] = {k: v for k, v in vars(namespace).items() if not k.startswith("_")}
    result["args"] = json.loads(json.dumps(result["args"], default=str))
    placeholders = request.get("placeholders", [])
    result["error"], cfg = _check_configs(request["argv"], namespace, placeholders)
    if cfg is not None:
        result["datasets"] = list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)
        result["weights"] = cfg.MODEL.WEIGHTS
    return result


def main():
    requests_file, results_file = sys.argv[1:3]
    with open(requests_file) as f:
        requests = json.load(f)
    results = [probe(request) for request in requests]
    with open(results_file, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
