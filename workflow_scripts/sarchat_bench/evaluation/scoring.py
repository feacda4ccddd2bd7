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
from itertools import chain, repeat
from pathlib import Path

import numpy as np
import orjson

from sarchat_bench import __version__
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import atomic_output, gc_paused, read_jsonl
from sarchat_bench.core.seeds import derive_seed
from sarchat_bench.evaluation import parsing as p
from sarchat_bench.evaluation import swift_results
from sarchat_bench.evaluation.metrics import bootstrap_eq3, match_counts_cells, multiset_tp, summarise, value_of
from sarchat_bench.paper.geometry import iou
from sarchat_bench.paper.records import parse_truth
from sarchat_bench.paper.table3 import CELL_METRICS, FIRST_BOX_ACC, UNITS
from sarchat_bench.paper.tasks import CELLS

log = logging.getLogger(__name__)

CORRECT, WRONG = (1, 0, 0), (0, 0, 1)


def details_path(score_path) -> Path:
    """The per-sample details written beside a score file (<cell>.json -> <cell>.details.jsonl)."""
    return Path(score_path).with_suffix(".details.jsonl")


def _per_sample(correct: bool):
    return CORRECT if correct else WRONG


def _box_units(pred: list, truth: list, pred_labels=None, truth_labels=None) -> list[tuple[tuple, tuple]]:
    """Per sample, (TP, FP, FN) at IoU .25 and at IoU .5, all the cell's samples matched at once."""
    tps = match_counts_cells(pred, truth, (0.25, 0.5), pred_labels, truth_labels).tolist()
    return [((at25, len(p) - at25, len(t) - at25), (at50, len(p) - at50, len(t) - at50))
            for (at25, at50), p, t in zip(tps, pred, truth, strict=True)]


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


# Each evaluator judges a cell's samples: truths and responses in test-file order, returning
# per sample its units and whether its answer parsed, and for the box tasks the boxes it read
# (pixels of the original image: what the details file gives the answer browser to draw).

def _classify(truths, responses, coords):
    out = []
    for truth, response in zip(truths, responses, strict=True):
        cats = read_answer("classify", response)
        out.append(({"category": _per_sample(cats == set(truth["categories"]))}, bool(cats)))
    return out


def _describe(truths, responses, coords):
    out = []
    for truth, response in zip(truths, responses, strict=True):
        pairs = read_answer("describe", response)
        true_pairs = [(t["category"], t["position"]) for t in truth["targets"]]
        tp = multiset_tp(pairs, true_pairs)
        out.append(({"phrase": (tp, len(pairs) - tp, len(true_pairs) - tp)}, bool(pairs)))
    return out


def _count(truths, responses, coords):
    said = [read_answer("count", response, truth["width"], truth["height"], coords, truth.get("category"))
            for truth, response in zip(truths, responses, strict=True)]
    box_units = _box_units([boxes for _, boxes in said], [truth["boxes"] for truth in truths])
    out = []
    for truth, (stated, boxes), (iou25, iou50) in zip(truths, said, box_units, strict=True):
        count = stated if stated is not None else (len(boxes) if boxes else None)
        out.append(({"only_count": _per_sample(count == truth["count"]), "instance_iou25": iou25,
                     "instance_iou50": iou50}, count is not None or bool(boxes), boxes))
    return out


def _grounding(truths, responses, coords):
    said = [read_answer("grounding", response, truth["width"], truth["height"], coords)
            for truth, response in zip(truths, responses, strict=True)]
    box_units = _box_units([boxes for boxes, _, _ in said], [[i["box"] for i in t["instances"]] for t in truths],
                           [labels for _, labels, _ in said], [[i["category"] for i in t["instances"]] for t in truths])
    out = []
    for truth, (boxes, _, pred_rel), (iou25, iou50) in zip(truths, said, box_units, strict=True):
        units = {"box_category_iou50": iou50, "box_category_iou25": iou25}
        true_rel = [p.canonical_relation(r["subject"], r["object"], r["distance"], r["direction"])
                    for r in truth["relations"]]
        # Images with relations, and images where the answer states relations the image does
        # not have (false positives), have abstract-position units; the rest none.
        if true_rel or pred_rel:
            tp = multiset_tp(pred_rel, true_rel)
            units["abstract_position"] = (tp, len(pred_rel) - tp, len(true_rel) - tp)
        out.append((units, bool(boxes), boxes))
    return out


def _identify(truths, responses, coords):
    return [_identify_units(response, truth["category"], truth["position"], truth["size"], truth["shape"])
            for truth, response in zip(truths, responses, strict=True)]


