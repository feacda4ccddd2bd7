"""The SLURM profile as a user runs it: the README's exact cluster commands, and the paper-scale
requests. Runs on the real cluster are in test_slurm_cluster.py; the one stand-in test here
covers what the one-node test cluster cannot hold (16 jobs of 2 GPUs, 16 CPUs and 128 GB)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from sarchat_bench.paper.printed import PAPER_MODELS
from support import REPO
from support.workflow import planned_rules, snakemake

pytestmark = pytest.mark.workflow
STANDIN = REPO / "tests" / "support" / "slurm_standins" / "_standin.py"
COMMANDS = ("sbatch", "sacct", "squeue", "sacctmgr", "sshare", "scontrol", "sinfo", "scancel")


def readme_cluster_commands() -> list[str]:
    """The snakemake commands of the README's "On a SLURM cluster" section, as written there."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## On a SLURM cluster"):]
    section = section[:section.index("\n## ", 3)]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("snakemake --profile slurm")]


@pytest.fixture(scope="module")
def sardet(tmp_path_factory):
    from sarchat_bench.dataset.demo_data import generate

    root = tmp_path_factory.mktemp("sardet") / "SARDet_100K"
    generate(root, seed=2, images_per_split={"train": 8, "val": 2, "test": 6})
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory, sardet):
    """A working directory whose dataset is built, so that the test files' shards are known."""
    work = tmp_path_factory.mktemp("work")
    snakemake(work, "build_dataset", "--config", f"sardet_root={sardet}")
    return work


def dry_run(command: str, work: Path, sardet: Path) -> dict:
    """A README command exactly as written (its dataset path replaced), dry, from the repo root."""
    args = shlex.split(command.replace("/path/to/SARDet_100K", str(sardet)))
    assert args[0] == "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", *args, "--dry-run", "--directory", str(work)], cwd=REPO,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    table = re.search(r"Job stats:\n(.*?)\n\n", result.stdout + result.stderr, re.S)
    rows = [line.split() for line in table.group(1).splitlines()[2:]] if table else []
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[0] != "total"}


def test_readme_cluster_commands_run_the_papers_16_models(built, sardet):
    """Copied from the README as they are: each plans the paper's 16 models, not the demo's two
    (a --config on the command line used to replace the profile's run=paper)."""
    commands = readme_cluster_commands()
    assert any(" train_all" in c for c in commands) and any(" prefetch_models" in c for c in commands)
    for command in commands:
        plan = dry_run(command, built, sardet)
        if " train_all" in command:
            assert plan["train_model"] == 16 and plan["prefetch_model"] == 16, command
        if " prefetch_models" in command:
            assert plan == {"prefetch_model": 16, "prefetch_models": 1}, command
        if command.split()[3:4] == ["all"]:
            cells = 9
            assert plan["train_model"] == 16 and plan["merge_predictions"] == 16 * cells, command
            # The no-model baseline (report.baselines) is scored beside them, without a job on SLURM.
            assert plan["infer_shard"] >= 16 * cells and plan["score_cell"] == (16 + 1) * cells
            assert plan["baseline_predictions"] == cells


def test_inference_shards_follow_the_test_files_size(built, sardet):
    from sarchat_bench.core.sharding import record_count
    from sarchat_bench.paper.tasks import CELLS

    counts = {c: record_count(built / "results" / "sarchat" / "test" / f"{c}.jsonl") for c in CELLS}
    plan = planned_rules(built, "infer_all", "--config", f"sardet_root={sardet}", "run=[tiny-qwen2-vl]",
                         "inference={samples_per_shard: 7}")
    assert plan["infer_shard"] == sum(max(1, -(-n // 7)) for n in counts.values()) > len(CELLS)


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    bin_dir = tmp_path_factory.mktemp("bin")
    for name in COMMANDS:
        (bin_dir / name).symlink_to(STANDIN)
    return bin_dir


def test_paper_scale_training_requests(built, sardet, standins, tmp_path):
    """The sbatch lines of the paper's 16 training jobs, through the profile: 2 A100s, 8 CPUs
    each, 128 GB, 24 h; a retry gets twice the memory and the partition's time limit, no more."""
    log = tmp_path / "sbatch.log"
    env = {**os.environ, "SLURM_STANDIN_LOG": str(log),
           "PATH": f"{standins}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "train_all", "--profile", "slurm", "--directory", str(built),
           "--config", f"sardet_root={sardet}", "cache_dir=results/cache", "--retries", "1", "--latency-wait", "1",
           "--slurm-init-seconds-before-status-checks", "1", "--slurm-status-attempts", "1"]
    # prefetch_model is a local rule: give it its output, as a prefetch on the login node would.
    for model in PAPER_MODELS:
        source = built / "results" / "models" / model / "source.json"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(json.dumps({"path": "/models/x", "commit": "c", "code_repo": None}))
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode != 0  # every stand-in job "fails", so nothing runs for real
    calls = [json.loads(line)[1:] for line in log.read_text().splitlines() if json.loads(line)[0] == "sbatch"]
    tests = [c for c in calls if "--test-only" in c]
    assert tests, "the requests are checked with sbatch --test-only before any job is submitted"
    jobs = [c for c in calls if "--test-only" not in c]

    def flag(args, name):
        return args[args.index(name) + 1]

    first = [c for c in jobs if "--attempt 1" in c[-1]]
    models = {flag(c, "--comment").split("wildcards_")[1] for c in first}
    assert len(first) == 16 and len(models) == 16
    for args in first:
        assert "--gpus=a100:2" in args and "--cpus-per-gpu=8" in args and "--tasks" not in args
        assert flag(args, "-p") == "gpu" and flag(args, "-A") == "sarchat"
        assert (flag(args, "--mem"), flag(args, "-t")) == ("128000", "1440")
    retried = [c for c in jobs if "--attempt 2" in c[-1]]
    assert len(retried) == 16 and {(flag(c, "--mem"), flag(c, "-t")) for c in retried} == {("256000", "1440")}
