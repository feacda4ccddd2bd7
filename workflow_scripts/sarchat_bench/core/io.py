"""Atomic file output and JSON Lines helpers.

Every file the workflow writes goes through `atomic_output`: the content is written to a
temporary file beside the target and renamed into place only once it is complete, so a job
killed half-way never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import operator
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

import orjson
import yaml

from sarchat_bench.core.errors import InputError  # noqa: F401 - where readers of files find it

# libyaml's safe loader where PyYAML has it: ten times faster, and every generator job loads the
# task templates.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _umask() -> int:
    """The umask, which gives the permissions open() and mkdir() would give: mkstemp's and
    mkdtemp's are owner-only, and results shared on a cluster must stay readable by the group.
    Read once, before any thread starts (os.umask can only be read by setting it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


UMASK = _umask()
FILE_MODE, FOLDER_MODE = 0o666 & ~UMASK, 0o777 & ~UMASK


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb", buffering: int = -1) -> Iterator[IO]:
    """Open a temporary file next to `path`; rename it over `path` only on success. Temporary
    files of `path` left by a killed writer are removed first (Snakemake's lock on the working
    directory keeps two writers of one output apart)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, buffering, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `path`, renamed over `path` (replacing what is there) only on
    success; on failure it is removed and `path` is left as it was. Temporary folders of `path`
    left by a killed writer are removed first."""
    target = Path(os.path.abspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    try:
        os.chmod(tmp, FOLDER_MODE)
        yield tmp
        if target.exists():
            old = tmp.with_name(tmp.name.replace(".part", ".old.part"))
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block: for building many long-lived, acyclic
    objects (a parsed annotation file, the images), which the collector would otherwise rescan
    every few hundred allocations. Loading SARDet-100K's training split takes half the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_csv(path: str | os.PathLike, table) -> None:
    """A pandas DataFrame as CSV, without its index."""
    with atomic_output(path, "w") as out:
        table.to_csv(out, index=False)


def save_figure(fig, path: str | os.PathLike) -> None:
    """A matplotlib figure as PNG, without the software stamp (reruns give equal bytes); the
    figure is closed."""
    import matplotlib.pyplot as plt

    with atomic_output(path) as out:
        fig.savefig(out, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_output(path) as out:
        out.write(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
        out.write(b"\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write records as JSON Lines atomically; returns the number written."""
    count = 0
    with atomic_output(path) as out:
        for record in records:
            out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
            out.write(b"\n")
            count += 1
    return count


def read_json(path: str | os.PathLike):
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from None


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the records of a JSON Lines file; a malformed line is an InputError naming it."""
    with open(path, "rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise InputError(path, f"malformed JSON ({err})", record=f"line {line_no}") from None
            if not isinstance(record, dict):
                raise InputError(path, "a JSON object was expected", record=f"line {line_no}")
            yield record


def read_jsonl(path: str | os.PathLike, fields: tuple[str, ...] | None = None) -> list:
    """All records of a JSON Lines file that fits in memory (a test cell, a predictions file):
    the same records and errors as iter_jsonl, a third of its time. The cyclic GC is paused
    while the records are built: they are acyclic, and its passes over the growing list of
    them cost more than the parsing.

    With `fields` (two or more keys), each record's tuple of their values instead: each record
    is dropped as soon as it is read, while its memory is still in the CPU's cache (a test
    cell's records are mostly messages that scoring never reads)."""
    if fields:
        pick = operator.itemgetter(*fields)
        try:
            with gc_paused():
                return [pick(orjson.loads(line)) for line in Path(path).read_bytes().splitlines() if line]
        except (orjson.JSONDecodeError, TypeError, KeyError):  # a bad line, a record that is no object or lacks a field
            return list(map(pick, read_jsonl(path)))  # raises what reading the whole records would
    try:
        with gc_paused():
            records = [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line]
    except orjson.JSONDecodeError:
        records = None
    if records is None or set(map(type, records)) - {dict}:
        return list(iter_jsonl(path))  # words the error: the file, the line, the reason
    return records
