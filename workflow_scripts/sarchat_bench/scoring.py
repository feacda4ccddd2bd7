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

import functools
import logging
from itertools import chain

import numpy as np
import orjson

from . import __version__
from . import parsing as p
from .io import InputError, atomic_output, gc_paused, read_jsonl
from .metrics import iou_matrix, match_boxes, multiset_tp, summarise, value_of
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


def _box_units(pred, truth, pred_labels=None, truth_labels=None) -> tuple[tuple, tuple]:
    """(TP, FP, FN) at IoU .25 and at IoU .5, from one IoU matrix (numpy's only where there
    are enough boxes to pay for its call overhead)."""
    overlaps = iou_matrix(pred, truth) if len(pred) * len(truth) > 16 else None
    out = []
    for threshold in (0.25, 0.5):
        tp = match_boxes(pred, truth, threshold, pred_labels, truth_labels, overlaps)
        out.append((tp, len(pred) - tp, len(truth) - tp))
    return tuple(out)


@functools.lru_cache(maxsize=1 << 16)
def read_answer(task: str, response: str, width: int = 0, height: int = 0, coords: str = "pixel",
                category: str | None = None):
    """What an answer says, in the terms its task compares: a pure function of the answer (and,
    for boxes, of the image size and convention), cached per distinct answer, because models
    fine-tuned on templated answers repeat their phrasing (SARChat-2M's identification cells
    hold about 7,000 distinct answers in 146,000)."""
    text = p.clean(response)
    answer = p.answer_region(text)
    if task == "classify":
        return frozenset(p.named_categories(text))
    if task == "describe":
        return tuple(p.find_phrases(text))
    if task == "count":
        return p.find_count(text, category), tuple(p.find_boxes(answer, width, height, coords))
    if task == "grounding":
        boxes, labels = p.labelled_boxes(answer, width, height, coords)
        return tuple(boxes), tuple(labels), tuple(p.find_relations(answer))
    if task == "identify":
        cats, positions = p.named_categories(text), p.find_positions(answer)
        return (cats[0] if cats else None, positions[0] if positions else None, p.find_size(answer),
                p.find_shape(answer))
    if task == "refer":
        return tuple(p.find_boxes(answer, width, height, coords))
    raise ValueError(f"unknown task {task!r}")


@functools.lru_cache(maxsize=1 << 16)
def _identify_units(response: str, category: str, position: str, size: str, shape: str):
    """An identification answer against its truth's words (the box plays no part): cached, as
    three quarters of SARChat-2M's test samples are identification questions."""
    said = read_answer("identify", response)
    units = {"category": _per_sample(said[0] is not None and said[0] == category),
             "position": _per_sample(said[1] is not None and said[1] == position),
             "size": _per_sample(said[2] == size), "shape": _per_sample(said[3] == shape)}
    return units, said[0] is not None  # the units are shared by every sample they fit: never mutated


def _classify(truth, response, coords):
    cats = read_answer("classify", response)
    return {"category": _per_sample(cats == set(truth["categories"]))}, bool(cats)


def _describe(truth, response, coords):
    pairs = read_answer("describe", response)
    true_pairs = [(t["category"], t["position"]) for t in truth["targets"]]
    tp = multiset_tp(pairs, true_pairs)
    return {"phrase": (tp, len(pairs) - tp, len(true_pairs) - tp)}, bool(pairs)


def _count(truth, response, coords):
    stated, boxes = read_answer("count", response, truth["width"], truth["height"], coords, truth.get("category"))
    count = stated if stated is not None else (len(boxes) if boxes else None)
    iou25, iou50 = _box_units(boxes, truth["boxes"])
    return ({"only_count": _per_sample(count == truth["count"]), "instance_iou25": iou25, "instance_iou50": iou50},
            count is not None or bool(boxes))


def _grounding(truth, response, coords):
    boxes, labels, pred_rel = read_answer("grounding", response, truth["width"], truth["height"], coords)
    instances = truth["instances"]
    iou25, iou50 = _box_units(boxes, [i["box"] for i in instances], labels, [i["category"] for i in instances])
    units = {"box_category_iou50": iou50, "box_category_iou25": iou25}
    true_rel = [p.canonical_relation(r["subject"], r["object"], r["distance"], r["direction"])
                for r in truth["relations"]]
    # Images with relations, and images where the answer states relations the image does
    # not have (false positives), have abstract-position units; the rest none.
    if true_rel or pred_rel:
        tp = multiset_tp(pred_rel, true_rel)
        units["abstract_position"] = (tp, len(pred_rel) - tp, len(true_rel) - tp)
    return units, bool(boxes)


def _identify(truth, response, coords):
    return _identify_units(response, truth["category"], truth["position"], truth["size"], truth["shape"])


def _refer(truth, response, coords):
    boxes = read_answer("refer", response, truth["width"], truth["height"], coords)
    iou25, iou50 = _box_units(boxes, truth["boxes"])
    return {"iou25": iou25, "iou50": iou50}, bool(boxes)


EVALUATORS = {"classify": _classify, "describe": _describe, "count": _count, "grounding": _grounding,
              "identify": _identify, "refer": _refer}


