"""Build the SARChat files from the box tables: per-task training files, the nine test
cells and the training mix. Output order follows the input order, and template choices come
from a per-file RNG stream derived from the seed, so a build is byte-for-byte repeatable."""

from __future__ import annotations

import gc
import logging
import os
import time

import orjson

from .annotations import CATEGORIES, read_boxes
from .io import atomic_output
from .tasks import CELLS, GENERATORS, TASKS
from .tasks.common import Context
from .templates import DEFAULT_PATH, load_templates

log = logging.getLogger(__name__)
PROGRESS_EVERY = 200_000
WRITE_BUFFER = 1 << 20


def _write_records(path, records) -> int:
    """Stream records to `path` atomically, logging progress on long files.

    Each record goes straight into a 1 MB write buffer: joining batches of records first
    costs a fresh multi-megabyte allocation per batch, which made the build 30 % slower."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    count = 0
    start = time.perf_counter()
    with atomic_output(path, buffering=WRITE_BUFFER) as out:
        write = out.write
        for count, rec in enumerate(records, start=1):
            write(dumps(rec, option=newline))
            if not count % PROGRESS_EVERY:
                log.info("%s: %d records (%.1f s)", path, count, time.perf_counter() - start)
    return count


def load_images(box_tables: list, shard=(1, 1)) -> list:
    """The images of the box tables (or of one shard of them). They are long-lived and acyclic:
    load them with the cyclic GC off, then freeze them so that the collections during generation
    do not rescan them."""
    gc.disable()
    try:
        images = read_boxes(box_tables, shard)
    finally:
        gc.enable()
    gc.freeze()
    return images


def generate_file(task: str, variant: str | None, images: list, out: str | os.PathLike, *, seed: int,
                  stream: str, settings: dict | None = None, categories=CATEGORIES,
                  templates_path=DEFAULT_PATH) -> dict:
    """Generate one output file; returns its summary (records written, images skipped and why).
    The summary holds no timing, so that it is as repeatable as the file it describes."""
    start = time.perf_counter()
    ctx = Context(load_templates(templates_path), seed=seed, stream=stream, categories=tuple(categories),
                  settings=dict(settings or {}))
    n = _write_records(out, GENERATORS[task](images, ctx, variant))
    summary = {"file": str(out), "task": task, "variant": variant, "images": len(images), "records": n,
               "skipped": dict(sorted(ctx.skipped.items()))}
    log.info("wrote %s: %d records from %d images in %.1f s; skipped %s", out, n, len(images),
             time.perf_counter() - start, summary["skipped"] or "none")
    return summary


def build_train_task(task: str, box_tables: list, out, *, seed: int, settings=None, shard=(1, 1), **kw) -> dict:
    """One task's training records; with shard=(i, n), the i-th of n contiguous parts of the
    images (the parts concatenated in order cover every image once)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    stream = f"train:{task}" if shard == (1, 1) else f"train:{task}:{shard[0]}-of-{shard[1]}"
    images = load_images(box_tables, shard)
    return generate_file(task, None, images, out, seed=seed, stream=stream, settings=settings, **kw)


def build_test_cells(outputs: dict, box_tables: list, *, seed: int, settings=None, **kw) -> list[dict]:
    """Test files {cell: path} from one load of the images; each cell has its own RNG stream,
    so a cell's bytes do not depend on which other cells are built with it."""
    unknown = [c for c in outputs if c not in CELLS]
    if unknown:
        raise ValueError(f"unknown test cell(s) {unknown}; expected some of {', '.join(CELLS)}")
    images = load_images(box_tables)
    return [generate_file(*CELLS[cell], images, out, seed=seed, stream=f"test:{cell}", settings=settings, **kw)
            for cell, out in outputs.items()]


def build_test_cell(cell: str, box_tables: list, out, *, seed: int, settings=None, **kw) -> dict:
    return build_test_cells({cell: out}, box_tables, seed=seed, settings=settings, **kw)[0]


def _append_fd(src_fd: int, dst_fd: int) -> None:
    """Append all of src to dst: in the kernel (copy_file_range) where the file system
    allows it, else by reading and writing."""
    try:
        while os.copy_file_range(src_fd, dst_fd, 1 << 30):
            pass
        return
    except OSError:
        pass  # both file offsets stand after the last byte copied, so carry on from there
    while block := os.read(src_fd, 16 << 20):
        view = memoryview(block)
        while view:
            view = view[os.write(dst_fd, view):]


def concatenate(parts: list[str | os.PathLike], out: str | os.PathLike) -> None:
    """The training mix: the per-task files, in the given order, in one file."""
    with atomic_output(out) as dst:
        dst.flush()
        for part in parts:
            with open(part, "rb") as src:
                _append_fd(src.fileno(), dst.fileno())
