"""Baselines made without any model, from the training mix alone, to say what a score is worth.

`majority-answer` answers every test question of a cell with the training mix's most frequent
answer of that cell, its boxes replaced by the median box of the mix (as fractions of the image
side, scaled to the test image). It gets the most frequent category, count, position, size and
shape right wherever those are what a test sample asks for, and a box task's most typical box:
what a model that learnt the answer format and the dataset's priors, but not to see, would score.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import Counter

import orjson

from sarchat_bench.core.io import iter_jsonl
from sarchat_bench.paper.tasks import CELLS

log = logging.getLogger(__name__)

BOX = re.compile(r"\{<(\d+(?:\.\d+)?)><(\d+(?:\.\d+)?)><(\d+(?:\.\d+)?)><(\d+(?:\.\d+)?)>\}")
SLOT = "\x00"
CENTRE_BOX = (0.4, 0.4, 0.6, 0.6)  # when the answers to learn from have no box


def majority_answer(train_path, cell: str) -> tuple[str, tuple[float, float, float, float]]:
    """The cell's most frequent training answer (boxes as slots; ties: the first in the mix) and
    the median box of the cell's training answers, as fractions of the image's width and height.
    A mix without samples of the cell (a small dataset) gives its task's; without those, the
    answer is empty (every sample then counts as a parse failure) and a warning says so."""
    answer = _majority(train_path, lambda rec: rec["cell"] == cell)
    if answer is None:
        task = CELLS[cell][0]
        answer = _majority(train_path, lambda rec: rec["task"] == task)
        if answer is None:
            log.warning("%s: no %s samples in the training mix; the %s baseline answers nothing", train_path, task,
                        cell)
            return "", CENTRE_BOX
        log.warning("%s: no %s samples in the training mix; taking the %s task's", train_path, cell, task)
    return answer


def _majority(train_path, wanted) -> tuple[str, tuple[float, float, float, float]] | None:
    texts: Counter = Counter()
    first: dict[str, int] = {}
    fractions: list[tuple[float, ...]] = []
    for n, rec in enumerate(iter_jsonl(train_path)):
        if not wanted(rec):
            continue
        truth = orjson.loads(rec["truth"])
        answer = rec["messages"][1]["content"]
        for box in BOX.findall(answer):
            x1, y1, x2, y2 = map(float, box)
            fractions.append((x1 / truth["width"], y1 / truth["height"], x2 / truth["width"], y2 / truth["height"]))
        text = BOX.sub(SLOT, answer)
        texts[text] += 1
        first.setdefault(text, n)
    if not texts:
        return None
    best = max(texts, key=lambda t: (texts[t], -first[t]))
    median = tuple(statistics.median(f[i] for f in fractions) for i in range(4)) if fractions else CENTRE_BOX
    return best, median


def majority_predictions(train_path, test_path, cell: str) -> list[dict]:
    """One prediction per test record of the cell, in its order."""
    text, (fx1, fy1, fx2, fy2) = majority_answer(train_path, cell)
    out = []
    for rec in iter_jsonl(test_path):
        truth = orjson.loads(rec["truth"])
        w, h = truth["width"], truth["height"]
        box = f"{{<{round(fx1 * w)}><{round(fy1 * h)}><{round(fx2 * w)}><{round(fy2 * h)}>}}"
        out.append({"id": rec["id"], "response": text.replace(SLOT, box)})
    return out
