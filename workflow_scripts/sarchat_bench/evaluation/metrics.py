"""Metric primitives: optimal one-to-one box matching, Eq. 3 over a cell's per-sample units
(the formula and its rounding are paper.table3's), and bootstrap intervals."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from sarchat_bench.paper.table3 import eq3, eq3_values, reported

BOOTSTRAP_RESAMPLES = 1000


def match_boxes(pred: Sequence, truth: Sequence, threshold: float,
                pred_labels: Sequence | None = None, truth_labels: Sequence | None = None) -> int:
    """Number of true positives of the best one-to-one matching of predicted to true boxes.

    A pair can match when IoU >= threshold (and the labels agree, when given). Among all
    matchings the one with the most pairs wins, ties broken by total IoU (Hungarian method),
    so a prediction never scores by reusing one true box or by "best box" selection.
    """
    return int(match_counts_cells([pred], [truth], (threshold,), None if pred_labels is None else [pred_labels],
                                  None if truth_labels is None else [truth_labels])[0, 0])


def match_counts_cells(pred: Sequence[Sequence], truth: Sequence[Sequence], thresholds: Sequence[float],
                       pred_labels: Sequence[Sequence] | None = None,
                       truth_labels: Sequence[Sequence] | None = None) -> np.ndarray:
    """match_boxes of many samples at several thresholds, as an (n samples, len(thresholds))
    array of true positives, all at once: the IoU
    of every predicted with every true box of the same sample in one numpy pass over all the
    cell's pairs. Where no two candidate pairs of a sample share a box, its candidates are its
    matches; only samples where they compete are matched one by one (Hungarian method)."""
    assert all(t > 0 for t in thresholds), "a pair must overlap to match"
    n = len(pred)
    n_pred = np.fromiter(map(len, pred), np.int64, n)
    n_truth = np.fromiter(map(len, truth), np.int64, n)
    n_pairs = n_pred * n_truth
    tps = np.zeros((n, len(thresholds)), np.int64)
    if not n_pairs.any():
        return tps
    pred_boxes = _flat_boxes(pred, int(n_pred.sum()))
    truth_boxes = _flat_boxes(truth, int(n_truth.sum()))
    # Pairs in sample order, and within a sample predicted-box-major: a sample's pairs are the
    # rows of its IoU matrix.
    sample = np.repeat(np.arange(n), n_pairs)
    first_pair = np.cumsum(n_pairs) - n_pairs
    k = np.arange(int(n_pairs.sum())) - first_pair[sample]
    columns = n_truth[sample]
    p_index = (np.cumsum(n_pred) - n_pred)[sample] + k // columns
    t_index = (np.cumsum(n_truth) - n_truth)[sample] + k % columns
    overlaps = _pair_iou(pred_boxes[p_index], truth_boxes[t_index])
    same_label = None
    if pred_labels is not None:
        codes: dict = {}
        pred_codes = np.fromiter((codes.setdefault(c, len(codes)) for labels in pred_labels for c in labels),
                                 np.int64, len(pred_boxes))
        truth_codes = np.fromiter((codes.setdefault(c, len(codes)) for labels in truth_labels for c in labels),
                                  np.int64, len(truth_boxes))
        same_label = pred_codes[p_index] == truth_codes[t_index]
    for column, threshold in enumerate(thresholds):
        can = overlaps >= threshold if same_label is None else (overlaps >= threshold) & same_label
        tps[:, column] = np.bincount(sample[can], minlength=n)
        shared = (np.bincount(p_index[can], minlength=len(pred_boxes))[p_index] > 1) | (
            np.bincount(t_index[can], minlength=len(truth_boxes))[t_index] > 1)
        for i in np.unique(sample[can & shared]).tolist():
            rows = slice(first_pair[i], first_pair[i] + n_pairs[i])
            shape = (int(n_pred[i]), int(n_truth[i]))
            tps[i, column] = _match_matrix(overlaps[rows].reshape(shape), can[rows].reshape(shape))
    return tps


def _flat_boxes(boxes_per_sample: Sequence[Sequence], count: int) -> np.ndarray:
    return np.fromiter(chain.from_iterable(chain.from_iterable(boxes_per_sample)), np.float64,
                       4 * count).reshape(-1, 4)


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each row of a with the same row of b: geometry.iou's arithmetic, in the same order."""
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((iw > 0) & (ih > 0) & (union > 0), inter / np.where(union > 0, union, 1.0), 0.0)


def _match_matrix(overlaps: np.ndarray, can: np.ndarray) -> int:
    """The largest matching among one sample's candidate pairs `can`, ties broken by total IoU."""
    big = float(min(overlaps.shape) + 1)  # any extra pair outweighs any IoU total
    weights = np.where(can, big + overlaps, 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return int(np.count_nonzero(weights[rows, cols]))


def multiset_tp(pred: Sequence, truth: Sequence) -> int:
    """True positives when comparing two multisets of hashable units."""
    if tuple(pred) == tuple(truth):  # an exact answer, in the truth's order: nothing to count
        return len(pred)
    return sum((Counter(pred) & Counter(truth)).values())


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(rows, axis=0, return_counts=True) for non-negative integer rows, through one
    integer key per row (a 1-D unique sorts ten times faster than a row-wise one)."""
    width = rows.shape[1]
    base = int(rows.max()) + 1 if rows.size else 1
    if base ** width >= 2 ** 62:
        return np.unique(rows, axis=0, return_counts=True)
    keys = rows[:, 0]
    for column in range(1, width):
        keys = keys * base + rows[:, column]
    keys, counts = np.unique(keys, return_counts=True)
    return np.stack([keys // base ** (width - 1 - column) % base for column in range(width)], axis=1), counts


def bootstrap_sums(rows: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """Column sums of each of `resamples` bootstrap resamples of the rows of an (n, k)
    non-negative integer array, (resamples, k). Resampling n rows with replacement only
    changes how often each distinct row is drawn, so a resample is drawn as multinomial counts
    over the distinct rows: exact, and independent of n in memory."""
    distinct, counts = _distinct_rows(np.asarray(rows, dtype=np.int64))
    draws = np.random.default_rng(seed).multinomial(len(rows), counts / len(rows), size=resamples)
    return draws @ distinct


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of bootstrap values, NaNs left out; (NaN, NaN) if none."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return (reported(low), reported(high))


def bootstrap_eq3(units: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile bootstrap CI of Eq. 3 over samples; `units` is an (n, 3) integer array
    of per-sample (TP, FP, FN)."""
    if len(units) == 0:
        return (float("nan"), float("nan"))
    return percentile_interval(eq3_values(bootstrap_sums(units, seed, resamples)))


def value_of(units) -> float | None:
    """Eq. 3 over per-sample (TP, FP, FN), rounded; None when there is nothing to count."""
    tp, fp, fn = (int(v) for v in np.asarray(units, dtype=np.int64).reshape(-1, 3).sum(axis=0))
    return reported(eq3(tp, fp, fn))


def summarise(units: list[tuple[int, int, int]], seed: int, unit: str) -> dict:
    """Value, CI and counts of one metric from its per-sample (TP, FP, FN)."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1, 3)
    tp, fp, fn = (int(v) for v in arr.sum(axis=0)) if len(arr) else (0, 0, 0)
    return {
        "value": reported(eq3(tp, fp, fn)),
        "ci95": list(bootstrap_eq3(arr, seed)),
        "n_samples": int(len(arr)),
        "unit": unit,
        "tp": tp, "fp": fp, "fn": fn,
    }
