# sma-forecast: GNU make targets. Needs only python3 >= 3.11 on PATH; everything else is
# installed into .venv by `make venv` (run by every other target).
#
#   make run  [ARGS="--scenario baseline --trials 20000"]
#   make test [PYTEST_ARGS="-m 'not slow' -x"]
#   make lint | make bench | make venv | make clean-venv

SHELL := /bin/bash
.DEFAULT_GOAL := test
.PHONY: venv run test lint bench clean-venv check-python

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pip: quiet, errors still shown; the build backend's deprecation warnings are silenced.
PIPFLAGS ?= --quiet
# This machine's global pip config names find-links folders that may not exist: one warning
# line per package, harmless.
PIP_NOISE := "^WARNING: Location '.*' is ignored"
ARGS ?=
PYTEST_ARGS ?=

# Prefect defaults for every command run from here (flows/_env.py sets the same ones and a few
# more in Python); `?=` keeps any value already in the environment.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY ?= false
export PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PIP_DISABLE_PIP_VERSION_CHECK ?= 1

# Install stamps are keyed on pyproject.toml's content (not its mtime, which a fresh clone or
# a branch switch changes): a new hash means a new stamp name, so pip runs again.
PYPROJECT_HASH := $(shell $(PYTHON) -c "import hashlib;print(hashlib.sha256(open('pyproject.toml','rb').read()).hexdigest()[:12])" 2>/dev/null)
DEV_STAMP := $(VENV)/.installed-dev-$(PYPROJECT_HASH)
BENCH_STAMP := $(VENV)/.installed-bench-$(PYPROJECT_HASH)

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: '$(PYTHON)' must be Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)

$(DEV_STAMP): | $(BIN)/python
	@echo "installing sma-forecast[dev,dask] into $(VENV) (once per pyproject.toml change)..."
	@rm -f $(VENV)/.installed-dev-*
	@set -o pipefail; PYTHONWARNINGS=ignore $(BIN)/python -m pip install $(PIPFLAGS) -e '.[dev,dask]' 2>&1 \
	  | { grep -v $(PIP_NOISE) || true; }
	@touch $@

$(BENCH_STAMP): $(DEV_STAMP)
	@echo "installing sma-forecast[dev,dask,bench] into $(VENV)..."
	@rm -f $(VENV)/.installed-bench-*
	@set -o pipefail; PYTHONWARNINGS=ignore $(BIN)/python -m pip install $(PIPFLAGS) -e '.[dev,dask,bench]' 2>&1 \
	  | { grep -v $(PIP_NOISE) || true; }
	@touch $@

venv: $(DEV_STAMP)

clean-venv:
	rm -rf $(VENV)

run: venv
	$(BIN)/sma-forecast run $(ARGS)

# Tests get a throw-away PREFECT_HOME (tests/conftest.py also makes its own per session).
test: venv
	@home="$$(mktemp -d)"; trap 'rm -rf "$$home"' EXIT; \
	  echo "PREFECT_HOME=$$home $(BIN)/pytest $(PYTEST_ARGS)"; \
	  PREFECT_HOME="$$home" $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy pipeline flows

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(ARGS)
