"""Fetch a model, and the code repository ms-swift would clone for it, once, before the GPU jobs.

`prefetch_model` is a local rule: it runs where the workflow is started (a login node with
network), downloads the model at its pinned revision into the one model cache (`cache_dir`),
and writes a small manifest naming the local folders. The training, merge and inference jobs
then load from those folders with the hubs switched off (training.OFFLINE), which works on GPU
nodes without network and keeps 16 models' worth of weights out of a home-directory quota.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import write_json
from sarchat_bench.models.sources import cache_env

log = logging.getLogger(__name__)


def snapshot(source: dict, cache_dir: str | os.PathLike) -> tuple[Path, str]:
    """Download a hub model at its revision; returns its local folder and the commit it is."""
    env = cache_env(cache_dir)
    if source.get("from", "huggingface") == "huggingface":
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id=source["hub"], revision=source["revision"],
                                        cache_dir=Path(env["HF_HOME"]) / "hub"))
        return folder, folder.name  # the hub cache names each snapshot by its commit
    from modelscope import snapshot_download

    folder = Path(snapshot_download(source["hub"], revision=source["revision"], cache_dir=env["MODELSCOPE_CACHE"]))
    return folder, source["revision"]


def _git(url: str, *args: str) -> None:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(url, f"git {args[0] if args[0] != '-C' else args[2]} failed: {last}")


def code_checkout(repo: dict, cache_dir: str | os.PathLike) -> Path:
    """A clone of a model's code repository at its revision, in the cache (reused if present)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", repo["url"].rstrip("/").removesuffix(".git").rsplit("/", 1)[-1])
    folder = Path(cache_dir).resolve() / "code" / f"{name}-{re.sub(r'[^A-Za-z0-9._-]', '_', repo['revision'])}"
    if not (folder / ".git").is_dir():
        partial = folder.with_name(folder.name + ".part")  # a clone that was interrupted
        if partial.exists():
            shutil.rmtree(partial)
        partial.parent.mkdir(parents=True, exist_ok=True)
        _git(repo["url"], "clone", "--quiet", repo["url"], str(partial))
        _git(repo["url"], "-C", str(partial), "checkout", "--quiet", repo["revision"])
        partial.rename(folder)
    return folder


def prefetch(model: str, entry: dict, cache_dir: str | os.PathLike, manifest: str | os.PathLike) -> dict:
    """Fetch what a model's jobs load, and write the manifest they read."""
    folder, commit = snapshot(entry["source"], cache_dir)
    info = {"model": model, "hub": entry["source"]["hub"], "revision": entry["source"]["revision"],
            "commit": commit, "path": str(folder), "code_repo": None}
    if entry.get("code_repo"):
        info["code_repo"] = str(code_checkout(entry["code_repo"], cache_dir))
    write_json(manifest, info)
    log.info("%s: %s at %s in %s%s", model, info["hub"], commit, folder,
             f"; code in {info['code_repo']}" if info["code_repo"] else "")
    return info
