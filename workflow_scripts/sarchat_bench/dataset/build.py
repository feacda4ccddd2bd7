"""Build the SARChat files from the box tables: the training mix and the nine test cells.
Output order follows the input order, and template choices come from RNG streams derived from
the seed (one per test file, one per part of the training mix), so a build is byte-for-byte
repeatable."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections import Counter

import orjson

from sarchat_bench.core.io import atomic_output
from sarchat_bench.dataset.annotations import read_boxes
from sarchat_bench.dataset.generators import GENERATORS
from sarchat_bench.dataset.generators.common import Context
from sarchat_bench.dataset.ordered_write import write_in_order
from sarchat_bench.dataset.templates import DEFAULT_PATH, load_templates, templates_digest
from sarchat_bench.paper.tasks import CATEGORIES, CELLS, TASKS

log = logging.getLogger(__name__)
PROGRESS_EVERY = 200_000
WRITE_BUFFER = 1 << 20
# The training mix is generated in parts of one task and this many images, each part with its
# own RNG stream. The parts, not the processes that write them, fix the bytes, so the size is a
# constant: changing it changes template choices (the seed's role), not the records. Parts this
# small keep each process's buffer in memory it has just used: parts of 4096 images made the
# mix 10 % slower in page faults.
TRAIN_PART_IMAGES = 1024


def _encode(records) -> tuple[bytearray, int]:
    """Records as JSON Lines bytes, and their number."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    data = bytearray()
    count = 0
    for count, rec in enumerate(records, start=1):  # noqa: B007 - the count is what is wanted after it
        data += dumps(rec, option=newline)
    return data, count


def _write_records(path, records) -> int:
    """Stream records to `path` atomically, logging progress on long files.

    Each record goes straight into a 1 MB write buffer: joining batches of records first
    costs a fresh multi-megabyte allocation per batch, which made the build 30 % slower."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    count = 0
    start = time.perf_counter()
    with atomic_output(path, buffering=WRITE_BUFFER) as out:
        write = out.write
        for count, rec in enumerate(records, start=1):  # noqa: B007 - the count is what is wanted after it
            write(dumps(rec, option=newline))
            if not count % PROGRESS_EVERY:
                log.info("%s: %d records (%.1f s)", path, count, time.perf_counter() - start)
    return count


def load_images(box_tables: list) -> list:
    """The images of the box tables. They are long-lived: freeze them, so that the collections
    during generation (and in forked writers, copy-on-write pages) leave them alone."""
    images = read_boxes(box_tables)
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


def build_train_mix(box_tables: list, out: str | os.PathLike, *, seed: int, settings: dict | None = None,
                    tasks=TASKS, workers: int = 1, part_images: int = TRAIN_PART_IMAGES, categories=CATEGORIES,
                    templates_path=DEFAULT_PATH) -> list[dict]:
    """The training mix: every task's records of the images of `box_tables`, task after task,
    in image order; returns one summary per task. `settings` maps a task to its settings.

    It is one file written by `workers` processes at once (ordered_write): every model trains on
    the whole mix, so per-task training files would save no rerun, and concatenating them
    copied a gigabyte at the end of the build."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; expected some of {', '.join(TASKS)}")
    start = time.perf_counter()
    settings = settings or {}
    templates = load_templates(templates_path)
    images = load_images(box_tables)
    parts = [(task, lo, min(lo + part_images, len(images))) for task in tasks
             for lo in range(0, len(images), part_images)]

    def produce(i: int):
        task, lo, hi = parts[i]
        ctx = Context(templates, seed=seed, stream=f"train:{task}:{lo}", categories=tuple(categories),
                      settings=dict(settings.get(task, {})))
        data, count = _encode(GENERATORS[task](images[lo:hi], ctx, None))
        return data, (count, ctx.skipped)

    results = write_in_order(out, len(parts), produce, workers=workers)
    records, skipped = Counter(), {task: Counter() for task in tasks}
    for (task, _, _), (count, part_skipped) in zip(parts, results):
        records[task] += count
        skipped[task].update(part_skipped)
    summaries = {task: {"file": str(out), "task": task, "variant": None, "images": len(images),
                        "records": records[task], "skipped": dict(sorted(skipped[task].items()))} for task in tasks}
    log.info("wrote %s: %d records of %d tasks from %d images in %d parts (%d workers) in %.1f s", out,
             sum(s["records"] for s in summaries.values()), len(tasks), len(images), len(parts), workers,
             time.perf_counter() - start)
    return list(summaries.values())


