#!/usr/bin/env bash
# `make gpu-wheelhouse`: download, here where PyPI is reachable, the wheels that
# benchmarks/gpu_check.sh installs offline on a GPU machine that has torch and transformers but
# not ms-swift: every distribution the check's training and inference processes import, less
# torch's and transformers' own requirements (the list below: measured by dumping sys.modules at
# the exit of each process of `gpu_check.sh --cpu-dry-run`, mapped to distributions). Versions
# are the default environment's lock (envs/locks/default.txt). Prints the size and the list.
#
#   bash benchmarks/gpu_wheelhouse.sh [DIR]    (default .gpu-wheelhouse, git-ignored)
#
# GPU_PYTHON_VERSION (default: this python's, e.g. 3.11) and GPU_PLATFORM pick the compiled
# wheels for the GPU machine's interpreter. GPU_WHEELHOUSE_SKIP leaves out distributions the GPU
# machine must already have; by default the three largest, pyarrow, scipy and pandas (98 of the
# 124 MiB of the whole list; GPU images with a data stack ship them), which keeps the wheelhouse
# at about 26 MiB, within what a device run carries (64 MiB). GPU_WHEELHOUSE_SKIP="" takes all.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$REPO/.gpu-wheelhouse}"
PYTHON="${PYTHON:-python3}"
PYV="${GPU_PYTHON_VERSION:-$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}"
PLATFORM="${GPU_PLATFORM:-manylinux_2_28_x86_64}"
NEEDED="accelerate aiohappyeyeballs aiohttp aiosignal attrs cffi charset-normalizer cloudpickle cryptography
datasets defusedxml dill einops frozenlist jmespath json-repair modelscope modelscope-hub ms-swift multidict
multiprocess orjson pandas peft propcache protobuf psutil pyarrow python-dateutil qwen-vl-utils requests scipy
sentencepiece simplejson tabulate trl urllib3 xxhash yarl zstandard"
skip=" ${GPU_WHEELHOUSE_SKIP-pyarrow scipy pandas} "
pins=()
for name in $NEEDED; do
    [[ "$skip" == *" $name "* ]] && continue
    pin="$(grep -i -m1 "^${name}==" "$REPO/envs/locks/default.txt" || true)"
    pins+=("${pin:-$name}")
done
mkdir -p "$OUT"
# manylinux_2_28 wheels and the older manylinux2014 ones both install on current GPU images.
"$PYTHON" -m pip download --isolated --quiet --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
    --platform "$PLATFORM" --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_34_x86_64 -d "$OUT" "${pins[@]}"
echo "wheelhouse $OUT for Python $PYV ($PLATFORM), without:${skip% }: $(ls "$OUT"/*.whl | wc -l) wheels," \
     "$(du -cb "$OUT"/*.whl | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}')"
ls -l "$OUT"/*.whl | awk '{printf "  %8.1f MiB  %s\n", $5 / 1048576, $NF}' | sed "s|$OUT/||" | sort -k3
