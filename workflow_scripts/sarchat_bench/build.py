"""Build the SARChat files from the box tables: per-task training files, the nine test
cells and the training mix. Output order follows the input order, and template choices come
from a per-file RNG stream derived from the seed, so a build is byte-for-byte repeatable."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import orjson

from .annotations import CATEGORIES, read_boxes
from .io import atomic_output
from .tasks import CELLS, GENERATORS, TASKS
from .tasks.common import Context
from .templates import DEFAULT_PATH, load_templates

log = logging.getLogger(__name__)
PROGRESS_EVERY = 200_000


def _write_records(path, records) -> int:
    """Stream records to `path` atomically, logging progress on long files."""
    dumps = orjson.dumps
    count = 0
    start = time.perf_counter()
    with atomic_output(path) as out:
        buffer = []
        for rec in records:
            buffer.append(dumps(rec))
            count += 1
            if len(buffer) >= 8192:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
                if count % PROGRESS_EVERY < 8192:
                    log.info("%s: %d records (%.1f s)", path, count, time.perf_counter() - start)
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")
    return count


def generate_file(task: str, variant: str | None, box_tables: list, out: str | os.PathLike, *, seed: int,
                  stream: str, settings: dict | None = None, categories=CATEGORIES,
                  templates_path=DEFAULT_PATH) -> dict:
    """Generate one output file; returns a summary (records written, skips)."""
    start = time.perf_counter()
    images = read_boxes(box_tables)
    ctx = Context(load_templates(templates_path), seed=seed, stream=stream, categories=tuple(categories),
                  settings=dict(settings or {}))
    n = _write_records(out, GENERATORS[task](images, ctx, variant))
    summary = {"file": str(out), "task": task, "variant": variant, "images": len(images), "records": n,
               "skipped": dict(sorted(ctx.skipped.items())), "seconds": round(time.perf_counter() - start, 2)}
    log.info("wrote %s: %d records from %d images; skipped %s", out, n, len(images), summary["skipped"] or "none")
    return summary


def build_train_task(task: str, box_tables: list, out, *, seed: int, settings=None, **kw) -> dict:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return generate_file(task, None, box_tables, out, seed=seed, stream=f"train:{task}", settings=settings, **kw)


def build_test_cell(cell: str, box_tables: list, out, *, seed: int, settings=None, **kw) -> dict:
    if cell not in CELLS:
        raise ValueError(f"unknown test cell {cell!r}; expected one of {', '.join(CELLS)}")
    task, variant = CELLS[cell]
    return generate_file(task, variant, box_tables, out, seed=seed, stream=f"test:{cell}", settings=settings, **kw)


def concatenate(parts: list[str | os.PathLike], out: str | os.PathLike) -> None:
    """The training mix: the per-task files, in the given order, in one file."""
    with atomic_output(out) as dst:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, length=16 << 20)


def task_of_train_file(path: str | os.PathLike) -> str:
    return Path(path).stem
