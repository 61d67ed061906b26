# One command to run the stack, one to test it. Both install what they need.
#   make dev     the whole stack on this machine (moto server, API, event pumps)
#   make test    lint, types, template, OpenAPI, unit and integration tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 3000
EMULATOR_PORT ?= 4566
SUB ?= alice
GROUPS ?=
ENV ?= dev
PYTEST_ARGS ?=
# The domain layer is importable as Lambda sees it (the layer's python/ folder).
export PYTHONPATH := layers/domain:.

.DEFAULT_GOAL := help
.PHONY: help dev token test lint format typecheck cfn-lint openapi openapi-check unit model integration bench load soak build deploy redrive lock clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/domain/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (PYTHON=python3.12 make ...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 1>&2
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 1>&2
	@touch $(STAMP)

dev: $(STAMP)  ## run the whole stack locally: API on :$(PORT), emulator on :$(EMULATOR_PORT)
	@PORT=$(PORT) EMULATOR_PORT=$(EMULATOR_PORT) $(PY) -m devstack serve

token: $(STAMP)  ## print a token the local API accepts: make token SUB=alice [GROUPS=operators]
	@$(PY) -m devstack token --sub "$(SUB)" --groups "$(GROUPS)"

test: lint typecheck cfn-lint openapi-check unit model integration  ## everything CI holds

lint: $(STAMP)  ## ruff lint and format check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## apply ruff's fixes and formatting
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

typecheck: $(STAMP)  ## mypy (strict on the domain layer)
	@$(VENV)/bin/mypy

cfn-lint: $(STAMP)  ## the SAM template, linted
	@$(VENV)/bin/cfn-lint template.yaml && echo "cfn-lint: template.yaml clean"

openapi: $(STAMP)  ## regenerate openapi.json from the code
	@$(PY) -m tools.openapi > openapi.json

openapi-check: $(STAMP)  ## fail when openapi.json differs from what the code generates
	@$(PY) -m tools.openapi --check openapi.json

unit: $(STAMP)  ## rules without AWS (moto in-process where a repository is needed)
	@$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

integration: $(STAMP)  ## HTTP against the local stack started on free ports
	@$(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

model: $(STAMP)  ## random action sequences vs a reference model of SPEC.md (MODEL_SEQUENCES=200, MODEL_STEPS=4)
	@$(PY) -m pytest tests/model -q $(PYTEST_ARGS)

soak: $(STAMP)  ## the model-based test and schemathesis with large budgets (SOAK_SEQUENCES, SOAK_STEPS, SOAK_EXAMPLES)
	@MODEL_SEQUENCES=$${SOAK_SEQUENCES:-2000} MODEL_STEPS=$${SOAK_STEPS:-12} $(PY) -m pytest tests/model -q $(PYTEST_ARGS)
	@SCHEMATHESIS_EXAMPLES=$${SOAK_EXAMPLES:-200} $(PY) -m pytest tests/integration/test_schemathesis.py -q $(PYTEST_ARGS)

load: $(STAMP)  ## LOAD_USERS (50) app users for LOAD_SECONDS (60) on a local stack (loopback); p50/p99, errors, lost writes
	@$(PY) -m tests.load.run

bench: $(STAMP)  ## cold starts vs the floor, calls per route, fan-out and import at scale -> bench/results.json
	@# Byte code for our modules, as the installed libraries have it (a Lambda build ships it too).
	@$(PY) -m compileall -q layers/domain functions > /dev/null
	@# Faults off unless asked for: the figures compare our code with its floor on the same emulator, and retries of
	@# injected faults would add calls and noise to both (the tests run with them on).
	@DEVSTACK_FAULTS=$${DEVSTACK_FAULTS:-off} $(PY) -m bench.run $(BENCH_ARGS)

build: $(STAMP)  ## deployable artifacts in .aws-sam/build (python3.12 arm64 wheels; no Docker, no sam)
	@$(PY) -m tools.build --out .aws-sam/build

deploy: build  ## sam deploy the built template: make deploy ENV=dev|prod (needs aws-sam-cli and credentials)
	sam deploy --config-env $(ENV) --template-file .aws-sam/build/template.yaml

redrive: $(STAMP)  ## replay the stream and upload-event failure queues (re-fan, restart jobs, re-confirm uploads): make redrive ENV=dev [ARGS=--dry-run]
	@$(PY) -m tools.redrive --stack studio-records-$(ENV) $(ARGS)

lock: $(STAMP)  ## re-pin requirements-dev.txt from the venv
	@{ echo "# Everything tests, linters and the local stack need, fully pinned (pip freeze)."; \
	   echo "# Regenerate with: make lock"; $(PY) -m pip freeze --exclude-editable; } > requirements-dev.txt

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam
