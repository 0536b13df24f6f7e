# mloops: `make run` (the demo) and `make test` (the suite) are the two commands a new user needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
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
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv lock run airflow-init demo summary ui mlflow-ui backfill test test-deps test-fast lint bench clean

help:
	@echo "make run      set up everything and run the nightly pipeline of the example models (real scheduler)"
	@echo "make test     run the test suite"
	@echo "make ui       start Airflow (supervised components) on http://127.0.0.1:8080, no login, with the local state"
	@echo "make mlflow-ui  start the MLflow UI on http://localhost:5000 over the local store"
	@echo "make backfill MODEL=churn FROM=2026-01-01 TO=2026-01-08  backfill a training DAG"
	@echo "make bench    run the benchmarks;  make lock  regenerate constraints.txt;  make lint"

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@# pip byte-compiles file by file on one core; compileall spreads the same work over every core. A file
	@# that does not compile (a test fixture of some package) is skipped, as pip skips it.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib > /dev/null || true
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
