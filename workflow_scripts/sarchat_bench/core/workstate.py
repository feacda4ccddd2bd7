"""State that a job keeps outside its declared outputs is reused only if it was made from the
same inputs and settings.

Training checkpoints, partial prediction files and partial downloads live outside Snakemake's
declared outputs, so that a killed job can resume from them. Snakemake reruns a job when its
inputs or params change, but it does not know about this state. So each piece of state
carries a manifest, `made_from`: the settings and input digests that produced it. A job that
finds state with another manifest discards it, logs what changed, and starts from scratch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import orjson

log = logging.getLogger(__name__)
MANIFEST = "made_from.json"


def digest(obj) -> str:
    """sha256 of a JSON-able object, independent of key order."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


def file_digest(path: str | os.PathLike, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_digest(folder: str | os.PathLike, *, content: bool) -> str:
    """sha256 over a folder's files: their relative paths and sizes, and either their content
    or (for folders of many GB, such as a local model copy) their modification times."""
    folder = Path(folder)
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        entries.append([str(path.relative_to(folder)), stat.st_size,
                        file_digest(path) if content else stat.st_mtime_ns])
    return digest(entries)


def differences(old, new, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two manifests."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [prefix or "(whole manifest)"] if old != new else []
    out = []
    for key in sorted(old.keys() | new.keys(), key=str):
        name = f"{prefix}.{key}" if prefix else str(key)
        if key not in old or key not in new:
            out.append(name)
        else:
            out += differences(old[key], new[key], name)
    return out


def describe_change(old, new) -> str:
    changed = differences(old, new)
    shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
    return f"made from other inputs or settings ({shown})"


def claim_folder(folder: str | os.PathLike, made_from: dict, what: str) -> bool:
    """Make `folder` hold state made from `made_from`. True if what is there already was
    made from it (resume); otherwise the folder is emptied, the manifest written, and False."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            old = orjson.loads(manifest.read_bytes())
        except orjson.JSONDecodeError:
            old = None
        if old == made_from:
            return True
        reason = describe_change(old, made_from) if isinstance(old, dict) else "its manifest is unreadable"
        log.warning("%s: discarding %s in %s: %s", what, "its state", folder, reason)
    elif folder.is_dir() and any(folder.iterdir()):
        log.warning("%s: discarding %s: it has no manifest saying what made it", what, folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    manifest.write_bytes(orjson.dumps(made_from, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
    return False
