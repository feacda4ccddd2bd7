"""SARChat-Bench as lmms-eval tasks (docs/interop.md): the hooks each task's YAML names, and the
task folder `lmms-tasks` writes.

The test records are this workflow's JSONL files, which lmms-eval loads with
`datasets.load_dataset("json", data_files=...)`. Each record keeps its `cell`, so one set of
hooks serves the nine cells:

- doc_to_messages / doc_to_visual / doc_to_text: the record's question (its first user message,
  as ms-swift sees it), each `<image>` replaced by the record's image, in order;
- process_results: the scorer's own judgement of the answer (scoring.evaluate): per metric of the
  cell (paper.table3.CELL_METRICS) its (TP, FP, FN), and `parse_failures` 1 when it did not parse;
- eq3, the aggregation of every metric: Eq. 3 over the cell, as the score files report it (the
  sums of TP, FP and FN, then the ratio, rounded to two decimals); total, that of parse_failures.

So lmms-eval reports, for the records it ran, the numbers the workflow's score files give for
the same answers. The generated `utils.py` of a task folder puts this checkout's package on
the path, imports these hooks and sets the folder's image root and coordinate convention.
"""

from __future__ import annotations

import json
import math
from itertools import islice
from pathlib import Path

from sarchat_bench.core.io import atomic_folder
from sarchat_bench.evaluation.metrics import value_of
from sarchat_bench.evaluation.scoring import evaluate
from sarchat_bench.paper.records import image_file
from sarchat_bench.paper.table3 import CELL_METRICS

IMAGE_TOKEN = "<image>"
# Set by a task folder's utils.py: where relative image paths are resolved (the SARDet-100K
# root; None: $ROOT_IMAGE_DIR, as paper.records.image_file reads it), and the convention
# answers' boxes are read in (scoring.evaluate's `coords`).
IMAGE_ROOT: str | None = None
COORDS = "pixel"


def _question(doc) -> str:
    for message in doc["messages"]:
        if message["role"] == "user":
            return message["content"]
    raise ValueError(f"record {doc.get('id')!r} has no user message")


def image_path(path: str) -> Path:
    """A record's image file: a relative path is resolved against IMAGE_ROOT (image_file)."""
    return Path(image_file(path, IMAGE_ROOT))


def doc_to_visual(doc) -> list:
    from PIL import Image

    return [Image.open(image_path(path)).convert("RGB") for path in doc.get("images") or []]


def doc_to_text(doc, lmms_eval_specific_kwargs=None) -> str:
    """The question without its image placeholders (lmms-eval's simple models add the image)."""
    kwargs = lmms_eval_specific_kwargs or {}
    text = _question(doc).replace(IMAGE_TOKEN, "").strip()
    return f"{kwargs.get('pre_prompt', '')}{text}{kwargs.get('post_prompt', '')}"


def doc_to_messages(doc, lmms_eval_specific_kwargs=None) -> list[dict]:
    """Chat models: the user turn, each `<image>` replaced in place by its image."""
    kwargs = lmms_eval_specific_kwargs or {}
    images = iter(doc_to_visual(doc))
    parts = _question(doc).split(IMAGE_TOKEN)
    content = []
    for i, part in enumerate(parts):
        if i:
            content.append({"type": "image", "url": next(images)})
        if i == 0:
            part = kwargs.get("pre_prompt", "") + part
        if i == len(parts) - 1:
            part += kwargs.get("post_prompt", "")
        if part.strip():
            content.append({"type": "text", "text": part.strip()})
    content.extend({"type": "image", "url": rest} for rest in images)  # images without a placeholder
    return [{"role": "user", "content": content}]


def doc_to_target(doc) -> str:
    """The reference answer (for lmms-eval's logs: scoring reads `truth`)."""
    return next((m["content"] for m in doc["messages"] if m["role"] == "assistant"), "")


def process_results(doc, results) -> dict:
    """The units of every metric of the record's cell, from the scorer itself."""
    response = results[0] if results else ""
    if not isinstance(response, str):  # a backend's result object
        response = getattr(response, "text", "") or ""
    units, parsed = evaluate(doc["cell"], json.loads(doc["truth"]), response, coords=COORDS)
    return {**{metric: tuple(map(int, tp_fp_fn)) for metric, tp_fp_fn in units.items()},
            "parse_failures": int(not parsed)}


