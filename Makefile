# mloops: `make run` (the demo) and `make test` (the suite) are the two commands a new user needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLER ?= uv
INSTALL_ARGS = -r requirements.txt -r requirements-dev.txt -c constraints.txt
export MLOOPS_HOME ?= $(CURDIR)/.mloops
export AIRFLOW_HOME ?= $(MLOOPS_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__EXECUTOR ?= LocalExecutor
# Local stacks: no login (SimpleAuthManager, everyone is admin), the API on 127.0.0.1 only.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS ?= True
export AIRFLOW__API__HOST ?= 127.0.0.1
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
# Bytecode is cached in the project's own virtualenv: scripts/precompile.py writes what the stack imports
# at install time, and a module it missed is written on its first import, not compiled again by every
# process (as it would be with PYTHONDONTWRITEBYTECODE, which containers and CI often set).
unexport PYTHONDONTWRITEBYTECODE
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv lock run airflow-init demo summary ui mlflow-ui backfill test test-deps test-fast lint bench clean

help:
	@echo "make run      set up everything and run the nightly pipeline of the example models (real scheduler)"
	@echo "make test     run the test suite"
	@echo "make ui       start Airflow (supervised components) on http://127.0.0.1:8080, no login, with the local state"
	@echo "make mlflow-ui  start the MLflow UI on http://localhost:5000 over the local store"
	@echo "make backfill MODEL=churn FROM=2026-01-01 TO=2026-01-08  backfill a training DAG"
	@echo "make bench    run the benchmarks;  make lock  regenerate constraints.txt;  make lint"

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt scripts/precompile.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs the same pinned set as pip (the constraints pin every package) in seconds, downloading in
	@# parallel; pip is the fallback (INSTALLER=pip forces it, e.g. for an index only pip's config names).
	if [ "$(INSTALLER)" != pip ] && $(BIN)/python -m pip install --quiet uv -c constraints.txt \
	    && $(BIN)/uv pip install --quiet --python $(BIN)/python $(INSTALL_ARGS); then :; else \
	  $(BIN)/python -m pip install --quiet --upgrade pip && $(BIN)/python -m pip install --quiet --no-compile $(INSTALL_ARGS); fi
	@# Bytecode for what the stack imports (not the whole venv: most of its files are never imported).
	$(BIN)/python scripts/precompile.py
	touch $@

venv: $(BIN)/.installed

lock:
	PYTHON=$(PYTHON) scripts/lock.sh

airflow-init: venv
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(MLOOPS_HOME)/airflow-db-migrate.log
	$(BIN)/airflow pools set $${MLOOPS_REGISTRY_POOL:-mloops_registry} 1 "Serializes MLflow registry writes" > /dev/null

run: airflow-init
	$(BIN)/python scripts/demo.py

summary: venv
	$(BIN)/python -m mloops.summary

ui: airflow-init
	AIRFLOW__API__PORT=$${AIRFLOW__API__PORT:-8080} $(BIN)/python -m scripts.devstack ui

mlflow-ui: venv
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(MLOOPS_HOME)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

backfill: airflow-init
	@test -n "$(MODEL)" -a -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill MODEL=<model> FROM=YYYY-MM-DD TO=YYYY-MM-DD [REPROCESS=none|failed|completed]"; exit 2; }
	$(BIN)/airflow dags unpause mloops_train_$(MODEL) > /dev/null
	$(BIN)/python scripts/backfill.py --dag-id mloops_train_$(MODEL) --from-date $(FROM) --to-date $(TO) \
	  --max-active-runs 1 --reprocess $(or $(REPROCESS),none)

# System packages the suite uses: docker-compose validates docker-compose.yml (no engine needed),
# Chromium and its driver run the browser tests. Installed once (Debian/apt, as root), quietly.
TEST_APT_PACKAGES := docker-compose chromium chromium-driver

test-deps:
	@missing=""; for p in $(TEST_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "make test needs these system packages:$$missing (install them as root: apt-get install$$missing)" >&2; exit 1; \
	  fi; \
	  echo "make test-deps: installing$$missing"; \
	  log=$$(mktemp); \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; } >$$log 2>&1 || { cat $$log >&2; rm -f $$log; exit 1; }; \
	  rm -f $$log; \
	fi

test: venv test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "unit or dags or operators" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check dags plugins tests deploy scripts bench
	$(BIN)/ruff format --check --quiet dags plugins tests deploy scripts bench
	$(BIN)/mypy plugins/mloops plugins/mloops_examples

bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(MLOOPS_HOME)
