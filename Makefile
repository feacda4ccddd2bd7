# The two commands of the README: `make demo` and `make test`. Both set up what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-$(shell cat envs/requirements.txt envs/base.txt | cksum | cut -d' ' -f1)
RUN := PATH="$(BIN):$$PATH"
CORES ?= all

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): envs/requirements.txt envs/base.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --isolated --upgrade pip
	# --isolated: ignore pip config that prefers a local CPU-only torch wheel; the PyPI
	# torchvision needs the regular torch build (which runs on CPU too).
	$(BIN)/python -m pip install --isolated -r envs/requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

demo: setup  ## the whole chain on the generated demo dataset, then the HTML report
	$(RUN) snakemake --cores $(CORES)
	$(RUN) snakemake --report results/report.html

test: setup  ## the test suite (unit tests, then real Snakemake/ms-swift runs)
	$(RUN) python -m pytest

lint: setup
	$(RUN) snakemake --lint

bench: setup  ## speed/memory benchmark of the dataset build (README, Performance)
	$(RUN) python benchmarks/bench_build.py

clean:
	rm -rf results .snakemake
