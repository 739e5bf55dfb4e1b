# Globeguard — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes: one per core; each module stays in one (its module-scoped servers start once).
TEST_WORKERS ?= auto

.DEFAULT_GOAL := help
.PHONY: help install ui run test fuzz lint bench clean
UI_DIST := src/globeguard/web/dist/index.html
UI_SOURCES := $(shell find ui/src ui/public -type f 2>/dev/null) ui/package.json ui/package-lock.json ui/index.html ui/vite.config.ts

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install Globeguard with its pinned dependencies

# The install's build hook builds the dashboard too; this rebuilds it after ui/ changes.
$(UI_DIST): $(UI_SOURCES)
	cd ui && npm ci --no-audit --no-fund && npm run build

ui: $(UI_DIST) ## Build the dashboard (ui/ → src/globeguard/web/dist)

run: $(STAMP) $(UI_DIST) ## Start the service on SQLite (./var) at http://127.0.0.1:8000
	@echo "Globeguard: API docs at http://$(HOST):$(PORT)/docs"
	@echo "Dashboard:  http://$(HOST):$(PORT)/dashboard/   (sign in as an admin)"
	@echo "First admin: $(BIN)/globeguard admin create --username admin   (prints a password)"
	@echo "Demo data:  $(BIN)/globeguard demo seed --users 100000 --seed 1"
	$(BIN)/globeguard serve --host $(HOST) --port $(PORT)

test: $(STAMP) $(UI_DIST) ## Run every test: SQLite, PostgreSQL, the browser, vitest
	@set -e; scripts/ensure-tools.sh; services=$$(scripts/ensure-services.sh); \
	env $$services $(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)
	cd ui && npm test

FUZZ_EXAMPLES ?= 25

fuzz: $(STAMP) ## Schemathesis, longer: every operation as admin, user, anonymous; SQLite, PostgreSQL
	@set -e; services=$$(scripts/ensure-services.sh); \
	env $$services GLOBEGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz -s -q -p no:cacheprovider

lint: $(STAMP) ## Ruff, mypy, and the import layers (lint-imports, pyproject.toml)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP) ## Benchmarks: throughput and tail latency as ratios measured on this machine
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/travel.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/analytics.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/statements.py

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
