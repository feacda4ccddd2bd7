"""Table 3 of the paper, defined once: the metrics each test cell reports, the 14 columns and the
task each belongs to, and the formulas that make its figures, with one rounding rule.

- Eq. 3 (§4.1): Acc = TP / (TP + FP + FN) over a cell (sums over its samples, then the ratio),
  in percent. A per-sample accuracy (classification, identification, "only count") is the case
  of one unit per sample.
- Eq. 5 (Appendix 3): a task's score is the mean of its columns that have a value (a column
  without samples, such as abstract position when no test image holds two categories, is left
  out and shown as "–").
- Eq. 4 (§4.1): the average score weights each task's score by its number of test samples n_t.

Rounding: every reported figure is rounded to two decimals once, when it is reported, and a
reported figure is computed from the reported figures it is defined by (a task score from the
printed columns, the average from the printed task scores), so that a reader recomputes the
table from the table. Bootstrap replicates are not reported: the interval's arithmetic runs
the same formulas on unrounded replicates and rounds only the interval's ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from sarchat_bench.paper.tasks import CELLS

DECIMALS = 2

# The metrics each cell's score file reports; the first ones are Table 3 columns, the rest
# diagnostics (docs/scoring.md).
# RefCOCO-style Acc@0.5 of the single-target box cells, for comparison with other benchmarks'
# numbers: the share of samples whose answer's first box has IoU >= .5 with the target (and, for
# grounding, its category). Eq. 3 stays the paper's figure.
FIRST_BOX_ACC = "first_box_acc50"
CELL_METRICS = {
    "classify": ("category",),
    "describe": ("phrase",),
    "count": ("only_count", "instance_iou25", "instance_iou50"),
    "grounding_single": ("box_category_iou50", "box_category_iou25", "abstract_position", FIRST_BOX_ACC),
    "grounding_multi": ("box_category_iou50", "box_category_iou25", "abstract_position"),
    "identify_single": ("category", "position", "size", "shape"),
    "identify_multi": ("category", "position", "size", "shape"),
    "refer_single": ("iou25", "iou50", FIRST_BOX_ACC),
    "refer_multi": ("iou25", "iou50"),
}
# What Eq. 3 counts for each metric; a metric not named here counts samples.
UNITS = {"phrase": "phrases (category, position)", "instance_iou25": "boxes", "instance_iou50": "boxes",
         "box_category_iou50": "boxes with category", "box_category_iou25": "boxes with category",
         "abstract_position": "relation statements", "iou25": "boxes", "iou50": "boxes",
         FIRST_BOX_ACC: "samples (their first box)"}


@dataclass(frozen=True)
class Column:
    """A column of Table 3: one metric of one test cell; its task is the cell's."""

    name: str
    cell: str
    metric: str

    @property
    def task(self) -> str:
        return CELLS[self.cell][0]


# In the paper's order.
COLUMNS = (
    Column("Only count", "count", "only_count"),
    Column("Count IoU=.25", "count", "instance_iou25"),
    Column("Count IoU=.5", "count", "instance_iou50"),
    Column("Abstract position", "grounding_multi", "abstract_position"),
    Column("Ground multi", "grounding_multi", "box_category_iou50"),
    Column("Ground single", "grounding_single", "box_category_iou50"),
    Column("ID multi", "identify_multi", "category"),
    Column("ID single", "identify_single", "category"),
    Column("Ref multi IoU=.25", "refer_multi", "iou25"),
    Column("Ref multi IoU=.5", "refer_multi", "iou50"),
    Column("Ref single IoU=.25", "refer_single", "iou25"),
    Column("Ref single IoU=.5", "refer_single", "iou50"),
    Column("Describe", "describe", "phrase"),
    Column("Classify", "classify", "category"),
)
COLUMN_NAMES = [c.name for c in COLUMNS]
# Not columns of Table 3: figures other benchmarks report, beside the paper's in the interval table.
PEER_COLUMNS = (
    Column("Ground single Acc@0.5", "grounding_single", FIRST_BOX_ACC),
    Column("Ref single Acc@0.5", "refer_single", FIRST_BOX_ACC),
)
# The tasks as Table 3 and Figure 1 name them, in the order of Table 3's column groups.
TASK_LABELS = {"count": "Instance Counting", "grounding": "Spatial Grounding", "identify": "Cross-Modal Identification",
               "refer": "Referring", "describe": "Fine-Grained Description", "classify": "Classification"}
