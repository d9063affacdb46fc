# GridLedger: `make run` starts the stack, `make test` runs every test.
# Both call `make setup`, which installs only what is missing (stamp files in .stamps/).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMPS := .stamps
SOLC_VERSION := 0.8.28
SOLC_BRIDGE := .solcx/solc-v$(SOLC_VERSION)
# Slither gets a venv of its own: its solc-select dependency puts a `solc` on PATH that py-solc-x
# takes as its default compiler and that tries to download a compiler when run.
SLITHER_VENV := .venv-slither

export SOLCX_BINARY_PATH := $(CURDIR)/.solcx
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

CONTRACT_SOURCES := $(shell find contracts -name '*.sol' 2>/dev/null)
DASHBOARD_SOURCES := backend/dashboard/build.mjs $(shell find backend/dashboard/src -type f 2>/dev/null)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test test-fast test-fuzz lint bench compile dashboard clean
.DEFAULT_GOAL := run

setup: $(STAMPS)/python $(STAMPS)/npm $(SOLC_BRIDGE) $(STAMPS)/compiled $(STAMPS)/dashboard $(STAMPS)/chromium
	@$(VPY) -m backend.core.migrate

$(STAMPS)/python: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found; install Python 3.11+" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python 3.11+ required ($(PYTHON) is older)" >&2; exit 1; }
	@echo "setup: installing Python packages into $(VENV)"
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -qq --disable-pip-version-check -e '.[test,lint]'
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/npm: package.json package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "setup: node/npm not found; install Node.js 18+ with npm (needed for solc, anvil, OpenZeppelin)" >&2; exit 1; }
	@echo "setup: installing npm packages (solc, anvil, OpenZeppelin)"
	@npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

$(SOLC_BRIDGE): $(STAMPS)/python $(STAMPS)/npm toolchain/install_solc.py toolchain/solc_bridge.py
	@$(VPY) -m toolchain.install_solc .solcx >/dev/null
	@touch $@

$(STAMPS)/compiled: $(SOLC_BRIDGE) ape-config.yaml $(CONTRACT_SOURCES)
	@echo "setup: compiling contracts"
	@mkdir -p $(STAMPS) && ape compile > $(STAMPS)/compile.log 2>&1 || { cat $(STAMPS)/compile.log >&2; echo "setup: ape compile failed (log above)" >&2; exit 1; }
	@touch $@

compile: $(STAMPS)/compiled

dashboard: $(STAMPS)/dashboard

$(STAMPS)/dashboard: $(STAMPS)/npm package.json $(DASHBOARD_SOURCES)
	@echo "setup: building the dashboard (esbuild, chart.js) into backend/dashboard/static"
	@npm run --silent build:dashboard >/dev/null
	@mkdir -p $(STAMPS) && touch $@

# Headless Chromium for the dashboard's browser test (Playwright drives the Debian package).
$(STAMPS)/chromium:
	@test -x $(CHROMIUM) || { echo "setup: installing Chromium (apt-get) for the browser test"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	@mkdir -p $(STAMPS) && touch $@

run: setup
	@RESET=$(RESET) $(VPY) -m scripts.devnet

# Static checks; `make test` runs them first, so CI does too.
lint: setup $(STAMPS)/slither
	@echo "lint: ruff"
	@ruff check --quiet .
	@ruff format --check --quiet .
	@echo "lint: mypy"
	@mypy
	@echo "lint: solhint, prettier (contracts)"
	@npm run --silent lint:sol
	@echo "lint: eslint, tsc (dashboard: its API calls against the generated OpenAPI types)"
	@npm run --silent lint:js
	@npm run --silent lint:types

$(STAMPS)/slither-venv: toolchain/requirements-slither.txt
	@echo "setup: installing slither-analyzer into $(SLITHER_VENV)"
	@test -x $(SLITHER_VENV)/bin/python || $(PYTHON) -m venv $(SLITHER_VENV)
	@$(SLITHER_VENV)/bin/pip install -qq --disable-pip-version-check -r toolchain/requirements-slither.txt
	@mkdir -p $(STAMPS) && touch $@

# Slither takes about a minute: it runs again only when a contract or its setup changes.
$(STAMPS)/slither: $(STAMPS)/slither-venv $(SOLC_BRIDGE) toolchain/slither.py ape-config.yaml $(CONTRACT_SOURCES)
	@echo "lint: slither"
	@$(VPY) -m toolchain.slither
	@touch $@

# Two pytest-xdist workers (one per core; each gets its own Redis db, see tests/fixtures/services.py).
TEST_WORKERS ?= 2
test: lint
	@$(VPY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The long fuzzing run alone (stateful schemathesis, 5,000+ calls; minutes; `make test` runs it too).
test-fuzz: setup
	@$(VPY) -m pytest -m fuzz $(PYTEST_ARGS)

# The tests that need no server: no PostgreSQL, Redis, Anvil, browser or MQTT broker
# (markers set in tests/conftest.py). No lint first, so it stays a quick inner loop.
FAST_MARKERS := not postgres and not redis and not anvil and not browser and not mqtt
test-fast: setup
	@$(VPY) -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# wrk drives the HTTP benchmarks (64 keep-alive connections from a C load generator).
$(STAMPS)/wrk:
	@command -v wrk >/dev/null || { echo "setup: installing wrk (apt-get) for the API benchmarks"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }
	@mkdir -p $(STAMPS) && touch $@

bench: setup $(STAMPS)/wrk
	@$(VPY) -m bench $(if $(REPEAT),--repeat $(REPEAT)) $(BENCH)

clean:
	rm -rf $(STAMPS) .build .solcx data backend/dashboard/static $(SLITHER_VENV)
