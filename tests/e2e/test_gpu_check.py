"""benchmarks/gpu_check.sh in its CPU dry run: the chain it runs on a GPU machine (a tiny model
trained through `python -m sarchat_bench train`, predicted through predict_shard) runs here in
float32 and prints its figures. It has not run on a GPU in these tests: there is none."""

import json
import os
import re
import subprocess
import sys

import pytest
from support import REPO

pytestmark = pytest.mark.swift


def test_the_gpu_check_runs_its_chain_on_the_cpu(tmp_path):
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path / "check"), "MODELSCOPE_CACHE": str(tmp_path / "ms"),
           "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu-dry-run", "--steps", "2",
                             "--train", '{"lora_rank": 4}'], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert 'extra train settings: {"lora_rank": 4}' in out
    assert re.search(r"^training: 8 samples, 2 steps in [\d.]+ s \(\d+ tokens/s", out, re.M), out
    assert re.search(r"^inference \(transformers\): \d+ records in [\d.]+ s \(\d+ generated tokens/s", out, re.M), out
    command = json.loads((tmp_path / "check" / "adapter.json").read_text())["command"]
    assert command[command.index("--lora_rank") + 1] == "4"  # the extra train: setting reached swift sft
