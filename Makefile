# Set-up and entry points. Every target installs what it needs into .venv first (once per pyproject change).
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: run test lint chaos ui bench cluster-up cluster-down

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/.installed  ## materialise the main job on the embedded default (or AUTOINTERP_CONFIG)
	$(BIN)/autointerp run

# The latent pages' browser test drives the system Chromium (Playwright cannot download browsers offline).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

# The Celery executor's test starts Postgres and Redis on 127.0.0.1 (Debian's packages).
SERVICES := /usr/bin/redis-server /usr/lib/postgresql

$(SERVICES):
	$(SUDO) apt-get install -y -q redis-server postgresql || ($(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q redis-server postgresql)

test: lint $(CHROMIUM) $(SERVICES)  ## lint, then the whole test suite (the embedded-model end-to-end test included)
	$(BIN)/pytest -q -rs

lint: $(BIN)/.installed  ## ruff: lint rules and import order (configured in pyproject.toml)
	$(BIN)/ruff check autointerp_dagster tests bench docs

chaos: $(BIN)/.installed  ## the chaos suite alone: kills at every stage, a damaged cache, a full disk, a locked file
	$(BIN)/pytest -q -rs -m chaos

ui: $(BIN)/.installed  ## the Dagster UI on http://127.0.0.1:3000
	$(BIN)/autointerp ui

cluster-up: $(BIN)/.installed $(SERVICES)  ## Postgres, Redis and two Celery workers on 127.0.0.1 (docs/deploy.md)
	$(BIN)/autointerp cluster up

cluster-down: $(BIN)/.installed  ## stop what cluster-up started
	$(BIN)/autointerp cluster down

bench: $(BIN)/.installed  ## benchmarks (after `make run`); each prints name=value lines last
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_examples.py
	$(BIN)/python bench/bench_llm.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_prompt_tokens.py
	$(BIN)/python bench/bench_embedded_judge.py
	$(BIN)/python bench/bench_llm_engines.py
