"""Where a model job's model comes from: the one model cache (read offline), the local folder a
job loads (a hub model's prefetched snapshot: models.fetch), what identifies the weights, and
the model lock: the commit each hub model's revision was resolved to once (`main` today is not
`main` next month), which later runs and other sites download and every model job checks."""

from __future__ import annotations

import os
from pathlib import Path

from sarchat_bench.core.errors import InputError, SarchatError
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


class LockMismatch(SarchatError, RuntimeError):
    pass


# The model lock's sections: hub models by repo id, code repositories by URL.
HUB_SECTION, CODE_SECTION = "hub_models", "code_repos"


def read_model_lock(path: str | os.PathLike | None) -> dict:
    """The model lock (YAML): {hub_models: {repo id: {revision, commit}}, code_repos: {url:
    {revision, commit}}}; empty when there is none yet."""
    import yaml

    if not path or not Path(path).is_file():
        return {HUB_SECTION: {}, CODE_SECTION: {}}
    lock = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(lock, dict) or not all(isinstance(lock.get(k, {}), dict) for k in (HUB_SECTION, CODE_SECTION)):
        raise InputError(path, f"not a model lock (expected the mappings {HUB_SECTION} and {CODE_SECTION})")
    return {HUB_SECTION: lock.get(HUB_SECTION) or {}, CODE_SECTION: lock.get(CODE_SECTION) or {}}


def locked_commit(lock: dict, section: str, key: str, revision: str) -> str | None:
    """The commit the lock resolved `revision` of `key` to, if it did (another revision asked
    for since is not locked)."""
    pinned = lock[section].get(key)
    return pinned["commit"] if isinstance(pinned, dict) and pinned.get("revision") == revision else None


def check_against_lock(info: dict, manifest: str | os.PathLike, model_lock: str | os.PathLike | None) -> None:
    """Stop (one line) when the snapshot a model job would load is not the one the lock names:
    another site's lock, a lock updated since the prefetch, or a prefetch that never recorded it."""
    if not model_lock:
        return
    lock = read_model_lock(model_lock)
    fix = f"delete {manifest} and run `snakemake prefetch_models` (it fetches what the lock names, or records it)"
    checks = [(HUB_SECTION, info["hub"], info["revision"], info["commit"])]
    if info.get("code_repo") and info.get("code_url"):
        checks.append((CODE_SECTION, info["code_url"], info["code_revision"], info["code_commit"]))
    for section, key, revision, have in checks:
        pinned = locked_commit(lock, section, key, revision)
        if pinned is None:
            raise LockMismatch(f"{key} ({revision}) is not in the model lock {model_lock}, but {manifest} names "
                               f"commit {have}: {fix}")
        if pinned != have:
            raise LockMismatch(f"{key} ({revision}): the model lock {model_lock} pins commit {pinned}, but the "
                               f"prefetched snapshot ({manifest}) is commit {have}: {fix}")


def local_model(spec: JobSpec, source_info: str | os.PathLike | None,
                model_lock: str | os.PathLike | None = None) -> tuple[str, dict]:
    """The folder a model job loads from, and its model-load options: a hub model from its
    prefetched snapshot (the manifest `source_info`, checked against the model lock), with its
    code repository if ms-swift would clone one."""
    load = dict(spec.load)
    if not source_info:
        return spec.model_path, load
    info = read_json(source_info)
    check_against_lock(info, source_info, model_lock)
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