def _refer(truths, responses, coords):
    said = [read_answer("refer", response, truth["width"], truth["height"], coords)
            for truth, response in zip(truths, responses, strict=True)]
    return [({"iou25": iou25, "iou50": iou50}, bool(boxes), boxes)
            for boxes, (iou25, iou50) in zip(said, _box_units(said, [t["boxes"] for t in truths]), strict=True)]


EVALUATORS = {"classify": _classify, "describe": _describe, "count": _count, "grounding": _grounding,
              "identify": _identify, "refer": _refer}


def _first_box_hits(task: str, truths, responses, coords) -> list[bool]:
    """RefCOCO-style: whether each answer's first box has IoU >= .5 with a true box (the one
    target of a single-target cell) and, for grounding, names its category; an answer without a
    box misses. The later boxes of an answer play no part."""
    hits = []
    for truth, response in zip(truths, responses, strict=True):
        said = read_answer(task, response, truth["width"], truth["height"], coords)
        if task == "grounding":
            boxes, labels, _ = said
            targets = [(i["box"], i["category"]) for i in truth["instances"]]
            hits.append(bool(boxes) and any(iou(boxes[0], box) >= 0.5 and labels[0] == category
                                            for box, category in targets))
        else:
            hits.append(bool(said) and any(iou(said[0], box) >= 0.5 for box in truth["boxes"]))
    return hits


def judge_cell(cell: str, truths: list[dict], responses: list[str], coords: str = "pixel") -> list[tuple]:
    """Each sample of a cell judged: its units of every metric of the cell, whether its answer
    parsed, and for the box tasks the boxes read (its task's evaluator, plus the first-box
    accuracy of the cells that report it)."""
    task = CELLS[cell][0]
    judged = EVALUATORS[task](truths, responses, coords)
    if FIRST_BOX_ACC in CELL_METRICS[cell]:
        for (units, *_), hit in zip(judged, _first_box_hits(task, truths, responses, coords), strict=True):
            units[FIRST_BOX_ACC] = _per_sample(hit)  # a box task's units are the sample's own: never shared
    return judged


def evaluate(cell: str, truth: dict, response: str, coords: str = "pixel") -> tuple[dict, bool]:
    """Per-sample (TP, FP, FN) for each metric of `cell`, and whether the answer parsed."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}")
    return judge_cell(cell, [truth], [response if isinstance(response, str) else ""], coords)[0][:2]


def load_predictions(path, test_ids: set[str], *, bad_responses: str = "error",
                     swift_results_of=None) -> tuple[dict[str, str], int]:
    """id -> response, and how many responses were not text. Every line needs a string `id` of
    the cell's test file and a `response`; anything else stops scoring with an InputError naming
    the file and line: a line without `response` (e.g. a file that calls it `prediction`), a
    duplicated id, an id the test file does not have (a file of another cell), an empty file
    for a cell that has test records. A
    response that is a number, null or a list is an error too, unless `bad_responses` is
    "failure": then it is an empty answer, counted as a parse failure and in the score file.

    `swift_results_of`, the cell's test file (given for a model of mode predictions): the file
    may instead be a result file of `swift infer`, whose lines have no id and are matched to the
    test file's records by order (evaluation.swift_results)."""
    if swift_results_of is not None and swift_results.is_result_file(path):
        pairs = swift_results.read_result_file(path, swift_results_of, bad_responses=bad_responses)
        return _checked(path, pairs, test_ids, bad_responses)
    try:
        pairs = read_jsonl(path, ("id", "response"))
    except KeyError:  # a line without an id or a response
        _name_bad_line(path, read_jsonl(path), test_ids, bad_responses)
    return _checked(path, pairs, test_ids, bad_responses)


def _checked(path, pairs: list, test_ids: set[str], bad_responses: str) -> tuple[dict[str, str], int]:
    """load_predictions' checks of the (id, response) pairs a file gave."""
    if not pairs and test_ids:
        raise InputError(path, f"no predictions: the file is empty, and the cell has {len(test_ids)} test records")
    # Checked in bulk, as set operations; the line at fault is looked for (reading the file
    # again) only when one is.
    ids = [rid for rid, _ in pairs]
    if set(map(type, ids)) - {str}:
        _name_bad_line(path, read_jsonl(path), test_ids, bad_responses)
    responses = [response for _, response in pairs]
    out = dict(pairs)
    response_types = set(map(type, responses))
    if len(out) != len(pairs) or not test_ids.issuperset(out) or (
            bad_responses != "failure" and response_types - {str}):
        _name_bad_line(path, read_jsonl(path), test_ids, bad_responses)
    not_text = 0 if response_types == {str} else sum(1 for r in responses if type(r) is not str)
    if not_text:
        out = {rid: r if type(r) is str else "" for rid, r in out.items()}
    return out, not_text