def build_test_cells(outputs: dict, box_tables: list, *, seed: int, settings: dict | None = None,
                     **kw) -> list[dict]:
    """Test files {cell: path} from one load of the images; each cell has its own RNG stream,
    so a cell's bytes do not depend on which other cells are built with it. `settings` maps a
    task to its settings."""
    unknown = [c for c in outputs if c not in CELLS]
    if unknown:
        raise ValueError(f"unknown test cell(s) {unknown}; expected some of {', '.join(CELLS)}")
    settings = settings or {}
    images = load_images(box_tables)
    summaries = []
    for cell, out in outputs.items():
        task, variant = CELLS[cell]
        summaries.append(generate_file(task, variant, images, out, seed=seed, stream=f"test:{cell}",
                                       settings=settings.get(task), **kw))
    return summaries


def build_test_cell(cell: str, box_tables: list, out, *, seed: int, settings=None, **kw) -> dict:
    return build_test_cells({cell: out}, box_tables, seed=seed, settings=settings, **kw)[0]


def generator_params(dataset: dict, tasks) -> dict:
    """What a generator job's output depends on (its rule's params): the seed, the settings of
    its tasks, and the templates (the option naming a file of the user's, and a digest of the
    templates these tasks use, so that editing one task's templates reruns only its files).
    `dataset` is the config's dataset section."""
    import json
    import shlex

    settings = {"tasks": {t: dataset.get("tasks", {}).get(t, {}) for t in tasks}, "categories": dataset["categories"]}
    return {
        "seed": dataset["seed"],
        "settings": json.dumps(settings, sort_keys=True),
        "templates_option": f"--templates {shlex.quote(dataset['templates'])}" if dataset["templates"] else "",
        "templates_digest": templates_digest(load_templates(dataset["templates"] or DEFAULT_PATH), tasks),
    }


def size_sample(box_tables: list, *, seed: int, settings: dict | None = None, tasks=TASKS, per_size: int = 48,
                categories=CATEGORIES, templates_path=DEFAULT_PATH) -> dict:
    """What the build makes per image size, from a sample, for the cost plan (models/plan.py):
    {(width, height): {"images": images of that size, "sampled": images sampled,
    "records": {task: [(question, answer), ...]}}}. The sample is at most `per_size` evenly
    spaced images of each size, run through the real generators (each size with its own RNG
    stream), so it costs a few thousand images however large the split: the 2M records are
    neither generated nor read again."""
    settings = settings or {}
    templates = load_templates(templates_path)
    by_size: dict[tuple[int, int], list] = {}
    for image in read_boxes(box_tables):
        by_size.setdefault((image.width, image.height), []).append(image)
    sample = {}
    for size, images in sorted(by_size.items()):
        step = max(1, len(images) // per_size)
        chosen = images[::step][:per_size]
        records = {}
        for task in tasks:
            ctx = Context(templates, seed=seed, stream=f"sample:{task}:{size[0]}x{size[1]}",
                          categories=tuple(categories), settings=dict(settings.get(task, {})))
            records[task] = [(rec["messages"][0]["content"], rec["messages"][1]["content"])
                             for rec in GENERATORS[task](chosen, ctx, None)]
        sample[size] = {"images": len(images), "sampled": len(chosen), "records": records}
    return sample
