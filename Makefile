# Two commands set everything up on a fresh machine with only Python: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 8000

.PHONY: install demo test bench-import clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Migrate, load demo data if the database is empty, start web + worker + beat, print URL and logins.
demo: $(STAMP)
	$(BIN)/python manage.py demo --port $(PORT)

## Install and run the whole test suite (SQLite + filesystem broker unless DATABASE_URL / REDIS_URL are set).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench-import: $(STAMP)
	$(BIN)/python bench/import_orders.py

clean:
	rm -rf var .pytest_cache
