# The two commands a newcomer needs: `make run` (watch the race) and `make test` (everything CI runs).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make run` installs only what the race needs (quick); the first `make test` or `LOCAL_LLM=1` adds the rest.
RUN_STAMP := $(VENV)/.installed-run
LLM_STAMP := $(VENV)/.installed-llm

.PHONY: run backtest evaluate replay test venv lint typecheck pytest migrate seed sql-script bench clean iac-check package web web-test

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (azure-functions 1.x)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): $(PY) requirements.txt requirements-local.txt ml_service/requirements.txt
	@echo "Installing the race's Python dependencies into $(VENV): FastAPI, SQLAlchemy, uvicorn, and torch (CPU)"
	@echo "for the ML agent's service (requirements-local.txt). The first time takes a few quiet minutes."
	$(PY) -m pip install --quiet -r requirements-local.txt
	touch $(RUN_STAMP)

$(LLM_STAMP): $(RUN_STAMP) requirements-llm.txt
	@echo "Installing llama.cpp's Python server (built from source once: ~9 minutes on 2 cores)"
	$(PY) -m pip install --quiet -r requirements-llm.txt
	touch $(LLM_STAMP)

$(STAMP): $(RUN_STAMP) $(LLM_STAMP) requirements-dev.txt
	@echo "Installing the test and lint tools into $(VENV) (requirements-dev.txt)"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Run the race locally: migrate, seed, replay 2024 on a simulated clock, serve http://localhost:7071/api
## `make run LOCAL_LLM=1` also races a real LLM offline (SmolLM2-135M on a local llama.cpp server): it takes
## 10-25 s a decision on a small CPU, hence the longer agent timeout (and HTTP timeout of its calls).
RUN_DEPS := $(RUN_STAMP)
ifeq ($(LOCAL_LLM),1)
RUN_ENV := Local__LocalLlm=true Race__AgentTimeoutSeconds=60 Llama__TimeoutSeconds=55
RUN_DEPS += $(LLM_STAMP)
endif
run: $(RUN_DEPS)
	@scripts/build-web.sh
	$(RUN_ENV) $(PY) -m shared.local_race $(ARGS)

## Fast-forward the race to UNTIL (default: the end of the bundled 2024 data) at full speed, then exit;
## `make run` then resumes the live replay from there. The same rows as the timer jobs, a transaction per week.
## REPLAY_DIR=path races your own candle files instead (README, "Bring your own market data").
UNTIL ?= 2025-01-01
REPLAY_ENV := $(if $(REPLAY_DIR),MarketData__ReplayDir=$(REPLAY_DIR))
backtest: $(RUN_STAMP)
	$(REPLAY_ENV) $(PY) -m shared.local_race --fast-forward $(UNTIL) --no-http --cycles 0 $(ARGS)

## Robustness across windows: the roster over disjoint windows (WINDOWS=monthly|quarterly|N, JOBS=cores), one
## database and process each; tables, JSON and a PNG in build/evaluation/ (README, "make evaluate")
WINDOWS ?= monthly
evaluate: $(RUN_STAMP)
	$(REPLAY_ENV) $(PY) -m shared.evaluate --windows $(WINDOWS) $(if $(JOBS),--jobs $(JOBS)) $(ARGS)

## Rerun stored decision ID on its own model (or ARGS="--agent-id N", "--provider P --model M", "--json");
## prints the original and the counterfactual side by side and writes nothing
replay: $(RUN_STAMP)
	@test -n "$(ID)" || { echo "usage: make replay ID=<decision id> [ARGS=...]"; exit 2; }
	$(PY) -m shared.replay $(ID) $(ARGS)

## Everything CI runs: lint, type check, then the whole test suite with PostgreSQL and Redis started on loopback
test: $(STAMP)
	$(MAKE) --no-print-directory lint typecheck
	scripts/with-services.sh $(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory web-test

## The dashboard (web/dist): `npm ci` + `vite build` when missing or older than its sources (Node.js 18+)
web:
	scripts/build-web.sh

## The dashboard's lint, types, component tests and browser tests against a real race (Node.js 18+, Chromium)
web-test: $(RUN_STAMP)
	scripts/web-test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

migrate: $(RUN_STAMP)
	$(PY) -m shared.adapters.db.migrate upgrade

## The offline T-SQL migration script for Azure SQL (reviewed before it runs in production)
sql-script: $(RUN_STAMP)
	$(PY) -m shared.adapters.db.migrate sql --dialect mssql -o build/azure-sql-migration.sql

## Print the performance figures (bench/README.md); PostgreSQL is started for the API bench's second run
bench: $(STAMP)
	scripts/with-services.sh bash -c 'set -e; export PYTHONPATH=.; for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f; done; echo "== bench/bench_api.py --postgres"; $(PY) bench/bench_api.py --postgres'


## checkov (Bicep) + actionlint, in their own .venv-iac (make test runs them too, through tests/infra)
iac-check:
	scripts/iac-check.sh

## The Function App zip, honouring .funcignore
package: $(RUN_STAMP)
	$(PY) infra/scripts/package_functions.py -o build/functionapp.zip

clean:
	rm -rf $(VENV) .venv-iac build .mypy_cache .ruff_cache .pytest_cache web/node_modules web/dist
