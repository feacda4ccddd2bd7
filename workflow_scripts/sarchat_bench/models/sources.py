"""Where a model job's model comes from: the one model cache (read offline), the local folder a
job loads (a hub model's prefetched snapshot: models.fetch), and what identifies the weights."""

from __future__ import annotations

import os
from pathlib import Path

from sarchat_bench.core.io import read_json
from sarchat_bench.core.workstate import folder_digest
from sarchat_bench.models.jobs import JobSpec

# Set for every model job: models and code were fetched before (prefetch_models), and GPU
# nodes are often offline. ModelScope has no offline switch; it is never asked, as jobs load
# models from local folders with --check_model false.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def cache_env(cache_dir: str | os.PathLike) -> dict:
    """Hugging Face and ModelScope both pointed at the one model cache."""
    cache = Path(cache_dir).resolve()
    return {"HF_HOME": str(cache / "huggingface"), "MODELSCOPE_CACHE": str(cache / "modelscope")}


def local_model(spec: JobSpec, source_info: str | os.PathLike | None) -> tuple[str, dict]:
    """The folder a model job loads from, and its model-load options: a hub model from its
    prefetched snapshot (the manifest `source_info`), with its code repository if ms-swift
    would clone one."""
    load = dict(spec.load)
    if not source_info:
        return spec.model_path, load
    info = read_json(source_info)
    if info.get("code_repo"):
        load["local_repo_path"] = info["code_repo"]
    return info["path"], load


def source_identity(model_path: str | os.PathLike, source: dict) -> dict:
    """What the weights a job starts from are: a hub snapshot is named by its commit; a tiny
    model (small, rebuilt by the workflow) by its content; a local copy by its files' names,
    sizes and times (hashing many GB at every job start would cost minutes)."""
    if "tiny" in source:
        return {"tiny": source["tiny"], "files": folder_digest(model_path, content=True)}
    if "local" in source:
        return {"local": str(Path(model_path).resolve()), "files": folder_digest(model_path, content=False)}
    if "endpoint" in source:  # what is served there is the server's business: named by URL and model
        return {"endpoint": source["endpoint"]["base_url"], "model": source["endpoint"]["model"]}
    return {"hub": source["hub"], "revision": source["revision"], "snapshot": Path(model_path).name}
