# Two user-facing commands: `make demo` and `make test`. Both create .venv when it is missing.
# Overrides: PYTHON=/path/to/python3.10; D2_REQUIREMENTS= skips the prebuilt detectron2 wheel
# when PYTHON (any version) already has a source build of detectron2: the venv then sees that
# interpreter's packages (--system-site-packages).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
D2_REQUIREMENTS ?= requirements-detectron2.txt
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv demo test lint format clean-demo

venv: $(STAMP)

$(STAMP): requirements.txt $(D2_REQUIREMENTS) setup.py pyproject.toml $(wildcard projects/*/*/__init__.py)
	@set -e; \
	if [ ! -x "$(PY)" ]; then \
		if [ -n "$(D2_REQUIREMENTS)" ]; then python="$$(tools/find_python310.sh)"; \
		else python="$${PYTHON:-python3}"; fi; \
		echo "Creating $(VENV) with $$python"; \
		"$$python" -m venv $(if $(D2_REQUIREMENTS),,--system-site-packages) $(VENV); \
	fi; \
	$(PY) -m pip install --quiet --upgrade "pip>=23.3" "setuptools>=69" wheel; \
	$(PY) -m pip install --quiet -r requirements.txt $(addprefix -r ,$(D2_REQUIREMENTS)); \
	$(PY) -m pip install --quiet --no-deps -e .; \
	$(PY) -c "import detectron2, torch; print('detectron2', detectron2.__version__, 'torch', torch.__version__)"; \
	touch $(STAMP)

demo: venv
	$(PY) tools/run_demo.py --output-dir output/demo

# The projects' multi-seed studies (configs/*/studies/*.yaml; each arm over seeds 0, 1, 2): hours
# on 2 CPU cores, not CI. Resumable: finished runs are kept. One study: STUDIES=<file>.
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
