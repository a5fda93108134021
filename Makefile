# Coverline — `make run` serves the API on the embedded default; `make test` checks everything.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run serve test lint types contracts pytest speech-engine browser tour-tools screenshots tour openapi messages texts bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Compiled at install, our sources at each setup: where PYTHONDONTWRITEBYTECODE is set (as on the
# machines here), nothing else would write a .pyc, and every process the tests start (servers,
# job workers, the CLI) would compile everything it imports again: 4.4 s to import the app
# instead of 1.8 s. Compiling adds about 30 s to the install.
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced
	@$(BIN)/python -m compileall -q src

# With no DATABASE_URL, on the embedded PostgreSQL under var/postgres (kept across restarts, stopped
# with the server): migrate, publish the demo catalog, create demo keys once, serve, with one job
# worker beside the server.
run: setup
	$(BIN)/coverline db upgrade
	$(BIN)/coverline catalog load catalog/demo.toml
	$(BIN)/coverline demo-keys
	@echo "API docs: http://$(HOST):$(PORT)/docs · console: /console · demo checkout: /demo/checkout"
	@set -a; . var/demo-keys.env; set +a; \
		export COVERLINE_PUBLIC_URL="$${COVERLINE_PUBLIC_URL:-http://$(HOST):$(PORT)}"; \
		$(BIN)/coverline worker & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
		$(BIN)/coverline serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check src tests migrations bench examples
	$(BIN)/ruff format --check src tests migrations bench examples

types: setup
	$(BIN)/mypy

contracts: setup
	$(BIN)/lint-imports

# Two workers, each with its own database: the suite took 1.9 times less wall time on 2 cores.
# `worksteal` hands each worker one half of the tests in file order, then lets an idle worker
# take from the other's end: a module's server, browser or localstripe mostly starts once, not
# once per worker as with `load`'s round robin (tests' summed time 556 s with `load`, 480 s).
PYTEST_WORKERS ?= 2

pytest: setup speech-engine browser tour-tools
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=15

# Debian's packages the tests need are installed as root, or through `sudo -n` (no password
# prompt: CI has no stdin) for anyone else; the README says what a machine without either needs.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
APT_INSTALL = $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends

# The tour runs the README's shell blocks through curl and jq.
tour-tools:
	@command -v curl >/dev/null && command -v jq >/dev/null || ($(APT_INSTALL) curl jq >/dev/null)

# The tests render the phone bot's speech to audio with espeak-ng (Debian's package).
speech-engine:
	@command -v espeak-ng >/dev/null || ($(APT_INSTALL) espeak-ng >/dev/null)

# The pages are tested in Debian's Chromium (or the one COVERLINE_CHROMIUM names), driven by
# Playwright (never `playwright install`: no browser download); the Noto fonts of fonts-noto-core,
# found by fontconfig wherever they are, so that Hindi and Arabic render as letters, not boxes.
CHROMIUM ?= $(or $(COVERLINE_CHROMIUM),/usr/bin/chromium)
browser:
	@test -x "$(CHROMIUM)" && fc-list -q 'Noto Sans Arabic' && fc-list -q 'Noto Sans Devanagari' || \
		($(APT_INSTALL) chromium fonts-noto-core >/dev/null)

# The README's pictures of the pages (docs/screenshots), from a server with the demo catalog.
screenshots: setup browser
	$(BIN)/python -m tests.pages.screenshots

test: lint types contracts pytest

# The README's shell blocks, each run twice in fresh shells and two time zones against a server
# with the demo catalog (also part of `make test`).
tour: setup tour-tools
	$(BIN)/pytest tests/test_tour.py

# 1,000,000 contracts in PostgreSQL (127.0.0.1:5432), the production server, wrk over loopback.
bench: setup
	@command -v wrk >/dev/null || ($(APT_INSTALL) wrk >/dev/null)
	$(BIN)/python bench/run.py $(ARGS)

openapi: setup
	$(BIN)/coverline openapi --out openapi/openapi.json

# The gettext catalogs: extract the source messages, merge them into every language's catalog
# (new ones arrive untranslated, for the translator), and compile them to check them.
LOCALES_DIR := src/entitlements/locales
messages: setup
	$(BIN)/pybabel extract --no-default-keywords -k N_:1c,2 --project Coverline --copyright-holder Coverline \
	  --no-location -w 100 -o $(LOCALES_DIR)/coverline.pot src/entitlements/summary_texts.py
	$(BIN)/pybabel update -i $(LOCALES_DIR)/coverline.pot -d $(LOCALES_DIR) -D coverline -w 100 \
	  --no-fuzzy-matching --ignore-pot-creation-date
	$(BIN)/pybabel compile -d $(LOCALES_DIR) -D coverline --statistics

# The reviewed corpus under docs/texts: every summary variant and every demo plan's terms, per
# language (a test fails when it is stale).
texts: setup
	$(BIN)/coverline catalog texts catalog/demo.toml --out docs/texts

clean:
	rm -rf $(VENV) .tools var .pytest_cache .mypy_cache .ruff_cache .hypothesis