# Each task's columns: the columns whose cell is one of the task's (never positions in a list).
TASK_COLUMNS = {task: [c.name for c in COLUMNS if c.task == task] for task in TASK_LABELS}


def reported(value) -> float | None:
    """The one rounding rule: a figure as reported, two decimals; None where there is none (a
    None or NaN value)."""
    if value is None or math.isnan(value):
        return None
    return round(float(value), DECIMALS)


def eq3(tp: int, fp: int, fn: int) -> float:
    """Eq. 3 in percent; NaN when there is nothing to count."""
    total = tp + fp + fn
    return 100.0 * tp / total if total else float("nan")


def eq3_values(sums: np.ndarray) -> np.ndarray:
    """Eq. 3 of each row of an (m, 3) array of summed (TP, FP, FN); NaN where all are 0."""
    total = sums.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * sums[:, 0] / total, np.nan)


def eq5(columns: Sequence):
    """Eq. 5: the mean of a task's columns that have a value. Each column is a number (None or
    NaN: no value) or an array of bootstrap replicates (NaN where a replicate has none); the
    result is NaN where no column has a value."""
    stacked = np.array([np.nan if v is None else v for v in columns], dtype=float)
    if stacked.ndim == 1:  # numbers: summed in order, as a reader adds up the printed columns
        present = [float(v) for v in stacked if not math.isnan(v)]
        return sum(present) / len(present) if present else float("nan")
    have = ~np.isnan(stacked)
    with np.errstate(invalid="ignore"):
        return np.where(have, stacked, 0).sum(axis=0) / have.sum(axis=0)


def eq4(task_scores: Mapping, weights: Mapping[str, int]):
    """Eq. 4: the task scores (numbers or replicate arrays) weighted by the tasks' test samples
    n_t; NaN unless every task has a score and some task has samples."""
    total = sum(weights[t] for t in TASK_LABELS)
    if not total:
        return float("nan")
    return sum(weights[t] * (np.nan if task_scores[t] is None else task_scores[t]) for t in TASK_LABELS) / total


def column_values(cells: Mapping[str, dict]) -> dict[str, float | None]:
    """A model's 14 column values from its score files ({cell: score}); None for a cell not
    scored."""
    return {c.name: cells[c.cell]["metrics"][c.metric]["value"] if c.cell in cells else None for c in COLUMNS}


def task_samples(cells: Mapping[str, dict]) -> dict[str, int]:
    """n_t of Eq. 4: test samples per task (a task's cells added up)."""
    counts = dict.fromkeys(TASK_LABELS, 0)
    for cell, score in cells.items():
        counts[CELLS[cell][0]] += score["n_samples"]
    return counts


def task_scores(values: Mapping[str, float | None]) -> dict[str, float | None]:
    """Each task's reported Eq. 5 score, from its reported columns."""
    return {task: reported(eq5([values.get(c) for c in cols])) for task, cols in TASK_COLUMNS.items()}


def average(scores: Mapping[str, float | None], weights: Mapping[str, int]) -> float | None:
    """The reported Eq. 4 average, from the reported task scores; None unless every task has a
    score."""
    if any(scores[t] is None for t in TASK_LABELS):
        return None
    return reported(eq4(scores, weights))


def average_of_replicates(columns: Mapping[str, np.ndarray], weights: Mapping[str, int]) -> np.ndarray:
    """Eq. 5 then Eq. 4 of each bootstrap replicate, unrounded: `columns` maps a column name to
    its replicate values (columns without any value left out, as Eq. 5 leaves them)."""
    scores = {task: eq5([columns[c] for c in cols if c in columns]) for task, cols in TASK_COLUMNS.items()}
    return eq4(scores, weights)
