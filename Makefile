# Two commands set everything up on a fresh machine with only Python: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 8000
# Test processes (pytest-xdist); a file's tests stay together in one. PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= 2

# `make lock` runs uv from a virtualenv of its own: the compiler is not a dependency of the project.
LOCK_TOOL := uv==0.13.9
LOCK_VENV := var/lock-tools-$(subst ==,-,$(LOCK_TOOL))
# --universal: one lock for Linux (Docker, CI) and developers' Macs alike. uv keeps the pins already in the
# .txt files unless an .in file asks otherwise; LOCK_ARGS=--upgrade (or --upgrade-package NAME) moves them.
LOCK := $(LOCK_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: install catalogues messages lock demo test backup restore bench-import clean

# The compiled catalogues (.mo) are built, not committed (.gitignore): each from its .po whenever that changes,
# by Babel in pure Python (core/catalogues.py), since GNU gettext's msgfmt is not on a fresh machine.
PO_FILES := $(wildcard locale/*/LC_MESSAGES/*.po */locale/*/LC_MESSAGES/*.po)
MO_FILES := $(PO_FILES:.po=.mo)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	rm -f $(VENV)/.installed-* && touch $(STAMP)

%.mo: %.po | $(STAMP)
	$(BIN)/python -m core.catalogues $<

catalogues: $(MO_FILES)

install: $(STAMP) catalogues

## Compile requirements.in / requirements-dev.in into the locks: every dependency pinned, with hashes.
lock:
	test -x $(LOCK_VENV)/bin/uv || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(LOCK_TOOL) 2>&1 | { grep -v "^WARNING: Location" || true; }; }
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt

## Extract the strings of the code into the .po files (needs GNU gettext: apt-get install gettext), for every
## language that has catalogues; LANGS="-l fa" starts a new one. The touchpoints app's catalogue holds its code
## and the templates it owns, which makemessages would otherwise put in the project's (tests/test_catalogues.py
## checks that this reproduces the committed msgids exactly).
LANGS ?= --all
messages: $(STAMP)
	$(BIN)/python manage.py makemessages --ignore touchpoints --ignore var $(LANGS)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir -p "$$tmp/templates/admin" \
	  && ln -s "$(CURDIR)/touchpoints" "$$tmp/touchpoints" && ln -s "$(CURDIR)/touchpoints/locale" "$$tmp/locale" \
	  && ln -s "$(CURDIR)/templates/touchpoints" "$$tmp/templates/touchpoints" \
	  && ln -s "$(CURDIR)/templates/admin/touchpoints" "$$tmp/templates/admin/touchpoints" \
	  && cd "$$tmp" && env -u DJANGO_SETTINGS_MODULE "$(CURDIR)/$(BIN)/python" -m django makemessages --symlinks --ignore locale $(LANGS)

## Migrate, load demo data if the database is empty, start web + worker + beat, print URL and logins.
demo: $(STAMP) catalogues
	$(BIN)/python manage.py demo --port $(PORT)

## Install and run the whole test suite (SQLite + filesystem broker unless DATABASE_URL / REDIS_URL are set).
test: $(STAMP) catalogues
	$(BIN)/python -m pytest $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

## Back up DATABASE_URL: pg_dump -Fc into var/backups/<db>-<UTC time>.dump (or BACKUP_FILE=...); prints file and size.
backup: $(STAMP)
	$(BIN)/python manage.py db_backup

## Restore BACKUP_FILE into RESTORE_DATABASE_URL (default DATABASE_URL; created when missing; FORCE=1 to replace a
## database that has tables), then migrate --check. Make passes these variables in the environment, not on a command line.
restore: $(STAMP)
	$(BIN)/python manage.py db_restore

bench-import: $(STAMP)
	$(BIN)/python bench/import_orders.py

clean:
	rm -rf var .pytest_cache
