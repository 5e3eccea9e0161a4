# Two commands matter: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip's configured local indexes print a 'Location ... is ignored' line per package: noise.
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither' || true; }
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/requirements.lock.txt
export DO_NOT_TRACK := true
export BENTOML_DO_NOT_TRACK := true
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING ?= false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint format bench mlflow-ui pipeline pipeline-local clean help evaluate
.PHONY: serve loadtest

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install the pinned lock + the package (seconds when up to date)

$(STAMP): $(LOCK) pyproject.toml scripts/check_system.sh
	@bash scripts/check_system.sh $(PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK) $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --no-deps -e . $(QUIET_PIP)
	@touch $(STAMP)
	@echo "setup done: $(VENV) (activate with 'source $(BIN)/activate')"

demo: setup  ## run the whole system that exists on the embedded phantom data
	bash scripts/demo.sh

test: setup  ## ruff (lint + format check) + pytest with coverage, on every core (pytest-xdist)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n auto --dist loadscope --cov --cov-report=term:skip-covered -q --durations=25

lint: setup
	$(BIN)/ruff check .

format: setup  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup  ## benchmarks (benchmarks/) -> bench/results.json + bench/results.md
	$(BIN)/python -m benchmarks --out bench

pipeline: setup  ## compile the KFP package pipeline/hypomimia_pipeline.yaml (commit it)
	$(BIN)/hypomimia pipeline compile
	$(BIN)/hypomimia pipeline compile --pipeline monitor  # pipeline/monitor_pipeline.yaml (issue 16)

pipeline-local: setup  ## the whole DAG on this machine with kfp.local (a re-run with nothing changed is cached)
	$(BIN)/hypomimia pipeline run --local

mlflow-ui: setup  ## serve the local MLflow tracking store on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath work/mlflow/mlflow.db) --host 127.0.0.1 --port 5000

serve: setup  ## serve the demo's model on http://127.0.0.1:3000 (page at /; key from HYPOMIMIA_API_KEY)
	$(BIN)/hypomimia serve --params params.yaml --host 127.0.0.1 --port 3000

loadtest: setup  ## 8 locust users on /predict against a local server -> bench/serving/loadtest.json
	$(BIN)/python -m benchmarks.serving --loadtest --out bench/serving --users 8 --seconds 30

# The full evaluation after `make demo`: every model, every fold, both temporal-ablation designs
# (44 CPU trainings, ~2 h on 2 cores; docs/evaluation.md). The cluster runs it from params/gpu.yaml.
EVALUATE_FULL := --set 'evaluate.models=[i3d,r3d18,resnet2d50,landmark_static,landmark_dynamic,voice]' \
	--set 'evaluate.folds=[]' --set 'evaluate.ablation.frames=[4,8,14,16,32]' \
	--set 'evaluate.ablation.designs=[fixed_stride,fixed_duration]'
evaluate: setup  ## the full evaluation on the demo's data (models x folds x temporal ablation) -> work/evaluate-full
	$(BIN)/hypomimia evaluate --params params.yaml $(EVALUATE_FULL) --voice work/voice --model work/train --out work/evaluate-full

clean:  ## remove generated work files (keeps .venv)
	rm -rf work .pytest_cache .ruff_cache .coverage htmlcov
