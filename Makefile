# ProGrAL lake. The two commands of the README:
#   make run    install, seed a demo share if empty, start dagster dev + MLflow UI on 127.0.0.1
#   make test   install (incl. PostgreSQL and Chromium from the OS packages for the slow stages), run every test
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install install-system run test test-fast test-quality test-slow bench lint demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU build of torch first: a bare torch requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# OS packages for the slow infrastructure tests (PostgreSQL server, headless Chromium).
install-system:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    || ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium >/dev/null; \
	  else echo "PostgreSQL/Chromium missing and cannot apt-get: their slow tests will be skipped"; fi; \
	fi

run: install
	$(BIN)/progral serve

test: install install-system
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: install
	$(BIN)/pytest -q -m "not slow and not quality"

test-quality: install
	$(BIN)/pytest -q -m quality

test-slow: install install-system
	$(BIN)/pytest -q -m slow

lint: install
	$(BIN)/ruff check progral_dagster tests bench

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