def eq3(items) -> float:
    """Eq. 3 over the cell's samples, as the score file reports it; NaN with nothing to count
    (lmms-eval's tables need a number)."""
    value = value_of(list(items)) if items else None
    return math.nan if value is None else value


def total(items) -> int:
    return int(sum(items))


# ---- the task folder ----

TEMPLATE = {
    "dataset_path": "json",
    "test_split": "test",
    "output_type": "generate_until",
    "doc_to_visual": "!function utils.doc_to_visual",
    "doc_to_text": "!function utils.doc_to_text",
    "doc_to_messages": "!function utils.doc_to_messages",
    "doc_to_target": "!function utils.doc_to_target",
    "process_results": "!function utils.process_results",
    # Greedy, as the workflow's inference decodes; max_new_tokens as config.yaml's default.
    "generation_kwargs": {"max_new_tokens": 512, "temperature": 0, "top_p": 1.0, "num_beams": 1, "do_sample": False},
    "lmms_eval_specific_kwargs": {"default": {"pre_prompt": "", "post_prompt": ""}},
    "metadata": {"version": 1.0},
}
UTILS = '''"""The SARChat-Bench hooks, from the checkout that wrote this folder (`python -m sarchat_bench
lmms-tasks`): sarchat_bench.evaluation.lmms_task."""

import sys

sys.path.insert(0, {scripts!r})

from sarchat_bench.evaluation import lmms_task  # noqa: E402
from sarchat_bench.evaluation.lmms_task import (  # noqa: E402, F401
    doc_to_messages, doc_to_target, doc_to_text, doc_to_visual, eq3, process_results, total)

lmms_task.IMAGE_ROOT = {image_root!r}
lmms_task.COORDS = {coords!r}
'''


def _yaml(data: dict) -> str:
    """YAML with lmms-eval's `!function` tags left unquoted."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, width=1000)
    return text.replace("'!function ", "!function ").replace(".doc_to_visual'", ".doc_to_visual") \
        .replace(".doc_to_text'", ".doc_to_text").replace(".doc_to_messages'", ".doc_to_messages") \
        .replace(".doc_to_target'", ".doc_to_target").replace(".process_results'", ".process_results") \
        .replace(".eq3'", ".eq3").replace(".total'", ".total")


def cell_task(cell: str, data_file: Path) -> dict:
    """One cell's task: its test file, and every metric of its score file, aggregated by Eq. 3."""
    metrics = [{"metric": m, "aggregation": "!function utils.eq3", "higher_is_better": True}
               for m in CELL_METRICS[cell]]
    metrics.append({"metric": "parse_failures", "aggregation": "!function utils.total", "higher_is_better": False})
    return {"task": f"sarchat_{cell}", "include": "_sarchat_template_yaml",
            "dataset_kwargs": {"data_files": {"test": str(data_file)}}, "metric_list": metrics}


def write_task_folder(out, test_files: dict, *, limit: int = 0, image_root=None, coords: str = "pixel") -> list[str]:
    """The lmms-eval task folder of `test_files` ({cell: path}), replacing `out`: utils.py,
    `_sarchat_template_yaml`, a `sarchat_<cell>.yaml` per cell and the group `sarchat.yaml`. With
    `limit`, each test file's first `limit` records are copied into `data/` and the tasks read
    those. Returns the task names."""
    scripts = str(Path(__file__).resolve().parents[2])
    root = str(Path(image_root).resolve()) if image_root else None
    out = Path(out).absolute()
    names = []
    with atomic_folder(out) as tmp:
        (tmp / "utils.py").write_text(UTILS.format(scripts=scripts, image_root=root, coords=coords))
        (tmp / "_sarchat_template_yaml").write_text(_yaml(TEMPLATE))
        for cell, path in test_files.items():
            if cell not in CELL_METRICS:
                raise ValueError(f"unknown cell {cell!r} (known: {', '.join(CELL_METRICS)})")
            data = Path(path).resolve()
            if limit:
                (tmp / "data").mkdir(exist_ok=True)
                with open(path, "rb") as source:
                    (tmp / "data" / f"{cell}.jsonl").write_bytes(b"".join(islice(source, limit)))
                data = out / "data" / f"{cell}.jsonl"  # where it will be once the folder is in place
            (tmp / f"sarchat_{cell}.yaml").write_text(_yaml(cell_task(cell, data)))
            names.append(f"sarchat_{cell}")
        (tmp / "sarchat.yaml").write_text(_yaml({"group": "sarchat", "task": names}))
    return names
