"""Fetch a model, and the code repository ms-swift would clone for it, once, before the GPU jobs.

`prefetch_model` is a local rule: it runs where the workflow is started (a login node with
network), downloads the model at its pinned revision into the one model cache (`cache_dir`),
and writes a small manifest naming the local folders. The training, merge and inference jobs
then load from those folders with the hubs switched off (training.OFFLINE), which works on GPU
nodes without network and keeps 16 models' worth of weights out of a home-directory quota.

A revision such as `main` is resolved once: the commit it named is written to the model lock
(config `model_lock`, `envs/locks/models.yaml`), and every later prefetch, here or at another
site with the lock committed, downloads that commit (sources.read_model_lock; docs/models.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import atomic_output, write_json
from sarchat_bench.models.sources import (
    CODE_SECTION,
    HUB_SECTION,
    LockMismatch,
    cache_env,
    locked_commit,
    read_model_lock,
)

log = logging.getLogger(__name__)


def snapshot(source: dict, cache_dir: str | os.PathLike, revision: str | None = None) -> tuple[Path, str]:
    """Download a hub model at `revision` (default: the entry's); returns its local folder and
    the commit it is (ModelScope names none: the revision asked for)."""
    env = cache_env(cache_dir)
    revision = revision or source["revision"]
    if source.get("from", "huggingface") == "huggingface":
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id=source["hub"], revision=revision,
                                        cache_dir=Path(env["HF_HOME"]) / "hub"))
        return folder, folder.name  # the hub cache names each snapshot by its commit
    from modelscope import snapshot_download

    folder = Path(snapshot_download(source["hub"], revision=revision, cache_dir=env["MODELSCOPE_CACHE"]))
    return folder, revision


def _git(url: str, *args: str) -> None:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(url, f"git {args[0] if args[0] != '-C' else args[2]} failed: {last}")


def code_checkout(repo: dict, cache_dir: str | os.PathLike, commit: str | None = None) -> tuple[Path, str]:
    """A clone of a model's code repository at `commit` (default: what its revision names now),
    in the cache, in a folder named by the commit (reused if present); and that commit."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", repo["url"].rstrip("/").removesuffix(".git").rsplit("/", 1)[-1])
    code = Path(cache_dir).resolve() / "code"
    if commit and (code / f"{name}-{commit}" / ".git").is_dir():
        return code / f"{name}-{commit}", commit
    partial = code / f"{name}.part"  # a clone that was interrupted
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    _git(repo["url"], "clone", "--quiet", repo["url"], str(partial))
    _git(repo["url"], "-C", str(partial), "checkout", "--quiet", commit or repo["revision"])
    head = subprocess.run(["git", "-C", str(partial), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    folder = code / f"{name}-{head}"
    if (folder / ".git").is_dir():
        shutil.rmtree(partial)
    else:
        partial.rename(folder)
    return folder, head


def prefetch(model: str, entry: dict, cache_dir: str | os.PathLike, manifest: str | os.PathLike,
             model_lock: str | os.PathLike | None = None) -> dict:
    """Fetch what a model's jobs load, at the commits the model lock names (recording in it the
    commits a revision resolved to where it names none), and write the manifest they read."""
    source, repo = entry["source"], entry.get("code_repo")
    with _locked(model_lock):
        lock = read_model_lock(model_lock)
        pinned = locked_commit(lock, HUB_SECTION, source["hub"], source["revision"]) if model_lock else None
        folder, commit = snapshot(source, cache_dir, pinned)
        if pinned and commit != pinned:
            raise LockMismatch(f"{source['hub']}: asked for commit {pinned} (the model lock {model_lock}), the hub "
                               f"gave {commit}")
        info = {"model": model, "hub": source["hub"], "revision": source["revision"], "commit": commit,
                "path": str(folder), "code_repo": None}
        if not pinned and model_lock:  # ModelScope names no commit: its revision is recorded as asked
            lock[HUB_SECTION][source["hub"]] = {"revision": source["revision"], "commit": commit}
        if repo:
            code_pinned = locked_commit(lock, CODE_SECTION, repo["url"], repo["revision"]) if model_lock else None
            checkout, code_commit = code_checkout(repo, cache_dir, code_pinned)
            info.update(code_repo=str(checkout), code_url=repo["url"], code_revision=repo["revision"],
                        code_commit=code_commit)
            if model_lock:
                lock[CODE_SECTION][repo["url"]] = {"revision": repo["revision"], "commit": code_commit}
        if model_lock:
            _write_model_lock(model_lock, lock)
    write_json(manifest, info)
    log.info("%s: %s at %s in %s%s%s", model, info["hub"], commit, folder,
             f"; code in {info['code_repo']}" if info["code_repo"] else "",
             f" (the commits the model lock {model_lock} names)" if model_lock else "")
    return info


LOCK_HEADER = """\
# The model lock: the commit each hub model's revision (and each code repository's) resolved to
# when `snakemake prefetch_models` first fetched it. Written by the prefetch; commit it, so that
# later runs and other sites download the same commits. To move a model on, delete its entry
# (and results/models/<model>/source.json) and prefetch again (docs/models.md).
"""


def _write_model_lock(path: str | os.PathLike, lock: dict) -> None:
    import yaml

    body = {section: dict(sorted(lock[section].items())) for section in (HUB_SECTION, CODE_SECTION)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "w") as out:
        out.write(LOCK_HEADER + yaml.safe_dump(body, sort_keys=False, default_flow_style=False))


@contextlib.contextmanager
def _locked(model_lock: str | os.PathLike | None):
    """Prefetch jobs run side by side and each adds to the one lock file: one at a time."""
    if not model_lock:
        yield
        return
    import fcntl

    guard = Path(f"{model_lock}.guard")
    guard.parent.mkdir(parents=True, exist_ok=True)
    with open(guard, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