def evaluate(cell: str, truth: dict, response: str, coords: str = "pixel") -> tuple[dict, bool]:
    """Per-sample (TP, FP, FN) for each metric of `cell`, and whether the answer parsed."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}")
    return EVALUATORS[CELLS[cell][0]](truth, response if isinstance(response, str) else "", coords)


def load_predictions(path, test_ids: set[str], *, bad_responses: str = "error") -> tuple[dict[str, str], int]:
    """id -> response, and how many responses were not text. Every line needs a string `id` of
    the cell's test file and a `response`; anything else stops scoring with an InputError naming
    the file and line: a line without `response` (e.g. a file that calls it `prediction`), a
    duplicated id, an id the test file does not have (a file of another cell), an empty file
    for a cell that has test records. A
    response that is a number, null or a list is an error too, unless `bad_responses` is
    "failure": then it is an empty answer, counted as a parse failure and in the score file."""
    out: dict[str, str] = {}
    not_text = 0
    for line_no, rec in enumerate(read_jsonl(path), start=1):
        where = f"line {line_no}"
        rid = rec.get("id")
        if not isinstance(rid, str):
            raise InputError(path, f"missing string 'id' (keys: {', '.join(sorted(rec)) or 'none'})", record=where)
        if "response" not in rec:
            raise InputError(path, f"no 'response' (keys: {', '.join(sorted(rec))}); each line is "
                                   '{"id": ..., "response": "the answer"}', record=f"{where} (id {rid})")
        if rid in out:
            raise InputError(path, "duplicated id", record=f"{where} (id {rid})")
        if rid not in test_ids:
            raise InputError(path, "id is not in the cell's test file (is this the predictions file of another "
                                   "cell?)", record=f"{where} (id {rid})")
        response = rec["response"]
        if not isinstance(response, str):
            if bad_responses != "failure":
                raise InputError(path, f"response is {type(response).__name__}, not text (scoring.bad_responses: "
                                       "failure scores such lines as parse failures)", record=f"{where} (id {rid})")
            not_text += 1
            response = ""
        out[rid] = response
    if not out and test_ids:
        raise InputError(path, f"no predictions: the file is empty, and the cell has {len(test_ids)} test records")
    return out, not_text


def units_array(units: list) -> np.ndarray:
    """Per-sample (TP, FP, FN) as an (n, 3) array: through one flat iterator, several times
    faster than np.asarray on a list of 200,000 short lists."""
    return np.fromiter(chain.from_iterable(units), dtype=np.int64, count=3 * len(units)).reshape(-1, 3)


def per_category_values(units, categories: list) -> dict:
    """Eq. 3 of one metric per true category (samples without one left out)."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1, 3)
    names = sorted({c for c in categories if c is not None})
    index = {c: i for i, c in enumerate(names)}
    codes = np.fromiter((index.get(c, -1) for c in categories), dtype=np.int64, count=len(categories))
    return {c: value_of(arr[codes == i]) for i, c in enumerate(names)}


def _truth_category(truth: dict) -> str | None:
    if "category" in truth:
        return truth["category"]
    cats = truth.get("categories")
    return cats[0] if cats and len(cats) == 1 else None


def score_cell(cell: str, test_path, predictions_path, *, model: str = "", coords: str = "pixel", seed: int = 0,
               details_path=None, bad_responses: str = "error") -> dict:
    """The score file of one cell. The cyclic GC is paused: the 200,000 truths, answers and
    units of a cell are acyclic, and the collector's passes over them cost more than scoring."""
    if cell not in CELL_METRICS:
        raise ValueError(f"unknown cell {cell!r}")
    with gc_paused():
        return _score_cell(cell, test_path, predictions_path, model, coords, seed, details_path, bad_responses)


def _score_cell(cell, test_path, predictions_path, model, coords, seed, details_path, bad_responses) -> dict:
    test = read_jsonl(test_path)
    predictions, not_text = load_predictions(predictions_path, {rec["id"] for rec in test},
                                             bad_responses=bad_responses)
    judge = EVALUATORS[CELLS[cell][0]]
    samples, categories, details = [], [], []
    failures = missing = 0
    for rec in test:
        rid, truth = rec["id"], truth_of(rec)
        response = predictions.get(rid)
        if response is None:
            missing += 1
            response = ""
        sample_units, parsed = judge(truth, response, coords)
        failures += not parsed
        samples.append(sample_units)
        categories.append(_truth_category(truth))
        if details_path is not None:
            details.append(orjson.dumps({"id": rid, "parsed": parsed, "units": sample_units},
                                        option=orjson.OPT_APPEND_NEWLINE))
    n = len(samples)
    metric_names = dict.fromkeys(m for units_of in samples[:1] for m in units_of)
    metric_names.update(dict.fromkeys(m for units_of in samples for m in units_of if m not in metric_names))
    units = {m: units_array([u[m] for u in samples if m in u]) for m in metric_names}
    unit_categories = {m: [c for u, c in zip(samples, categories, strict=True) if m in u] for m in metric_names}
    if not_text:
        log.warning("%s: %d responses are not text (scored as parse failures)", predictions_path, not_text)
    if missing:
        log.warning("%s: %d of %d test records have no prediction (scored as wrong)", predictions_path, missing, n)
    metrics = {m: summarise(units.get(m, np.zeros((0, 3), np.int64)), derive_seed(seed, model, cell, m),
                            UNITS.get(m, "samples"))
               for m in CELL_METRICS[cell]}
    breakdown = {m: per_category_values(units[m], unit_categories[m]) for m in units
                 if any(c is not None for c in unit_categories[m])}
    if details_path is not None:
        with atomic_output(details_path) as out:
            out.write(b"".join(details))
    return {"version": __version__, "model": model, "cell": cell, "coords": coords, "n_samples": n,
            "parse_failures": failures,
            "missing_predictions": missing, "responses_not_text": not_text, "metrics": metrics,
            "per_category": breakdown, "bootstrap": {"resamples": 1000, "seed": seed, "level": 0.95}}
