"""Score one test cell: predictions (`id` + `response` per line) against the test file's
ground truth (`truth`), with the metrics of Table 3 (§4, Appendix 3).

Rules (docs/scoring.md gives them with their sections):
- Box metrics use Eq. 3 over the cell with an optimal one-to-one matching at IoU >= .25/.5.
- Per-sample metrics (classification, identification, only-count) are the share of correct
  samples.
- A prediction that is missing, empty or unparseable is wrong and counted as a parse failure;
  no sample ever leaves the denominator.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import orjson

from . import __version__
from . import parsing as p
from .io import InputError, atomic_output, iter_jsonl
from .metrics import match_boxes, multiset_tp, summarise, value_of
from .tasks import CELLS
from .tasks.common import derive_seed, truth_of

log = logging.getLogger(__name__)

CORRECT, WRONG = (1, 0, 0), (0, 0, 1)
# The metrics each cell reports; the first ones are Table 3 columns, the rest diagnostics.
CELL_METRICS = {
    "classify": ("category",),
    "describe": ("phrase",),
    "count": ("only_count", "instance_iou25", "instance_iou50"),
    "grounding_single": ("box_category_iou50", "box_category_iou25", "abstract_position"),
    "grounding_multi": ("box_category_iou50", "box_category_iou25", "abstract_position"),
    "identify_single": ("category", "position", "size", "shape"),
    "identify_multi": ("category", "position", "size", "shape"),
    "refer_single": ("iou25", "iou50"),
    "refer_multi": ("iou25", "iou50"),
}
UNITS = {"phrase": "phrases (category, position)", "instance_iou25": "boxes", "instance_iou50": "boxes",
         "box_category_iou50": "boxes with category", "box_category_iou25": "boxes with category",
         "abstract_position": "relation statements", "iou25": "boxes", "iou50": "boxes"}


def _per_sample(correct: bool):
    return CORRECT if correct else WRONG


def _box_units(pred, truth, threshold, pred_labels=None, truth_labels=None):
    tp = match_boxes(pred, truth, threshold, pred_labels, truth_labels)
    return (tp, len(pred) - tp, len(truth) - tp)


def _labelled_boxes(text, w, h, coords):
    """Boxes with the category named last before each (grounding answers list a category,
    then its boxes)."""
    cats = p.category_spans(text)
    out_boxes, labels = [], []
    for start, box in p.box_spans(text, w, h, coords):
        before = [c for pos, c in cats if pos < start]
        out_boxes.append(box)
        labels.append(before[-1] if before else None)
    return out_boxes, labels


def evaluate(cell: str, truth: dict, response: str, coords: str = "pixel") -> tuple[dict, bool]:
    """Per-sample (TP, FP, FN) for each metric of `cell`, and whether the answer parsed."""
    w, h = truth["width"], truth["height"]
    text = p.clean(response)
    task = CELLS[cell][0]
    if task == "classify":
        cats = set(p.find_categories(text))
        return {"category": _per_sample(cats == set(truth["categories"]))}, bool(cats)
    if task == "describe":
        pairs = p.find_phrases(text)
        true_pairs = [(t["category"], t["position"]) for t in truth["targets"]]
        tp = multiset_tp(pairs, true_pairs)
        return {"phrase": (tp, len(pairs) - tp, len(true_pairs) - tp)}, bool(pairs)
    if task == "count":
        boxes = p.find_boxes(text, w, h, coords)
        stated = p.find_count(text)
        count = stated if stated is not None else (len(boxes) if boxes else None)
        return {
            "only_count": _per_sample(count == truth["count"]),
            "instance_iou25": _box_units(boxes, truth["boxes"], 0.25),
            "instance_iou50": _box_units(boxes, truth["boxes"], 0.5),
        }, count is not None or bool(boxes)
    if task == "grounding":
        boxes, labels = _labelled_boxes(text, w, h, coords)
        true_boxes = [i["box"] for i in truth["instances"]]
        true_labels = [i["category"] for i in truth["instances"]]
        units = {
            "box_category_iou50": _box_units(boxes, true_boxes, 0.5, labels, true_labels),
            "box_category_iou25": _box_units(boxes, true_boxes, 0.25, labels, true_labels),
        }
        true_rel = [(r["subject"], r["object"], r["distance"], r["direction"]) for r in truth["relations"]]
        if true_rel:  # only images with relations have abstract-position statements to score
            pred_rel = p.find_relations(text)
            tp = multiset_tp(pred_rel, true_rel)
            units["abstract_position"] = (tp, len(pred_rel) - tp, len(true_rel) - tp)
        return units, bool(boxes)
    if task == "identify":
        cats = p.find_categories(text)
        positions = p.find_positions(text)
        return {
            "category": _per_sample(bool(cats) and cats[0] == truth["category"]),
            "position": _per_sample(bool(positions) and positions[0] == truth["position"]),
            "size": _per_sample(p.find_size(text) == truth["size"]),
            "shape": _per_sample(p.find_shape(text) == truth["shape"]),
        }, bool(cats)
    if task == "refer":
        boxes = p.find_boxes(text, w, h, coords)
        return {"iou25": _box_units(boxes, truth["boxes"], 0.25),
                "iou50": _box_units(boxes, truth["boxes"], 0.5)}, bool(boxes)
    raise ValueError(f"unknown cell {cell!r}")


def load_predictions(path) -> dict[str, str]:
    """id -> response. A duplicated id or a line without id/response is an InputError."""
    out: dict[str, str] = {}
    for line_no, rec in enumerate(iter_jsonl(path), start=1):
        rid, response = rec.get("id"), rec.get("response")
        if not isinstance(rid, str):
            raise InputError(path, "missing string 'id'", record=f"line {line_no}")
        if rid in out:
            raise InputError(path, "duplicated id", record=f"line {line_no} (id {rid})")
        out[rid] = response if isinstance(response, str) else ""
    return out


def _truth_category(truth: dict) -> str | None:
    if "category" in truth:
        return truth["category"]
    cats = truth.get("categories")
    return cats[0] if cats and len(cats) == 1 else None


def score_cell(cell: str, test_path, predictions_path, *, model: str = "", coords: str = "pixel", seed: int = 0,
               details_path=None) -> dict:
    if cell not in CELL_METRICS:
        raise ValueError(f"unknown cell {cell!r}")
    predictions = load_predictions(predictions_path)
    units = defaultdict(list)
    per_category = defaultdict(lambda: defaultdict(list))
    failures = missing = n = 0
    seen = set()
    details = []
    for rec in iter_jsonl(test_path):
        n += 1
        rid, truth = rec["id"], truth_of(rec)
        seen.add(rid)
        response = predictions.get(rid)
        if response is None:
            missing += 1
            response = ""
        sample_units, parsed = evaluate(cell, truth, response, coords)
        failures += not parsed
        category = _truth_category(truth)
        for metric, u in sample_units.items():
            units[metric].append(u)
            if category is not None:
                per_category[metric][category].append(u)
        if details_path is not None:
            details.append({"id": rid, "parsed": parsed, "units": sample_units})
    extra = len(set(predictions) - seen)
    if extra:
        log.warning("%s: %d predictions have ids that are not in %s (ignored)", predictions_path, extra, test_path)
    if missing:
        log.warning("%s: %d of %d test records have no prediction (scored as wrong)", predictions_path, missing, n)
    metrics = {m: summarise(units[m], derive_seed(seed, model, cell, m), UNITS.get(m, "samples"))
               for m in CELL_METRICS[cell]}
    breakdown = {m: {c: value_of(u) for c, u in sorted(per_category[m].items())} for m in per_category}
    if details_path is not None:
        with atomic_output(details_path) as out:
            for d in details:
                out.write(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE))
    return {"version": __version__, "model": model, "cell": cell, "coords": coords, "n_samples": n,
            "parse_failures": failures,
            "missing_predictions": missing, "extra_predictions": extra, "metrics": metrics,
            "per_category": breakdown, "bootstrap": {"resamples": 1000, "seed": seed, "level": 0.95}}
