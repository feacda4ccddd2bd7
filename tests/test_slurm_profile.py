"""The SLURM profile renders the intended sbatch lines (stand-in SLURM commands record them)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from test_workflow import planned_rules, snakemake

pytestmark = pytest.mark.workflow
STANDIN = Path(__file__).with_name("slurm_standins") / "_standin.py"
COMMANDS = ("sbatch", "sacct", "squeue", "sacctmgr", "sshare", "scontrol", "sinfo", "scancel")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A working directory with the demo dataset built, and SLURM stand-ins on PATH."""
    root = tmp_path_factory.mktemp("cluster")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in COMMANDS:
        (bin_dir / name).symlink_to(STANDIN)
    work = root / "work"
    work.mkdir()
    snakemake(work, "build_dataset", extra_config="demo: {seed: 1, images: {train: 8, test: 6}}")
    return work, bin_dir


def run_profile(work, bin_dir, *args):
    log = work / "sbatch.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "SLURM_STANDIN_LOG": str(log),
           "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(REPO / "config.yaml"), str(work / "extra_config.yaml"),
           "--profile", str(REPO / "slurm"), "--latency-wait", "1", "--retries", "1",
           "--slurm-init-seconds-before-status-checks", "1", "--slurm-status-attempts", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, [c[1:] for c in calls if c[0] == "sbatch"]


def flag(args, name):
    return args[args.index(name) + 1]


def test_train_all_renders_gpu_sbatch_lines(cluster):
    work, bin_dir = cluster
    result, calls = run_profile(work, bin_dir, "train_all")
    assert result.returncode != 0  # every stand-in job "fails", so nothing runs for real
    first = [c for c in calls if "--attempt 1" in c[-1]]
    models = {flag(c, "--comment").split("wildcards_")[1] for c in first}
    assert len(first) == 16 and len(models) == 16
    for args in first:
        assert "--gpus=a100:2" in args and "--cpus-per-gpu=8" in args
        assert flag(args, "-p") == "gpu" and flag(args, "-A") == "sarchat"
        assert (flag(args, "--mem"), flag(args, "-t")) == ("128000", "1440")
        assert "--config 'run=paper'" in args[-1] and "--tasks" not in args
    retried = [c for c in calls if "--attempt 2" in c[-1]]
    assert len(retried) == 16 and {(flag(c, "--mem"), flag(c, "-t")) for c in retried} == {("256000", "2880")}


def test_dags_for_all_models_and_cells(cluster):
    work, _ = cluster
    args = ["--profile", str(REPO / "slurm")]
    assert planned_rules(work, "train_all", *args)["train_model"] == 16
    infer = planned_rules(work, "infer_all", *args)
    assert infer["merge_predictions"] == 16 * 9 and infer["infer_shard"] == 16 * 9 * 4
    assert planned_rules(work, "score_all", *args)["score_cell"] == 16 * 9


def test_the_training_mix_is_one_cpu_job_of_its_configured_cores(cluster):
    """Last in this file: it removes the mix that the other tests take as built."""
    work, bin_dir = cluster
    for path in ("train.jsonl", "summaries/train.json"):
        (work / "results" / "sarchat" / path).unlink()
    result, calls = run_profile(work, bin_dir, "build_dataset")
    assert result.returncode != 0
    mix = [c for c in calls if "rule_train_mix" in flag(c, "--comment") and "--attempt 1" in c[-1]]
    assert len(mix) == 1
    assert "--cpus-per-task=8" in mix[0] and flag(mix[0], "-p") == "cpu" and not any("gpu" in a for a in mix[0][:-1])
