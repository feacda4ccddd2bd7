# The two commands of the README: `make demo` and `make test`. Both set up what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
RUN := PATH="$(BIN):$$PATH" PYTHONPATH="$(abspath workflow_scripts)"
CORES ?= all
# The CUDA build of torch. Empty: PyPI's build (CUDA 13, for NVIDIA drivers >= 580), the one
# the tests run. For older drivers, a CUDA 12 build from PyTorch's own index, e.g.
# `make setup TORCH_CUDA=cu128` (or cu126): same torch and torchvision versions.
TORCH_CUDA ?=
TORCH_PINS := $(shell grep -oE '^(torch|torchvision)==[^ ]+' envs/base.txt)
# Installs are the locked versions (envs/locks/<name>.txt, written by `make lock` from the pins in
# envs/<name>.txt): the pins are the request, the lock constrains every package. A changed pin or
# lock reinstalls. With TORCH_CUDA, the lock's CUDA 13 libraries (which PyPI's torch needs and a
# CUDA 12 torch replaces with its own) are left out of the constraints: .venv/locked-<name>.txt.
CUDA_LIBRARIES := ^(nvidia-|cuda-)
locked = grep -vE '$(if $(TORCH_CUDA),$(CUDA_LIBRARIES),^$$)' envs/locks/$(1).txt > $(VENV)/locked-$(1).txt
STAMP := $(VENV)/.installed-$(shell cat envs/default.txt envs/base.txt envs/locks/default.txt | cksum | cut -d' ' -f1)$(TORCH_CUDA)
# Another environment without conda: `make env ENV=transformers4` builds .venvs/transformers4
# (README, "Environments"); rebuilt when its file or the default environment changes.
ENV ?= transformers4
# What `make gpu-wheelhouse` leaves out, for the GPU machine to have (benchmarks/gpu_wheelhouse.sh).
GPU_WHEELHOUSE_SKIP ?= pyarrow scipy pandas
ENV_STAMP = .venvs/$(ENV)/.installed-$(shell cat envs/$(ENV).txt envs/base.txt envs/locks/$(ENV).txt | cksum | cut -d' ' -f1)-$(notdir $(STAMP))

.PHONY: setup env flash-attn lock demo test lint bench gpu-wheelhouse clean

setup: $(STAMP)

$(STAMP): envs/default.txt envs/base.txt envs/locks/default.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --isolated --upgrade pip
	$(call locked,default)
ifneq ($(TORCH_CUDA),)
	$(BIN)/python -m pip install --isolated --index-url https://download.pytorch.org/whl/$(TORCH_CUDA) \
		$(addsuffix +$(TORCH_CUDA),$(TORCH_PINS))
endif
	# --isolated: ignore pip config that prefers a local CPU-only torch wheel; the PyPI
	# torchvision needs the regular torch build (which runs on CPU too).
	$(BIN)/python -m pip install --isolated -r envs/default.txt -c $(VENV)/locked-default.txt
	rm -f $(VENV)/.installed-* && touch $@

env: $(ENV_STAMP)

$(ENV_STAMP): $(STAMP) envs/$(ENV).txt envs/base.txt envs/locks/$(ENV).txt
	$(call locked,$(ENV))
	$(RUN) python -m sarchat_bench envs --build $(ENV) --constraints $(VENV)/locked-$(ENV).txt
	touch $@

demo: setup  ## the whole chain on the generated demo dataset, then the HTML report
	$(RUN) snakemake --cores $(CORES)
	$(RUN) snakemake --report results/report.html

# The lmms_eval layer is optional: where it cannot be built, tests/e2e/test_lmms_eval.py is skipped and says why.
test: setup  ## formatting and lint checks, then the test suite (real Snakemake, ms-swift and SLURM runs)
	$(MAKE) env ENV=transformers4
	-$(MAKE) env ENV=lmms_eval
	$(RUN) snakefmt --check Snakefile rules
	$(RUN) ruff check workflow_scripts tests benchmarks
	$(RUN) python -m pytest

# On a GPU node with the CUDA toolkit: flash-attn for packing / padding-free training, compiled
# against the default environment's torch (envs/gpu/flash-attn.txt; MAX_JOBS limits the compilers).
flash-attn: setup  ## flash-attn into .venv (GPU nodes only), for train: {packing: true}
	$(BIN)/python -m pip install --isolated wheel ninja packaging
	$(BIN)/python -m pip install --isolated --no-build-isolation -r envs/gpu/flash-attn.txt

lock: setup  ## resolve every environment against the registry and pin all of it (envs/locks/): the only way installed versions move
	$(RUN) python -m sarchat_bench envs --lock

lint: setup  ## snakemake --lint, snakefmt and ruff (make test runs them too)
	$(RUN) snakemake --lint
	$(RUN) snakefmt --check Snakefile rules
	$(RUN) ruff check workflow_scripts tests benchmarks

bench: setup  ## speed/memory benchmark of the dataset build (README, Performance)
	$(RUN) python benchmarks/bench_build.py

gpu-wheelhouse: setup  ## the wheels benchmarks/gpu_check.sh installs offline on a GPU machine (.gpu-wheelhouse)
	GPU_WHEELHOUSE_SKIP="$(GPU_WHEELHOUSE_SKIP)" PYTHON=$(BIN)/python bash benchmarks/gpu_wheelhouse.sh

clean:
	rm -rf results .snakemake
