"""What produced a number: the workflow's code and config, the packages of the job that made
the predictions and of the one that scored them, and the model's source and revision.

The Snakefile puts the git commit and the config digest in the environment of every job
(SARCHAT_GIT_COMMIT, SARCHAT_CONFIG_DIGEST), so that a job on a SLURM node records the run it
belongs to. An inference job writes `<shard>.provenance.json` beside its shard; merging a
cell's shards writes `<cell>.provenance.json` beside the predictions; the score job copies it
into the score file with its own. These sidecars are not declared to Snakemake on purpose:
declaring them would make every finished inference job of an existing run look incomplete.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import orjson

from sarchat_bench import __version__
from sarchat_bench.core.io import read_json, write_json

INFERENCE_PACKAGES = ("ms-swift", "transformers", "torch", "vllm", "peft", "accelerate")
SCORING_PACKAGES = ("numpy", "scipy", "orjson")
GIT_COMMIT_ENV, CONFIG_DIGEST_ENV = "SARCHAT_GIT_COMMIT", "SARCHAT_CONFIG_DIGEST"


def package_versions(names) -> dict[str, str | None]:
    """Installed version of each distribution (None: not installed in this environment)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(folder) -> str | None:
    """HEAD of the git checkout `folder` is in, "+modified" when tracked files differ from it;
    None outside a checkout or without git."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        if head.returncode:
            return None
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+modified" if status.stdout.strip() else "")


def config_digest(config: dict) -> str:
    """sha256 of the validated config, keys sorted: the same settings, the same digest."""
    return hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def workflow_identity() -> dict:
    """The run's code and config, as the Snakefile set them for this job; this package's
    version."""
    return {"sarchat_bench": __version__, "git_commit": os.environ.get(GIT_COMMIT_ENV),
            "config_digest": os.environ.get(CONFIG_DIGEST_ENV)}


def job_identity(packages) -> dict:
    return {**workflow_identity(), "packages": package_versions(packages), "python": platform.python_version(),
            "host": platform.node(), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def sidecar(path) -> Path:
    """<name>.jsonl -> <name>.provenance.json, beside it."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".provenance.json")


def write_inference(out_path, made_from: dict, training: dict | None = None) -> None:
    """The provenance of one inference shard: the model (source, revision, files), the adapter
    and what its training job counted (its samples, those over max_length), and the job's
    packages and run."""
    spec = made_from["spec"]
    model = {"source": spec.get("source"), "identity": made_from["model"], "adapter_digest": made_from["adapter"]}
    if training:
        model["training"] = training
    write_json(sidecar(out_path), {"model": model, "job": job_identity(INFERENCE_PACKAGES)})


def merge_inference(shard_paths, out_path) -> None:
    """One provenance for a cell's merged predictions: the distinct provenances of its shards
    (one, unless shards ran in different environments or runs) with the hosts they ran on,
    and the shards that have none."""
    groups: list[dict] = []
    unrecorded = []
    for shard in shard_paths:
        path = sidecar(shard)
        if not path.is_file():
            unrecorded.append(Path(shard).name)
            continue
        record = read_json(path)
        job = record["job"]
        same = {**record, "job": {k: v for k, v in job.items() if k not in ("host", "finished")}}
        group = next((g for g in groups if g["record"] == same), None)
        if group is None:
            groups.append(group := {"record": same, "hosts": set(), "shards": 0})
        group["hosts"].add(job.get("host"))
        group["shards"] += 1
    write_json(sidecar(out_path), {"inference": [{**g["record"], "hosts": sorted(g["hosts"] - {None}),
                                                  "shards": g["shards"]} for g in groups],
                                   "shards_without_provenance": unrecorded})


def write_baseline(out_path, baseline: str) -> None:
    """The provenance of a baseline's answers: made without a model, by this code."""
    write_json(sidecar(out_path), {"inference": [], "baseline": baseline, "job": job_identity(SCORING_PACKAGES)})


def for_score_file(predictions_path) -> dict:
    """The provenance a score file carries: how its predictions were made (the merged sidecar;
    for a predictions file made elsewhere, its digest) and how it was scored."""
    path = sidecar(predictions_path)
    if path.is_file():
        predictions = read_json(path)
    else:
        digest = hashlib.sha256(Path(predictions_path).read_bytes()).hexdigest()
        predictions = {"inference": [], "file_sha256": digest,
                       "note": "no inference provenance: predictions made elsewhere, by a baseline, or before "
                               "provenance was recorded"}
    return {"predictions": predictions, "scoring": job_identity(SCORING_PACKAGES)}
