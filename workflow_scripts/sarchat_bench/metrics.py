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

BOOTSTRAP_RESAMPLES = 1000


def iou_matrix(pred: Sequence, truth: Sequence) -> np.ndarray:
    """IoU of every predicted with every true box, (len(pred), len(truth)): geometry.iou's
    arithmetic, in the same order, on arrays."""
    a = np.asarray(pred, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(truth, dtype=np.float64).reshape(1, -1, 4)
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    union = area_a + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((iw > 0) & (ih > 0) & (union > 0), inter / np.where(union > 0, union, 1.0), 0.0)


def match_boxes(pred: Sequence, truth: Sequence, threshold: float,
                pred_labels: Sequence | None = None, truth_labels: Sequence | None = None,
                overlaps: np.ndarray | None = None) -> int:
    """Number of true positives of the best one-to-one matching of predicted to true boxes.

    A pair can match when IoU >= threshold (and the labels agree, when given). Among all
    matchings the one with the most pairs wins, ties broken by total IoU (Hungarian method),
    so a prediction never scores by reusing one true box or by "best box" selection.
    `overlaps` is their iou_matrix, when the caller has it.
    """
    if not len(pred) or not len(truth):
        return 0
    if overlaps is None and len(pred) * len(truth) <= 16:
        return _match_few(pred, truth, threshold, pred_labels, truth_labels)
    overlaps = iou_matrix(pred, truth) if overlaps is None else overlaps
    can = overlaps >= threshold
    if pred_labels is not None:
        can &= np.asarray(pred_labels, dtype=object)[:, None] == np.asarray(truth_labels, dtype=object)[None, :]
    if not can.any():
        return 0
    if (can.sum(axis=0) <= 1).all() and (can.sum(axis=1) <= 1).all():
        return int(can.sum())  # no two candidate pairs share a box: all of them match
    big = float(min(len(pred), len(truth)) + 1)  # any extra pair outweighs any IoU total
    weights = np.where(can, big + overlaps, 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return int(np.count_nonzero(weights[rows, cols]))


def _match_few(pred, truth, threshold, pred_labels, truth_labels) -> int:
    """match_boxes for a handful of boxes, in plain Python (numpy's per-call cost would be most
    of the work): the same pairs and, where pairs compete, the same Hungarian matching."""
    pairs = []
    for i, (px1, py1, px2, py2) in enumerate(pred):
        area_p = (px2 - px1) * (py2 - py1)
        for j, (tx1, ty1, tx2, ty2) in enumerate(truth):
            # geometry.iou, inline: this loop runs for every box of every sample.
            iw, ih = min(px2, tx2) - max(px1, tx1), min(py2, ty2) - max(py1, ty1)
            if iw <= 0 or ih <= 0 or (pred_labels is not None and pred_labels[i] != truth_labels[j]):
                continue
            inter = iw * ih
            union = area_p + (tx2 - tx1) * (ty2 - ty1) - inter
            if union > 0 and inter / union >= threshold:
                pairs.append((i, j, inter / union))
    if len({i for i, _, _ in pairs}) == len(pairs) == len({j for _, j, _ in pairs}):
        return len(pairs)  # no two candidate pairs share a box: all of them match
    big = float(min(len(pred), len(truth)) + 1)
    weights = np.zeros((len(pred), len(truth)))
    for i, j, overlap in pairs:
        weights[i, j] = big + overlap
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return int(np.count_nonzero(weights[rows, cols]))


def multiset_tp(pred: Sequence, truth: Sequence) -> int:
    """True positives when comparing two multisets of hashable units."""
    return sum((Counter(pred) & Counter(truth)).values())


def eq3(tp: int, fp: int, fn: int) -> float:
    total = tp + fp + fn
    return 100.0 * tp / total if total else float("nan")


def _distinct_rows(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(units, axis=0, return_counts=True) for non-negative (TP, FP, FN) rows, through
    one integer key per row (a 1-D unique sorts ten times faster than a row-wise one)."""
    base = int(units.max()) + 1 if units.size else 1
    if base ** 3 >= 2 ** 62:
        return np.unique(units, axis=0, return_counts=True)
    keys, counts = np.unique((units[:, 0] * base + units[:, 1]) * base + units[:, 2], return_counts=True)
    return np.stack([keys // (base * base), keys // base % base, keys % base], axis=1), counts


def bootstrap_eq3(units: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile bootstrap CI of Eq. 3 over samples.

    `units` is an (n, 3) integer array of per-sample (TP, FP, FN). Resampling n samples with
    replacement only changes how often each distinct row is drawn, so the resample is drawn
    as multinomial counts over the distinct rows: exact, and independent of n in memory.
    """
    n = len(units)
    if n == 0:
        return (float("nan"), float("nan"))
    rows, counts = _distinct_rows(np.asarray(units, dtype=np.int64))
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
    tp, fp, fn = (int(v) for v in np.asarray(units, dtype=np.int64).reshape(-1, 3).sum(axis=0))
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