def _name_bad_line(path, records: list[dict], test_ids: set[str], bad_responses: str) -> None:
    """Raise the InputError of the first line of a predictions file that load_predictions refuses."""
    seen = set()
    for line_no, rec in enumerate(records, start=1):
        where = f"line {line_no}"
        rid = rec.get("id")
        if not isinstance(rid, str):
            hint = ("; it looks like a `swift infer` result file, which only a model of mode: predictions may drop "
                    "(its lines are matched to the test file by order)"
                    if "id" not in rec and "messages" in rec and "response" in rec else "")
            raise InputError(path, f"missing string 'id' (keys: {', '.join(sorted(rec)) or 'none'}){hint}",
                             record=where)
        if "response" not in rec:
            raise InputError(path, f"no 'response' (keys: {', '.join(sorted(rec))}); each line is "
                                   '{"id": ..., "response": "the answer"}', record=f"{where} (id {rid})")
        if rid in seen:
            raise InputError(path, "duplicated id", record=f"{where} (id {rid})")
        if rid not in test_ids:
            raise InputError(path, "id is not in the cell's test file (is this the predictions file of another "
                                   "cell?)", record=f"{where} (id {rid})")
        if not isinstance(rec["response"], str) and bad_responses != "failure":
            raise InputError(path, f"response is {type(rec['response']).__name__}, not text "
                                   "(scoring.bad_responses: failure scores such lines as parse failures)",
                             record=f"{where} (id {rid})")
        seen.add(rid)


def units_array(units: list) -> np.ndarray:
    """Per-sample (TP, FP, FN) as an (n, 3) array: through one flat iterator, several times
    faster than np.asarray on a list of 200,000 short lists."""
    return np.fromiter(chain.from_iterable(units), dtype=np.int64, count=3 * len(units)).reshape(-1, 3)


def _metric_units(samples: list[dict], categories: list) -> tuple[dict, dict]:
    """Each metric's (n, 3) array of per-sample (TP, FP, FN), in the order metrics first
    appear, and the true categories of its samples. Where every sample has the same metrics
    (all cells but grounding), one flat pass fills them all."""
    layouts = set(map(tuple, samples))
    if len(layouts) == 1:
        names = layouts.pop()
        flat = np.fromiter(chain.from_iterable(chain.from_iterable(map(dict.values, samples))), dtype=np.int64,
                           count=3 * len(names) * len(samples)).reshape(len(samples), len(names), 3)
        return {m: flat[:, i] for i, m in enumerate(names)}, dict.fromkeys(names, categories)
    names = dict.fromkeys(m for units_of in samples[:1] for m in units_of)
    names.update(dict.fromkeys(m for units_of in samples for m in units_of if m not in names))
    return ({m: units_array([u[m] for u in samples if m in u]) for m in names},
            {m: [c for u, c in zip(samples, categories, strict=True) if m in u] for m in names})


def _category_codes(categories: list) -> tuple[list[str], np.ndarray]:
    """The sorted true categories named, and each sample's index among them (-1: none)."""
    names = sorted({c for c in categories if c is not None})
    index = {c: i for i, c in enumerate(names)}
    return names, np.fromiter(map(index.get, categories, repeat(-1)), dtype=np.int64, count=len(categories))


def per_category_values(units, names: list[str], codes: np.ndarray) -> dict:
    """Eq. 3 of one metric per true category (samples without one, coded -1, left out)."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1, 3)
    named = codes >= 0
    sums = np.stack([np.bincount(codes[named], weights=arr[named, k], minlength=len(names)) for k in range(3)],
                    axis=1).astype(np.int64)  # float sums of integers below 2**53: exact
    return {c: value_of(sums[i]) for i, c in enumerate(names)}


def _write_details(path, ids: list[str], judged: list[tuple]) -> None:
    """One line per sample: its id, whether its answer parsed, its units, and for the box tasks
    the boxes the scorer read (the answer browser draws exactly those). Each line goes to the
    file as it is made: orjson's outputs, if all were held, cost four times as much."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with atomic_output(path) as out:
        write = out.write
        for rid, (sample_units, parsed, *boxes) in zip(ids, judged, strict=True):
            line = {"id": rid, "parsed": parsed, "units": sample_units}
            if boxes:
                line["boxes"] = boxes[0]
            write(dumps(line, option=newline))


def per_category_samples(names: list[str], codes: np.ndarray) -> dict:
    """Samples of one metric per true category."""
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    return {c: int(k) for c, k in zip(names, counts, strict=True)}


