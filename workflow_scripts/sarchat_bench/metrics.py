"""Metric primitives: optimal one-to-one box matching, Eq. 3 accumulation, bootstrap CIs.

Eq. 3 (§4.1): Acc = TP / (TP + FP + FN), accumulated over a cell (sums of TP, FP and FN over
its samples, then the ratio), as a percentage. A per-sample accuracy (classification,
identification, "only count") is the special case of one unit per sample.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import iou

BOOTSTRAP_RESAMPLES = 1000


def match_boxes(pred: Sequence, truth: Sequence, threshold: float,
                pred_labels: Sequence | None = None, truth_labels: Sequence | None = None) -> int:
    """Number of true positives of the best one-to-one matching of predicted to true boxes.

    A pair can match when IoU >= threshold (and the labels agree, when given). Among all
    matchings the one with the most pairs wins, ties broken by total IoU (Hungarian method),
    so a prediction never scores by reusing one true box or by "best box" selection.
    """
    if not pred or not truth:
        return 0
    weights = np.zeros((len(pred), len(truth)))
    big = float(min(len(pred), len(truth)) + 1)  # any extra pair outweighs any IoU total
    for i, p in enumerate(pred):
        for j, t in enumerate(truth):
            if pred_labels is not None and pred_labels[i] != truth_labels[j]:
                continue
            overlap = iou(p, t)
            if overlap >= threshold:
                weights[i, j] = big + overlap
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return int(np.count_nonzero(weights[rows, cols]))


def multiset_tp(pred: Sequence, truth: Sequence) -> int:
    """True positives when comparing two multisets of hashable units."""
    return sum((Counter(pred) & Counter(truth)).values())


def eq3(tp: int, fp: int, fn: int) -> float:
    total = tp + fp + fn
    return 100.0 * tp / total if total else float("nan")


def bootstrap_eq3(units: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile bootstrap CI of Eq. 3 over samples.

    `units` is an (n, 3) integer array of per-sample (TP, FP, FN). Resampling n samples with
    replacement only changes how often each distinct row is drawn, so the resample is drawn
    as multinomial counts over the distinct rows: exact, and independent of n in memory.
    """
    n = len(units)
    if n == 0:
        return (float("nan"), float("nan"))
    rows, counts = np.unique(np.asarray(units, dtype=np.int64), axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=resamples)  # (resamples, distinct rows)
    sums = draws @ rows                                       # (resamples, 3)
    total = sums.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(total > 0, 100.0 * sums[:, 0] / total, np.nan)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return (round(float(low), 2), round(float(high), 2))


def _reported(value: float) -> float | None:
    return None if np.isnan(value) else round(value, 2)


def value_of(units) -> float | None:
    """Eq. 3 over per-sample (TP, FP, FN), rounded; None when there is nothing to count."""
    tp, fp, fn = (sum(column) for column in zip(*units)) if units else (0, 0, 0)
    return _reported(eq3(tp, fp, fn))


def summarise(units: list[tuple[int, int, int]], seed: int, unit: str) -> dict:
    """Value, CI and counts of one metric from its per-sample (TP, FP, FN)."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1, 3)
    tp, fp, fn = (int(v) for v in arr.sum(axis=0)) if len(arr) else (0, 0, 0)
    return {
        "value": _reported(eq3(tp, fp, fn)),
        "ci95": list(bootstrap_eq3(arr, seed)),
        "n_samples": int(len(arr)),
        "unit": unit,
        "tp": tp, "fp": fp, "fn": fn,
    }
