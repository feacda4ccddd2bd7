"""Fetch SARDet-100K: from a Hugging Face or ModelScope dataset repo at a pinned revision, from
an HTTP(S) URL (resumable, retried), or from a local archive; verify sha256 when given; extract
safely; and place the dataset at a fixed folder in the SARDet-100K layout.

Credentials come only from the environment (HF_TOKEN, MODELSCOPE_API_TOKEN, or the variable
named by `token_env` for URLs), never from config or params, which Snakemake stores in plain
text under .snakemake/.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from .io import InputError
from .workstate import file_digest

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def verify_sha256(path: str | os.PathLike, expected: str | None) -> None:
    if not expected:
        log.warning("%s: no sha256 in config, integrity not checked", path)
        return
    actual = file_digest(path)
    if actual.lower() != expected.lower():
        raise InputError(path, f"sha256 mismatch: expected {expected}, got {actual}")
    log.info("%s: sha256 verified", path)


def fetch_url(url: str, dest: str | os.PathLike, *, sha256: str | None = None, token_env: str | None = None,
              retries: int = 5, backoff_s: float = 2.0, timeout_s: float = 60.0) -> Path:
    """Download `url` to `dest`, resuming a partial `dest.part` with an HTTP Range request."""
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    headers = {}
    if token_env and os.environ.get(token_env):
        headers["Authorization"] = f"Bearer {os.environ[token_env]}"
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request_headers = dict(headers, **({"Range": f"bytes={have}-"} if have else {}))
        try:
            with requests.get(url, headers=request_headers, stream=True, timeout=timeout_s) as resp:
                if resp.status_code == 416:  # already complete
                    break
                resp.raise_for_status()
                resumed = have and resp.status_code == 206
                if have and not resumed:
                    log.info("%s: server ignored the range request; starting over", url)
                total = resp.headers.get("Content-Length")
                with open(part, "ab" if resumed else "wb") as out:
                    done = have if resumed else 0
                    last = time.monotonic()
                    for block in resp.iter_content(chunk_size=1 << 20):
                        out.write(block)
                        done += len(block)
                        if time.monotonic() - last > 10:
                            log.info("%s: %.1f MiB%s", url, done / 2**20,
                                     f" of {(int(total) + (have if resumed else 0)) / 2**20:.1f} MiB" if total else "")
                            last = time.monotonic()
            break
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                raise InputError(url, f"HTTP {status}: {err}") from None
            if attempt == retries:
                raise InputError(url, f"download failed after {retries} attempts: {err}") from None
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.0f s", url, attempt, err, wait)
            time.sleep(wait)
    verify_sha256(part, sha256)
    os.replace(part, dest)
    return dest


def fetch_hub(source: str, repo_id: str, revision: str, dest: str | os.PathLike) -> Path:
    """Snapshot a dataset repo at a pinned revision (both hubs resume partial files)."""
    dest = Path(dest)
    if source == "huggingface":
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=dest,
                                 token=os.environ.get("HF_TOKEN") or None)
    elif source == "modelscope":
        from modelscope import dataset_snapshot_download

        path = dataset_snapshot_download(dataset_id=repo_id, revision=revision, local_dir=str(dest),
                                         token=os.environ.get("MODELSCOPE_API_TOKEN") or None)
    else:
        raise ValueError(f"unknown hub {source!r}")
    return Path(path)


def _check_member(name: str, dest: Path, archive) -> Path:
    pure = PurePosixPath(name)
    target = (dest / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or not target.is_relative_to(dest.resolve()):
        raise InputError(archive, f"member escapes the target folder: {name!r}")
    return target


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Extract a .zip or tar archive, refusing members that would land outside `dest`
    (absolute paths, "..", and links pointing out)."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename, dest, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InputError(archive, f"member is a symbolic link: {info.filename!r}")
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _check_member(member.name, dest, archive)
                if member.issym() or member.islnk():
                    _check_member(str(PurePosixPath(member.name).parent / member.linkname)
                                  if member.issym() else member.linkname, dest, archive)
            try:
                tf.extractall(dest, filter="data")
            except tarfile.FilterError as err:
                raise InputError(archive, f"unsafe member refused: {err}") from None
    else:
        raise InputError(archive, "not a zip or tar archive")


def locate_root(folder: str | os.PathLike) -> Path:
    """The folder holding Annotations/<split>.json (archives often add a top-level folder)."""
    folder = Path(folder)
    for candidate in [folder, *sorted(p for p in folder.rglob("Annotations") if p.is_dir())]:
        root = candidate if candidate.name != "Annotations" else candidate.parent
        if (root / "Annotations").is_dir() and any((root / "Annotations" / f"{s}.json").is_file() for s in SPLITS):
            return root
    raise InputError(folder, "no Annotations/{train,val,test}.json found: not the SARDet-100K layout")


def place(root: Path, target: str | os.PathLike) -> Path:
    """Move the dataset found at `root` to `target` (a fixed path the workflow can name)."""
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(root), str(target))
    return target


def fetch(settings: dict, target: str | os.PathLike, work: str | os.PathLike) -> Path:
    """Run the configured download; returns `target`, now in the SARDet-100K layout."""
    work = Path(work)
    source = settings["source"]
    if source in ("huggingface", "modelscope"):
        snapshot = fetch_hub(source, settings["repo_id"], settings["revision"], work / "snapshot")
        archives = sorted(p for p in snapshot.rglob("*") if p.suffix in (".zip", ".tar", ".gz", ".tgz"))
        unpacked = work / "unpacked"
        for arc in archives:
            safe_extract(arc, unpacked)
        root = locate_root(unpacked if archives else snapshot)
    elif source in ("url", "archive"):
        if source == "url":
            archive = fetch_url(settings["url"], work / Path(settings["url"].split("?")[0]).name,
                                sha256=settings.get("sha256"), token_env=settings.get("token_env"))
        else:
            archive = Path(settings["archive"])
            if not archive.is_file():
                raise InputError(archive, "archive not found")
            verify_sha256(archive, settings.get("sha256"))
        safe_extract(archive, work / "unpacked")
        root = locate_root(work / "unpacked")
    else:
        raise ValueError(f"download.source {source!r} is not one of huggingface, modelscope, url, archive")
    return place(root, target)