def per_category_intervals(units, names: list[str], codes: np.ndarray, seed: int) -> dict:
    """The 95 % bootstrap interval of one metric per true category, resampling that category's
    samples (one stream per category, drawn from `seed`)."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1, 3)
    return {c: list(bootstrap_eq3(arr[codes == i], derive_seed(seed, c))) for i, c in enumerate(names)}


def _parse_truths(texts: list[str]) -> list[dict]:
    """The ground truths of a cell's records from their `truth` texts, each run of records with
    the same truth (the questions an identification cell asks of one box) parsing it once and
    sharing one dict: comparing a text with the one before costs less than hashing it."""
    truths, last_text = [], None
    for text in texts:
        if not truths or text != last_text:
            last_text, last = text, parse_truth(text)
        truths.append(last)
    return truths


def _truth_category(truth: dict) -> str | None:
    if "category" in truth:
        return truth["category"]
    cats = truth.get("categories")
    return cats[0] if cats and len(cats) == 1 else None


def score_cell(cell: str, test_path, predictions_path, *, model: str = "", coords: str = "pixel", seed: int = 0,
               details_path=None, bad_responses: str = "error", allow_empty_answers: bool = False,
               accept_swift_results: bool = False) -> dict:
    """The score file of one cell. The cyclic GC is paused: the 200,000 truths, answers and
    units of a cell are acyclic, and the collector's passes over them cost more than scoring.
    A predictions file in which no answer has any text is an InputError (an endpoint that
    refused every request, an export that lost the answers), unless `allow_empty_answers`.
    `accept_swift_results` (a model of mode predictions): the predictions may be a `swift infer`
    result file, without ids (load_predictions)."""
    if cell not in CELL_METRICS:
        raise ValueError(f"unknown cell {cell!r}")
    with gc_paused():
        return _score_cell(cell, test_path, predictions_path, model, coords, seed, details_path, bad_responses,
                           allow_empty_answers, accept_swift_results)


def _check_some_answer(path, responses: list[str]) -> None:
    if responses and not any(r.strip() for r in responses):
        raise InputError(path, f"no answer has any text ({len(responses)} of {len(responses)} empty): a model that "
                               "answered nothing, an endpoint that refused every request, or answers lost on the "
                               "way; if this is what the model does, set allow_empty_answers: true in its entry")


def _score_cell(cell, test_path, predictions_path, model, coords, seed, details_path, bad_responses,
                allow_empty_answers, accept_swift_results) -> dict:
    test = read_jsonl(test_path, ("id", "truth"))  # the rest of a record (its messages) is never held
    ids = [rid for rid, _ in test]
    truths = _parse_truths([text for _, text in test])
    del test  # its truth texts, freed before the predictions are read
    predictions, not_text = load_predictions(predictions_path, set(ids), bad_responses=bad_responses,
                                             swift_results_of=test_path if accept_swift_results else None)
    if list(predictions) == ids:  # in the test file's order, as inference writes them: nothing to look up
        responses = list(predictions.values())
    else:
        responses = list(map(predictions.get, ids))
    missing = responses.count(None)
    if missing:
        responses = ["" if r is None else r for r in responses]
    if not allow_empty_answers:
        _check_some_answer(predictions_path, responses)
    judged = judge_cell(cell, truths, responses, coords)
    samples = [sample[0] for sample in judged]
    failures = sum(1 for sample in judged if not sample[1])
    categories = list(map(_truth_category, truths))
    n = len(samples)
    units, unit_categories = _metric_units(samples, categories)
    if not_text:
        log.warning("%s: %d responses are not text (scored as parse failures)", predictions_path, not_text)
    if missing:
        log.warning("%s: %d of %d test records have no prediction (scored as wrong)", predictions_path, missing, n)
    metrics = {m: summarise(units.get(m, np.zeros((0, 3), np.int64)), derive_seed(seed, model, cell, m),
                            UNITS.get(m, "samples"))
               for m in CELL_METRICS[cell]}
    coded = {id(cats): _category_codes(cats) for cats in unit_categories.values()}  # metrics share lists
    codes_of = {m: coded[id(cats)] for m, cats in unit_categories.items()}
    breakdown = {m: per_category_values(units[m], *codes_of[m]) for m in units if codes_of[m][0]}
    # Samples and intervals per category, for the cell's reported metrics (the figure's points).
    reported = [m for m in CELL_METRICS[cell] if m in breakdown]
    category_samples = {m: per_category_samples(*codes_of[m]) for m in reported}
    category_ci = {m: per_category_intervals(units[m], *codes_of[m], seed=derive_seed(seed, model, cell, m,
                                                                                       "per category"))
                   for m in reported}
    if details_path is not None:
        _write_details(details_path, ids, judged)
    return {"version": __version__, "model": model, "cell": cell, "coords": coords, "n_samples": n,
            "parse_failures": failures,
            "missing_predictions": missing, "responses_not_text": not_text, "metrics": metrics,
            "per_category": breakdown, "per_category_samples": category_samples, "per_category_ci95": category_ci,
            "bootstrap": {"resamples": 1000, "seed": seed, "level": 0.95}}
