"""The SLURM path on a real SLURM cluster: one node on localhost (Debian's slurm-wlm, munge,
slurmdbd with MariaDB, so that the executor plugin's default `sacct` status path is the one
tested), started and stopped by tests/support/slurm_cluster.sh. Jobs go through the project's own
profile (slurm/), unmodified: slurm/site.yaml already names the test cluster's account,
partitions and GPU type. One thing the test cluster cannot show is a GPU itself: its two A100s
are device files declared as gres, so a GPU job is scheduled, accounted and sees
CUDA_VISIBLE_DEVICES as on a real node, but computes on the CPU."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest
from support import REPO
from support.workflow import snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]
CLUSTER_SH = REPO / "tests" / "support" / "slurm_cluster.sh"
DEMO = "demo: {seed: 4, images: {train: 10, test: 6}}\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("the SLURM tests install and start Debian's slurm-wlm: they need root and apt-get")
    subprocess.run([str(CLUSTER_SH), "install"], check=True, timeout=900)
    # munged wants every folder above its socket open to all (pytest's are owner-only).
    state = Path(tempfile.mkdtemp(prefix="sarchat-slurm-", dir="/tmp"))
    state.chmod(0o755)
    try:
        subprocess.run([str(CLUSTER_SH), "up", str(state)], check=True, timeout=300, stdout=subprocess.DEVNULL)
        yield state
    finally:
        subprocess.run([str(CLUSTER_SH), "down", str(state)], timeout=300)
        shutil.rmtree(state, ignore_errors=True)


def through_profile(work: Path, *args, extra: str = "", demo: str = DEMO, timeout: int = 900, check: bool = True):
    """`snakemake --profile slurm ...` from the repository root, as the README says, with the
    working directory in `work`; `extra` is YAML added after the profile's config files."""
    (work / "extra.yaml").write_text(demo + extra)
    cmd = ["timeout", "-s", "KILL", str(timeout), sys.executable, "-m", "snakemake", *args, "--profile", "slurm",
           "--directory", str(work), "--configfile", "config.yaml", "slurm/site.yaml", str(work / "extra.yaml"),
           "--slurm-logdir", str(work / "slurm-logs"), "--slurm-keep-successful-logs",
           "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-8000:]}")
    return result


def cluster_jobs(work: Path) -> dict[str, list[dict]]:
    """The cluster jobs of a run, per rule and wildcards (from the plugin's log folder), each
    with sacct's view of it, in submission order."""
    jobs: dict[str, list[dict]] = {}
    for log in sorted((work / "slurm-logs").rglob("*.log"), key=lambda p: int(p.stem)):
        rule, wildcards = log.parent.parent.name, log.parent.name
        out = subprocess.run(["sacct", "-j", log.stem, "-X", "-n", "-P", "--format",
                              "Partition,Account,AllocTRES,State,Timelimit"],
                             capture_output=True, text=True, check=True).stdout.strip()
        partition, account, tres, state, limit = out.splitlines()[0].split("|")
        jobs.setdefault(f"{rule}/{wildcards}", []).append(
            {"id": log.stem, "partition": partition, "account": account, "tres": tres, "state": state,
             "limit": limit, "log": log.read_text()})
    return jobs


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_dataset_through_the_cluster_matches_a_local_build(cluster, tmp_path):
    from sarchat_bench.dataset.demo_data import generate

    sardet = tmp_path / "SARDet_100K"  # one dataset folder: the filter reports name its annotation files
    generate(sardet, seed=4, images_per_split={"train": 10, "test": 6})
    local, remote = tmp_path / "local", tmp_path / "cluster"
    local.mkdir(), remote.mkdir()
    snakemake(local, "build_dataset", "--config", f"sardet_root={sardet}")
    result = through_profile(remote, "build_dataset", extra=f"sardet_root: {sardet}\n")
    assert files_under(remote / "results" / "sarchat") == files_under(local / "results" / "sarchat")
    # Seconds-long steps run on the submit host, never as a queue of cluster jobs.
    assert "localrule train_mix:" in result.stderr and "localrule annotations:" in result.stderr
    assert not (remote / "slurm-logs").exists()


MODELS = """run: [tiny-qwen2-vl, tiny-llava1.5]
models:
  tiny-llava1.5:  # the same tiny model on one (fake) A100 for training and inference
    train: {gpus: 1, cpus_per_gpu: 1}
    infer: {gpus: 1, cpus_per_gpu: 1}
"""


def test_cpu_and_gpu_models_train_and_predict_through_the_cluster(cluster, tmp_path):
    """tiny-qwen2-vl has gpus: 0 (a CPU job, which used to fail with --gpus=a100:0);
    tiny-llava1.5 asks for one A100 and sees it."""
    targets = [f"results/predictions/{m}/{c}.jsonl" for m in ("tiny-qwen2-vl", "tiny-llava1.5")
               for c in ("count", "refer_multi")]
    through_profile(tmp_path, *targets, extra=MODELS)
    jobs = cluster_jobs(tmp_path)
    assert set(jobs) == {"rule_train_model/tiny-qwen2-vl", "rule_train_model/tiny-llava1.5"} | {
        f"rule_infer_shard/{m}_{c}_1-of-1" for m in ("tiny-qwen2-vl", "tiny-llava1.5")
        for c in ("count", "refer_multi")}
    for name, (job,) in jobs.items():
        assert job["state"] == "COMPLETED" and job["account"] == "sarchat", (name, job)
        if "tiny-llava1.5" in name:
            assert job["partition"] == "gpu" and "gres/gpu:a100=1" in job["tres"], (name, job)
        else:
            assert job["partition"] == "cpu" and "gres/gpu" not in job["tres"], (name, job)
    train_logs = {m: (tmp_path / "results" / "logs" / "train" / f"{m}.log").read_text()
                  for m in ("tiny-qwen2-vl", "tiny-llava1.5")}
    assert "CUDA_VISIBLE_DEVICES=0, SLURM job" in train_logs["tiny-llava1.5"]
    assert "CUDA_VISIBLE_DEVICES=(unset), SLURM job" in train_logs["tiny-qwen2-vl"]
    for target in targets:
        assert (tmp_path / target).stat().st_size > 0


