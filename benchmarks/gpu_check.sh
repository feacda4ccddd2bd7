#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, torch and transformers but neither ms-swift nor
# network, train a tiny model in bf16 through `python -m sarchat_bench train` and predict
# through the workflow's inference code (transformers backend; vLLM where it imports), printing
# tokens per second and peak GPU memory (benchmarks/gpu_check.py).
#
#   bash benchmarks/gpu_check.sh [--cpu-dry-run] [--steps N] [--train '{"grouping": "..."}']
#
# ms-swift and what it needs beyond torch and transformers come from the wheelhouse that
# `make gpu-wheelhouse` downloads here (benchmarks/gpu_wheelhouse.sh; carry .gpu-wheelhouse with
# the repository): they go into a venv (.gpu-venv) that sees the machine's own packages
# (--system-site-packages), installed offline (--no-index). Where ms-swift already imports,
# nothing is installed. --train passes extra `train:` settings (JSON) to the training job, e.g.
# issue #22 part B's grouping or packing options; --cpu-dry-run runs the chain on the CPU in
# float32 (tests/e2e/test_gpu_check.py). Writes its scratch files under ${GPU_CHECK_OUT:-/tmp/gpu-check};
# PYTHON picks the interpreter (default python3).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELHOUSE="${GPU_WHEELHOUSE:-$REPO/.gpu-wheelhouse}"
PYTHON="${PYTHON:-python3}"
OUT="${GPU_CHECK_OUT:-/tmp/gpu-check}"

if ! "$PYTHON" -c "import swift" 2>/dev/null; then
    if [ ! -d "$WHEELHOUSE" ]; then
        echo "error: ms-swift does not import and there is no wheelhouse at $WHEELHOUSE (make gpu-wheelhouse)" >&2
        exit 1
    fi
    # What the wheelhouse leaves out by default (benchmarks/gpu_wheelhouse.sh) must be the machine's.
    for module in pyarrow scipy pandas; do
        if ! ls "$WHEELHOUSE" | grep -qi "^$module-" && ! "$PYTHON" -c "import $module" 2>/dev/null; then
            echo "error: $module does not import here and the wheelhouse has none: make gpu-wheelhouse GPU_WHEELHOUSE_SKIP= (all wheels, about 124 MiB) or install it" >&2
            exit 1
        fi
    done
    VENV="$REPO/.gpu-venv"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    # --no-deps: the wheelhouse holds exactly what the machine lacks; torch and transformers are the machine's.
    "$VENV/bin/python" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" --no-deps "$WHEELHOUSE"/*.whl
    PYTHON="$VENV/bin/python"
    "$PYTHON" -c "import swift, peft, qwen_vl_utils, datasets" || {
        echo "error: ms-swift still does not import after installing $WHEELHOUSE (a wheel is missing: see above)" >&2
        exit 1
    }
fi
# The machine's torch and transformers are what is checked, not the project's pins.
export SARCHAT_USE_RUNNING_ENVIRONMENT=1 PYTHONPATH="$REPO/workflow_scripts${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
rm -rf "$OUT"
exec "$PYTHON" "$REPO/benchmarks/gpu_check.py" --out "$OUT" "$@"
