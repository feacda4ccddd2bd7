"""benchmarks/gpu_check.sh in its CPU dry run: the chain it runs on a GPU machine (a tiny model
trained through `python -m sarchat_bench train` on the training mix and on it grouped by the
grouping job, predicted through predict_shard) runs here in float32 and prints its figures. It
has not run on a GPU in these tests: there is none."""

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
    assert re.search(r"^training \(single-turn\): 8 sequences holding 8 samples, 2 steps in [\d.]+ s "
                     r"\(\d+ tokens/s, [\d.]+ samples/s", out, re.M), out
    grouped = re.search(r"^training \(grouping: all\): 8 sequences holding (\d+) samples, 2 steps in [\d.]+ s "
                        r"\(\d+ tokens/s, [\d.]+ samples/s", out, re.M)
    assert grouped and int(grouped.group(1)) > 8, out  # a conversation holds several samples
    assert re.search(r"^grouped / single-turn: samples per second [\d.]+x, tokens per second [\d.]+x", out, re.M), out
    assert re.search(r"^inference \(transformers\): \d+ records in [\d.]+ s \(\d+ generated tokens/s", out, re.M), out
    for run, grouping in (("single-turn", None), ("grouping-all", "all")):
        command = json.loads((tmp_path / "check" / run / "adapter.json").read_text())["command"]
        assert command[command.index("--lora_rank") + 1] == "4"  # the extra train: setting reached swift sft
        assert ("--loss_scale" in command) == (grouping is not None)
    dataset = json.loads((tmp_path / "check" / "grouping-all" / "adapter.json").read_text())["dataset_read"]
    assert dataset == str(tmp_path / "check" / "grouped.jsonl")  # the grouping job's file, one pass in 2 steps