KILLED = """run: [long-train, long-infer]
slurm: {max_runtime: 2}  # the partition's limit: no attempt asks for more than 2 minutes
models:
  long-train:  # about 2.5 minutes of training on one core: more than the first attempt's minute
    family: Tiny LLaVA-1.5
    params_b: 0.0001
    source: {tiny: llava1_5_hf}
    model_type: llava1_5_hf
    template: llava1_5_hf
    train: {max_steps: 6000, save_steps: 200, logging_steps: 200, per_device_train_batch_size: 1,
            gradient_accumulation_steps: 1, torch_dtype: float32, gpus: 0, cpus_per_gpu: 1, mem_mb: 3000, runtime: 1}
    infer: {gpus: 0, cpus_per_gpu: 1, mem_mb: 3000}  # not run here, but checked with the other jobs of `run`
  long-infer:  # zero-shot answers to all identification questions of the test images
    family: Tiny Qwen2-VL
    params_b: 0.005
    mode: zero_shot
    source: {tiny: qwen2_vl}
    model_type: qwen2_vl
    template: qwen2_vl
    env: {MAX_PIXELS: "12544"}
    infer: {torch_dtype: float32, max_new_tokens: 24, batch_size: 1, gpus: 0, cpus_per_gpu: 1, mem_mb: 3000,
            runtime: 1}
"""


def test_jobs_killed_at_their_time_limit_are_retried_and_resume(cluster, tmp_path):
    """A real SLURM time-limit kill (TIMEOUT) of a training and of an inference job: the retry
    asks for the next attempt's time (capped at the partition's limit) and resumes, from the
    newest checkpoint and from the partial file."""
    adapter = tmp_path / "results" / "models" / "long-train" / "adapter.json"
    predictions = tmp_path / "results" / "predictions" / "long-infer" / "identify_multi.jsonl"
    # 60 test images give about 1,000 identification questions: about 2.5 minutes of answers.
    through_profile(tmp_path, str(adapter.relative_to(tmp_path)), str(predictions.relative_to(tmp_path)),
                    extra=KILLED, demo="demo: {seed: 4, images: {train: 10, test: 60}}\n", timeout=1200)
    jobs = cluster_jobs(tmp_path)
    for name in ("rule_train_model/long-train", "rule_infer_shard/long-infer_identify_multi_1-of-1"):
        attempts = jobs[name]
        assert attempts[0]["state"] == "TIMEOUT" and attempts[0]["limit"] == "00:01:00", attempts[0]
        assert "DUE TO TIME LIMIT" in attempts[0]["log"]
        assert attempts[-1]["state"] == "COMPLETED" and all(a["limit"] == "00:02:00" for a in attempts[1:])
    info = orjson.loads(adapter.read_bytes())
    assert info["global_step"] == 6000 and info["resumed_from"], info
    train_log = (tmp_path / "results" / "logs" / "train" / "long-train.log").read_text()
    assert f"{info['resumed_from']}" in train_log and "training from step 0" not in train_log
    infer_log = (tmp_path / "results" / "logs" / "infer" / "long-infer" / "identify_multi.1-of-1.log").read_text()
    done = int(infer_log.split(" already done")[0].rsplit(", ", 1)[1])
    # The log holds only the last attempt, which must have started from the partial file.
    assert done > 0, infer_log
    test_ids = [orjson.loads(line)["id"] for line in
                (tmp_path / "results" / "sarchat" / "test" / "identify_multi.jsonl").read_bytes().splitlines()]
    assert [orjson.loads(line)["id"] for line in predictions.read_bytes().splitlines()] == test_ids


def test_a_request_no_node_can_run_fails_at_once(cluster, tmp_path):
    """Three GPUs where the node has two, and three CPUs where it has two: SLURM would keep
    the second pending for ever (no EnforcePartLimits); the workflow refuses both, naming them,
    before it submits anything."""
    extra = MODELS.replace("infer: {gpus: 1, cpus_per_gpu: 1}", "infer: {gpus: 3, cpus_per_gpu: 1}") + (
        "  tiny-qwen2-vl: {train: {cpus_per_gpu: 3}}\n")
    result = through_profile(tmp_path, "infer_all", extra=extra, timeout=300, check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    line = next(line for line in message.splitlines() if line.startswith("SLURM could never start"))
    common = "--time=30 --mem=4000"
    assert f"infer_shard (tiny-llava1.5) ({common} --partition=gpu --account=sarchat --gpus=a100:3" in line
    assert f"train_model (tiny-qwen2-vl) ({common} --partition=cpu --account=sarchat --cpus-per-task=3" in line
    assert line.count("Requested node configuration is not available") == 2 and "wait in the queue for ever" in line
    assert not (tmp_path / "slurm-logs").exists()
