# The two set-up commands of the README: `make demo` and `make test`.
# Both install what they need, idempotently: Debian's ngspice packages (root, or
# passwordless sudo, else a clear message), a .venv, and this project.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.topkima-installed
NGSPICE_PKGS := ngspice libngspice0 libngspice0-dev
OUT ?= out
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test setup ngspice clean

ngspice:
	@if dpkg -s $(NGSPICE_PKGS) >/dev/null 2>&1; then exit 0; fi; \
	echo "Installing Debian packages: $(NGSPICE_PKGS)"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; \
	else echo "ngspice is missing and this user cannot install it. Run as root:"; \
	     echo "  apt-get install -y $(NGSPICE_PKGS)"; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y -q $(NGSPICE_PKGS) </dev/null || \
	  { $$SUDO apt-get update -q </dev/null && $$SUDO apt-get install -y -q $(NGSPICE_PKGS) </dev/null; }

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: ngspice $(STAMP)

demo: setup
	$(BIN)/topkima calibrate --quick --out $(OUT)/calibration_quick.json --cache .cache/spice
	$(BIN)/topkima compare-golden --artefact $(OUT)/calibration_quick.json

test: setup
	$(BIN)/pytest

clean:
	rm -rf $(OUT) .cache .pytest_cache
