# Two user-facing commands: `make demo` and `make test`. Both create the stack's venv when it is
# missing. STACK picks the environment:
#   STACK=pinned (default): .venv, CPython 3.10, torch 2.3.1, NumPy 1, prebuilt detectron2 wheel.
#   STACK=current: .venv-current, CPython 3.11, torch 2.14.1, NumPy 2, detectron2 compiled from
#     D2_SOURCE (default: the vendored upstream tarball; a git URL works too) against that torch.
# Overrides: PYTHON=/path/to/python picks the interpreter. D2_REQUIREMENTS= (pinned) or D2_SOURCE=
# (current) skips installing detectron2 when PYTHON already has one; the venv then sees that
# interpreter's packages (--system-site-packages) and keeps its torch. OWN_TORCH=1 keeps PYTHON's
# torch / torchvision but still installs detectron2.
# pip on the CI machines caps torch at 2.14.1 through its global configuration (/etc/xdg/pip):
# exactly what requirements-current.txt pins.
SHELL := /bin/bash
STACK ?= pinned
ifeq ($(STACK),pinned)
VENV ?= .venv
REQUIREMENTS ?= requirements.txt
D2_REQUIREMENTS ?= requirements-detectron2.txt
FIND_PYTHON := tools/find_python310.sh
D2_MISSING := $(if $(D2_REQUIREMENTS),,1)
else ifeq ($(STACK),current)
VENV ?= .venv-current
REQUIREMENTS ?= requirements-current.txt
D2_REQUIREMENTS :=
D2_SOURCE ?= ../shared/vendor/detectron2-02b5c4e.tar.gz
FIND_PYTHON := tools/find_python311.sh
D2_MISSING := $(if $(D2_SOURCE),,1)
else
$(error STACK must be 'pinned' or 'current', not '$(STACK)')
endif
OWN_TORCH ?= $(D2_MISSING)
# `true` keeps the recipe valid shell when there is nothing to compile.
D2_BUILD := $(if $(D2_SOURCE),$(VENV)/bin/python -m pip install --quiet --no-build-isolation "$(D2_SOURCE)",true)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# gpu-check: BUNDLE=<folder made by tools/pack_offline_bundle.py> runs it with PYTHON (default
# python3) and the unpacked bundle on PYTHONPATH, for hosts where nothing can be installed.
BUNDLE ?=
GPU_CHECK_ARGS ?=

.PHONY: venv demo test lint format clean-demo gpu-check

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS) $(D2_REQUIREMENTS) $(wildcard $(D2_SOURCE)) setup.py pyproject.toml $(wildcard projects/*/*/__init__.py)
	@set -e; \
	if [ ! -x "$(PY)" ]; then \
		if [ -z "$(OWN_TORCH)" ]; then python="$$($(FIND_PYTHON))"; \
		else python="$${PYTHON:-python3}"; fi; \
		echo "Creating $(VENV) with $$python"; \
		"$$python" -m venv $(if $(OWN_TORCH),--system-site-packages) $(VENV); \
	fi; \
	$(PY) -m pip install --quiet --upgrade "pip>=23.3" "setuptools>=69" wheel; \
	if [ -n "$(OWN_TORCH)" ]; then \
		grep -vE '^torch(vision)?([=<>! ;]|$$)' $(REQUIREMENTS) > $(VENV)/requirements-own-torch.txt; \
		$(PY) -m pip install --quiet -r $(VENV)/requirements-own-torch.txt $(addprefix -r ,$(D2_REQUIREMENTS)); \
	else \
		$(PY) -m pip install --quiet -r $(REQUIREMENTS) $(addprefix -r ,$(D2_REQUIREMENTS)); \
	fi; \
	if [ -n "$(D2_SOURCE)" ]; then \
		case "$(D2_SOURCE)" in *://*) ;; *) if [ ! -e "$(D2_SOURCE)" ]; then \
			echo "error: D2_SOURCE=$(D2_SOURCE) does not exist. With network access use" \
				"D2_SOURCE='git+https://github.com/facebookresearch/detectron2.git@02b5c4e295e990042a714712c21dc79b731e8833'" >&2; \
			exit 1; fi;; esac; \
		echo "Compiling detectron2 from $(D2_SOURCE) (about 2 minutes on 2 cores)"; \
		$(D2_BUILD); \
	fi; \
	$(PY) -m pip install --quiet --no-deps -e .; \
	$(PY) -c "import detectron2, torch, numpy; print('detectron2', detectron2.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"; \
	touch $(STAMP)

demo: venv
	$(PY) tools/run_demo.py --output-dir output/demo

# The projects' multi-seed studies (configs/*/studies/*.yaml, each over its seeds; studies of real
# data need it prepared first, their runs fail alone): hours on 2 CPU cores, not CI. Resumable:
# finished runs are kept. One study: STUDIES=<file>.
# Tables in output/evidence/<Project>/<study>/summary.{md,json}.
STUDIES ?= $(wildcard configs/*/studies/*.yaml)
.PHONY: evidence
evidence: venv
	$(PY) tools/run_seeds.py --output-dir output/evidence --study $(STUDIES)

test: venv lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m black --check --quiet .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m black --quiet .

clean-demo:
	rm -rf output/demo

# Checks the CUDA paths on a GPU host (skips them with a message where CUDA is absent): op tests,
# benchmarks, short AMP trainings per project, NCCL. Writes output/gpu_check/report.{json,md}.
gpu-check:
	@set -e; \
	if [ -n "$(BUNDLE)" ]; then \
		"$${PYTHON:-python3}" tools/gpu_check.py --bundle "$(BUNDLE)" $(GPU_CHECK_ARGS); \
	else \
		$(MAKE) --no-print-directory venv; \
		$(PY) tools/gpu_check.py $(GPU_CHECK_ARGS); \
	fi
