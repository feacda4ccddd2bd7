"""The scorer: reference answers score 100, empty answers 0, IoU thresholds bite where they
should, and the examples of the paper's Figure 6 give the hand-computed values."""

import itertools
import random
import zlib

import orjson
import pytest
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import iter_jsonl, write_jsonl
from sarchat_bench.dataset.build import build_test_cell
from sarchat_bench.evaluation.metrics import bootstrap_eq3, match_boxes, match_counts_cells
from sarchat_bench.evaluation.scoring import CELL_METRICS, evaluate, score_cell
from sarchat_bench.paper.geometry import iou
from sarchat_bench.paper.records import truth_of
from sarchat_bench.paper.tasks import CELLS

# Figure 6: ground truth on a 512x512 image.
GT = [[294, 358, 329, 427], [61, 448, 122, 503], [27, 199, 78, 261], [193, 157, 245, 306]]
W = H = 512


@pytest.fixture(scope="module")
def test_files(demo_tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("cells")
    for cell in CELLS:
        build_test_cell(cell, [demo_tables["test"]], out / f"{cell}.jsonl", seed=0)
    return {cell: out / f"{cell}.jsonl" for cell in CELLS}


def predict(test_path, tmp_path, answer):
    path = tmp_path / "pred.jsonl"
    write_jsonl(path, [{"id": r["id"], "response": answer(r)} for r in iter_jsonl(test_path)])
    return path


def values(result):
    return {m: v["value"] for m, v in result["metrics"].items()}


@pytest.mark.parametrize("cell", list(CELLS))
def test_reference_answers_score_100(cell, test_files, tmp_path):
    preds = predict(test_files[cell], tmp_path, lambda r: r["messages"][1]["content"])
    result = score_cell(cell, test_files[cell], preds)
    assert result["parse_failures"] == 0 and result["n_samples"] > 0
    for metric, value in values(result).items():
        if result["metrics"][metric]["n_samples"]:
            assert value == 100.0, (cell, metric)


@pytest.mark.parametrize("cell", list(CELLS))
def test_empty_answers_score_0_and_all_fail_to_parse(cell, test_files, tmp_path):
    preds = predict(test_files[cell], tmp_path, lambda r: " \n" if zlib.crc32(r["id"].encode()) % 2 else "")
    # A file without any answer is an error naming it (an endpoint that refused everything),
    # unless the model's entry says that is what it does.
    with pytest.raises(InputError, match=rf"{preds}: no answer has any text \((\d+) of \1 empty\)"):
        score_cell(cell, test_files[cell], preds)
    result = score_cell(cell, test_files[cell], preds, allow_empty_answers=True)
    assert result["parse_failures"] == result["n_samples"] > 0
    assert all(v in (0.0, None) for v in values(result).values())
    assert any(v == 0.0 for v in values(result).values())


def shift(box, boxes, width, height, frac=0.45):
    """Shift a box by `frac` of its size (IoU = (1 - f) / (1 + f), about 0.38 with itself), in
    the first direction that keeps it under IoU 0.5 with every other true box too."""
    from sarchat_bench.paper.geometry import iou

    x1, y1, x2, y2 = box
    dx, dy = round((x2 - x1) * frac), round((y2 - y1) * frac)
    for mx, my in ((dx, 0), (-dx, 0), (0, dy), (0, -dy)):
        moved = [x1 + mx, y1 + my, x2 + mx, y2 + my]
        inside = 0 <= moved[0] and 0 <= moved[1] and moved[2] <= width and moved[3] <= height
        if inside and 0.25 <= iou(moved, box) < 0.5 and all(iou(moved, b) < 0.5 for b in boxes if b != box):
            return moved
    raise AssertionError(f"no clean shift for {box}")


@pytest.mark.parametrize("cell", ["refer_single", "refer_multi", "count"])
def test_shifted_boxes_pass_at_25_fail_at_50(cell, test_files, tmp_path):
    from sarchat_bench.paper.geometry import format_box, iou

    def answer(r):
        truth = truth_of(r)
        boxes = truth["boxes"]
        shifted = [shift(b, boxes, truth["width"], truth["height"]) for b in boxes]
        assert all(0.25 <= iou(s, b) < 0.5 for s, b in zip(shifted, boxes, strict=True))
        return f"There are {len(boxes)} instances. " + "".join(format_box(s) for s in shifted)

    result = score_cell(cell, test_files[cell], predict(test_files[cell], tmp_path, answer))
    v = values(result)
    at25, at50 = ("instance_iou25", "instance_iou50") if cell == "count" else ("iou25", "iou50")
    assert (v[at25], v[at50]) == (100.0, 0.0)


@pytest.mark.parametrize("cell", ["refer_single", "grounding_single"])
def test_first_box_accuracy_and_its_relation_to_eq3_on_a_mixed_set(cell, test_files, tmp_path):
    """RefCOCO-style Acc@0.5 (the first box only) beside Eq. 3: on single-target samples that
    each give one box, a miss is one FP and one FN, so Eq. 3 = p / (2 - p) with p the Acc@0.5.
    Samples with several boxes or none break the relation in the documented way."""
    from sarchat_bench.paper.geometry import format_box

    at50 = "box_category_iou50" if cell == "grounding_single" else "iou50"
    # Nine samples: the cell's records again under other ids where it has fewer.
    cell_records = list(iter_jsonl(test_files[cell]))
    records = [{**r, "id": f"{r['id']}-{i}"} for i, r in zip(range(9), itertools.cycle(cell_records))]
    test = tmp_path / f"{cell}.jsonl"
    write_jsonl(test, records)

    def target(r):
        truth = truth_of(r)
        return truth["instances"][0]["box"] if cell == "grounding_single" else truth["boxes"][0], truth

    def one_box(r, box, category=None):
        truth = truth_of(r)
        category = category or (truth["instances"][0]["category"] if cell == "grounding_single" else "")
        return f"There is 1 {category}: {format_box(box)}" if cell == "grounding_single" else format_box(box)

    def mixed(r):  # hit, miss (a shifted box), hit, miss (grounding: the right box, another category) ...
        box, truth = target(r)
        k = int(r["id"].rsplit("-", 1)[1]) % 4
        if k in (0, 2):
            return one_box(r, box)
        if k == 3 and cell == "grounding_single":
            other = next(c for c in ("ship", "tank") if c != truth["instances"][0]["category"])
            return one_box(r, box, other)
        return one_box(r, shift(box, [box], truth["width"], truth["height"]))

    result = score_cell(cell, test, predict(test, tmp_path, mixed))
    acc, eq3 = result["metrics"]["first_box_acc50"], result["metrics"][at50]
    hits = sum(1 for i in range(len(records)) if i % 4 in (0, 2))
    assert (acc["tp"], acc["fp"], acc["fn"]) == (hits, 0, len(records) - hits)
    assert acc["unit"] == "samples (their first box)" and acc["n_samples"] == len(records)
    p = hits / len(records)
    assert 0 < p < 1
    assert (eq3["tp"], eq3["fp"], eq3["fn"]) == (hits, len(records) - hits, len(records) - hits)
    assert eq3["value"] == pytest.approx(100 * p / (2 - p), abs=0.005)
    assert acc["value"] == pytest.approx(100 * p, abs=0.005)

    # The first box is the one that counts: a right box after a wrong one misses (Eq. 3 matches
    # it, and counts the wrong one as an FP); no box at all misses (Eq. 3: an FN).
    def shuffled(r):
        box, truth = target(r)
        wrong = one_box(r, shift(box, [box], truth["width"], truth["height"]))
        return "" if r["id"].endswith("-0") else wrong + " " + one_box(r, box)

    result = score_cell(cell, test, predict(test, tmp_path, shuffled))
    acc, eq3 = result["metrics"]["first_box_acc50"], result["metrics"][at50]
    n = len(records)
    assert (acc["tp"], acc["fn"]) == (0, n)
    assert (eq3["tp"], eq3["fp"], eq3["fn"]) == (n - 1, n - 1, 1)


def test_figure6_counting_example():
    response = ("There are 4 instances. "
                "{<291><355><320><428>}{<205><195><226><293>}{<12><203><78><263>}{<49><453><120><501>}")
    units, parsed = evaluate("count", {"width": W, "height": H, "count": 4, "boxes": GT}, response)
    # IoUs by hand: 0.655 (A), 0.266 (D), 0.710 (C), 0.720 (B).
    assert parsed and units == {"only_count": (1, 0, 0), "instance_iou25": (4, 0, 0), "instance_iou50": (3, 1, 1)}


def test_figure6_referring_example():
    response = "{<10><0><37><56>} (top left){<17><203><75><260>} (middle left){<201><187><224><285>} (middle center)" \
               "{<291><355><320><428>} (bottom center)"
    units, _ = evaluate("refer_multi", {"width": W, "height": H, "category": "ship", "boxes": GT}, response)
    # IoUs: none, 0.733 (C), 0.291 (D), 0.655 (A); B is missed.
    assert units == {"iou25": (3, 1, 1), "iou50": (2, 2, 2)}


def test_figure6_grounding_example():
    response = ("In this SAR image, I can identify several objects and their locations: There are 5 ships: "
                "one in the middle left portion {<10><203><75><260>}, "
                "one in the middle center portion {<197><187><230><285>}, "
                "one in the bottom center portion {<289><355><322><429>}, "
                "one in the bottom left portion {<53><453><116><501>}, "
                "one in the bottom center portion {<196><479><221><511>}.")
    truth = {"width": W, "height": H, "relations": [],
             "instances": [{"category": "ship", "box": b} for b in GT]}
    units, parsed = evaluate("grounding_multi", truth, response)
    # IoUs: 0.662 (C), 0.417 (D), 0.660 (A), 0.706 (B), and one box with no partner.
    assert parsed and units == {"box_category_iou50": (3, 2, 1), "box_category_iou25": (4, 1, 0)}
    # The same boxes under the wrong category match nothing.
    units, _ = evaluate("grounding_multi", truth, response.replace("ships", "tanks"))
    assert units["box_category_iou25"] == (0, 5, 4)


def test_figure6_identification_classification_description():
    truth = {"width": W, "height": H, "category": "ship", "position": "bottom center", "size": "very small",
             "shape": "tall", "box": GT[0]}
    units, _ = evaluate("identify_single", truth, "Examining the bottom center area reveals a very small ship.")
    assert units == {"category": (1, 0, 0), "position": (1, 0, 0), "size": (1, 0, 0), "shape": (0, 0, 1)}
    units, _ = evaluate("classify", {"width": W, "height": H, "categories": ["ship"]}, "It is ship.")
    assert units == {"category": (1, 0, 0)}
    truth = {"width": W, "height": H, "targets": [
        {"category": "ship", "position": "bottom left"}, {"category": "ship", "position": "middle left"},
        {"category": "ship", "position": "middle center"}]}
    units, _ = evaluate("describe", truth, "In this satellite image, we can observe the following: A small ship is "
                                           "visible in the bottom left portion of the image.")
    assert units == {"phrase": (1, 0, 2)}  # 1 / 3 = 33.33 %


def test_abstract_position_counts_relation_statements():
    truth = {"width": 400, "height": 400, "instances": [], "relations": [
        {"subject": "ship", "object": "harbor", "distance": "far from", "direction": "to the upper left of"}]}
    right, _ = evaluate("grounding_multi", truth, "The ship is far from the harbor, to the upper left of it.")
    wrong, _ = evaluate("grounding_multi", truth, "The ship is near the harbor, to the upper left of it.")
    assert right["abstract_position"] == (1, 0, 0) and wrong["abstract_position"] == (0, 1, 1)


def test_matching_is_one_to_one_and_optimal():
    truth = [[0, 0, 10, 10], [10, 0, 20, 10]]
    # One predicted box overlapping both true boxes can match only one of them.
    assert match_boxes([[0, 0, 20, 10]], truth, 0.25) == 1
    # Greedy "best box first" would pair p1 with t1 (IoU .68) and leave p2 (IoU .33 with t1 only) unmatched;
    # the optimal matching pairs p1-t2 and p2-t1.
    t1, t2 = [0, 0, 10, 10], [6, 0, 16, 10]
    p1, p2 = [2, 0, 12, 10], [-5, 0, 5, 10]
    assert match_boxes([p1, p2], [t1, t2], 0.3) == 2


def _most_pairs(can: list[list[bool]]) -> int:
    """The largest one-to-one matching among candidate pairs, by trying every assignment."""
    rows, cols = len(can), len(can[0]) if can else 0
    if rows > cols:
        can = [list(column) for column in zip(*can)]
        rows, cols = cols, rows
    return max((sum(can[i][j] for i, j in enumerate(perm)) for perm in itertools.permutations(range(cols), rows)),
               default=0)


def test_cell_matching_finds_the_largest_matching_of_every_sample():
    # Crowded boxes, so that candidate pairs compete within samples (the Hungarian path) beside
    # samples where they do not: the cell-wide matcher against brute force, sample by sample.
    rng = random.Random(7)

    def box():
        x, y = rng.randint(0, 12), rng.randint(0, 12)
        return [x, y, x + rng.randint(4, 20), y + rng.randint(4, 20)]

    pred = [[box() for _ in range(rng.randint(0, 5))] for _ in range(400)]
    truth = [[box() for _ in range(rng.randint(0, 5))] for _ in range(400)]
    pred_labels = [[rng.choice(["ship", "car", None]) for _ in boxes] for boxes in pred]
    truth_labels = [[rng.choice(["ship", "car"]) for _ in boxes] for boxes in truth]
    for labelled in (False, True):
        tps = match_counts_cells(pred, truth, (0.25, 0.5), pred_labels if labelled else None,
                                 truth_labels if labelled else None)
        competing = 0
        for i in range(len(pred)):
            for column, threshold in enumerate((0.25, 0.5)):
                can = [[iou(p, t) >= threshold and (not labelled or pred_labels[i][a] == truth_labels[i][b])
                        for b, t in enumerate(truth[i])] for a, p in enumerate(pred[i])]
                assert tps[i, column] == _most_pairs(can), (i, threshold, labelled)
                competing += sum(map(sum, can)) > tps[i, column]
        assert competing > 20  # the brute force did check competing pairs


def test_norm1000_coordinates_are_rescaled_not_guessed():
    truth = {"width": 200, "height": 100, "category": "ship", "boxes": [[20, 10, 60, 50]]}
    units, _ = evaluate("refer_single", truth, "<|box_start|>(100,100),(300,500)<|box_end|>", coords="norm1000")
    assert units["iou50"] == (1, 0, 0)
    units, _ = evaluate("refer_single", truth, "<|box_start|>(100,100),(300,500)<|box_end|>", coords="pixel")
    assert units["iou50"] == (0, 1, 1)


@pytest.mark.parametrize("answer", ["There are three instances. [10, 10, 50, 40]", "three ships: (10,10),(50,40)",
                                    "<box>[[50, 40, 10, 10]]</box> 3", "Count: 3 {< 10 >< 10 >< 50 >< 40 >}"])
def test_tolerant_formats(answer):
    truth = {"width": 100, "height": 100, "count": 3, "boxes": [[10, 10, 50, 40]]}
    units, parsed = evaluate("count", truth, answer)
    assert parsed and units["only_count"] == (1, 0, 0) and units["instance_iou50"][0] == 1


def test_missing_and_duplicate_predictions(test_files, tmp_path):
    recs = list(iter_jsonl(test_files["classify"]))
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [{"id": r["id"], "response": r["messages"][1]["content"]} for r in recs[1:]])
    result = score_cell("classify", test_files["classify"], path)
    assert result["missing_predictions"] == 1 and result["parse_failures"] == 1
    assert result["metrics"]["category"]["n_samples"] == len(recs)
    write_jsonl(path, [{"id": recs[0]["id"], "response": "a"}, {"id": recs[0]["id"], "response": "b"}])
    with pytest.raises(InputError, match="duplicated id"):
        score_cell("classify", test_files["classify"], path)


def test_truncated_prediction_line_is_an_error(test_files, tmp_path):
    path = tmp_path / "p.jsonl"
    first, second = [r["id"] for r in iter_jsonl(test_files["classify"])][:2]
    path.write_bytes(b'{"id": "%s", "response": "x"}\n{"id": "%s", "resp' % (first.encode(), second.encode()))
    with pytest.raises(InputError, match="line 2"):
        score_cell("classify", test_files["classify"], path)


def test_bootstrap_is_seeded_and_brackets_the_value():
    units = [(1, 0, 0)] * 70 + [(0, 0, 1)] * 30
    low, high = bootstrap_eq3(units, seed=1)
    assert (low, high) == bootstrap_eq3(units, seed=1)
    assert low < 70 < high and high - low < 25


def test_score_file_has_counts_and_intervals(test_files, tmp_path):
    preds = predict(test_files["count"], tmp_path, lambda r: "There are 2 instances.")
    result = score_cell("count", test_files["count"], preds, model="m", seed=3, details_path=tmp_path / "d.jsonl")
    for metric in CELL_METRICS["count"]:
        m = result["metrics"][metric]
        assert {"value", "ci95", "n_samples", "tp", "fp", "fn"} <= set(m)
    assert orjson.loads((tmp_path / "d.jsonl").read_bytes().splitlines()[0])["units"]


# ---- answers as models give them (issue: order-free relations, answer shapes) ----

RELATION_TRUTH = {"width": W, "height": H, "instances": [{"category": "ship", "box": GT[0], "position": "x"},
                                                          {"category": "harbor", "box": GT[1], "position": "y"}],
                  "relations": [{"subject": "ship", "object": "harbor", "distance": "far from",
                                 "direction": "to the upper left of"}]}


@pytest.mark.parametrize("statement", ["The ship is far from the harbor, to the upper left of it.",
                                       "The harbor is far from the ship, to the lower right of it."])
def test_a_relation_and_its_converse_are_the_same_fact(statement):
    units, _ = evaluate("grounding_multi", RELATION_TRUTH, "{<294><358><329><427>} " + statement)
    assert units["abstract_position"] == (1, 0, 0)


def test_a_converse_with_the_direction_not_inverted_is_wrong():
    units, _ = evaluate("grounding_multi", RELATION_TRUTH,
                        "{<1><1><5><5>} The harbor is far from the ship, to the upper left of it.")
    assert units["abstract_position"] == (0, 1, 1)


def test_relations_stated_on_an_image_without_any_are_false_positives():
    truth = {**RELATION_TRUTH, "relations": []}
    units, _ = evaluate("grounding_multi", truth, "{<1><1><5><5>} The ship is near the tank, above it.")
    assert units["abstract_position"] == (0, 1, 0)
    assert "abstract_position" not in evaluate("grounding_multi", truth, "{<1><1><5><5>}")[0]


GROUND_TRUTH = {"width": W, "height": H, "relations": [],
                "instances": [{"category": "ship", "box": GT[0], "position": "x"},
                              {"category": "car", "box": GT[1], "position": "y"},
                              {"category": "ship", "box": GT[2], "position": "z"}]}


@pytest.mark.parametrize("family,answer,coords", [
    ("ours", "There are 2 ships: one in the bottom center portion {<294><358><329><427>}, one in the middle left "
             "portion {<27><199><78><261>}. There is a car in the bottom left portion {<61><448><122><503>}.", "pixel"),
    ("Qwen2.5-VL JSON", '```json\n[{"bbox_2d": [294, 358, 329, 427], "label": "ship"}, {"bbox_2d": [61, 448, 122, '
                        '503], "label": "car"}, {"bbox_2d": [27, 199, 78, 261], "label": "ship"}]\n```', "pixel"),
    ("Qwen2-VL", "<|object_ref_start|>ship<|object_ref_end|><|box_start|>(574,699),(643,834)<|box_end|>"
                 "<|object_ref_start|>car<|object_ref_end|><|box_start|>(119,875),(238,982)<|box_end|>"
                 "<|object_ref_start|>ship<|object_ref_end|><|box_start|>(53,389),(152,510)<|box_end|>", "norm1000"),
    ("InternVL", "<ref>ship</ref><box>[[574, 699, 643, 834]]</box>, <ref>car</ref><box>[[119, 875, 238, 982]]</box>"
                 " and <ref>ship</ref><box>[[53, 389, 152, 510]]</box>", "norm1000"),
    ("plain, label first", "ship [294, 358, 329, 427], car [61, 448, 122, 503], ship [27, 199, 78, 261]", "pixel"),
    ("plain, label after", "[294, 358, 329, 427] a ship; [61, 448, 122, 503] a car; [27, 199, 78, 261] ship", "pixel"),
])
def test_box_labels_follow_each_familys_answer_structure(family, answer, coords):
    """Before, each JSON box took the previous object's label: perfect answers scored 44-51."""
    units, parsed = evaluate("grounding_multi", GROUND_TRUTH, answer, coords)
    assert parsed and units["box_category_iou50"] == (3, 0, 0), family


COUNT_TRUTH = {"width": W, "height": H, "category": "ship", "count": 4, "boxes": GT}


@pytest.mark.parametrize("answer,count", [
    ("I first notice 1 ship near the top. Looking again, more appear. Final answer: There are 4 instances.", 4),
    ("Let me count: 1 ship on the left, 2 ships in the middle... In total there are 4 ships.", 4),
    ("There are 4 ships and 1 harbor in the image.", 4),
    ("Answer: 4", 4),
    ("There are 4 instances. {<291><355><320><428>}{<205><195><226><293>}{<12><203><78><263>}{<49><453><120><501>}", 4),
])
def test_the_stated_final_count_is_scored(answer, count):
    from sarchat_bench.evaluation import parsing

    assert parsing.find_count(answer, "ship") == count
    assert evaluate("count", COUNT_TRUTH, answer)[0]["only_count"] == (1, 0, 0)


IDENTIFY_TRUTH = {"width": W, "height": H, "category": "ship", "position": "top left", "size": "small",
                  "shape": "wide", "box": GT[0]}


@pytest.mark.parametrize("answer,right", [
    ("At first it looks like a car, but it is a ship in the top left.", True),
    ("It is not a tank; it is a ship.", True),
    ("It is a ship, not a tank.", True),
    ("Reasoning: the bright shape could be a car or a tank. Final answer: ship", True),
    ("This is a small ship located in the top left portion of the image. It appears to be wide in shape.", True),
    ("It is not a ship.", False),
])
def test_identification_reads_the_answer_not_the_reasoning(answer, right):
    assert (evaluate("identify_single", IDENTIFY_TRUTH, answer)[0]["category"] == (1, 0, 0)) is right


CLASSIFY_TRUTH = {"width": W, "height": H, "categories": ["harbor", "ship"]}


@pytest.mark.parametrize("answer,right", [
    ("The candidates are ship, aircraft, car, tank, bridge and harbor. The image contains ship and harbor.", True),
    ("Options: ship, aircraft, car, tank, bridge, harbor. Answer: ship and harbor", True),
    ("It shows ships and a harbor, not a tank.", True),
    ("The image contains ship and harbor.", True),
    ("The candidates are ship, aircraft, car, tank, bridge and harbor.", False),
])
def test_classification_reads_the_answer_not_the_candidates(answer, right):
    assert (evaluate("classify", CLASSIFY_TRUTH, answer)[0]["category"] == (1, 0, 0)) is right


# ---- bad prediction files stop scoring, loudly ----

def write_lines(path, lines):
    path.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines))
    return path


@pytest.mark.parametrize("make,message", [
    (lambda ids: [{"id": i, "prediction": "x"} for i in ids],
     r"line 1 \(id .*\): no 'response' \(keys: id, prediction\)"),
    (lambda ids: [{"id": i, "response": 3} for i in ids], r"line 1 \(id .*\): response is int, not text"),
    (lambda ids: [{"id": i, "response": None} for i in ids], r"response is NoneType, not text"),
    (lambda ids: [{"id": i, "response": ["a"]} for i in ids], r"response is list, not text"),
    (lambda ids: [], r"no predictions: the file is empty"),
    (lambda ids: [{"id": "count-test-1-ship", "response": "x"}],
     r"line 1 \(id count-test-1-ship\): id is not in the cell's test file \(is this the predictions file of"),
])
def test_a_bad_predictions_file_is_a_one_line_error(test_files, tmp_path, make, message):
    ids = [r["id"] for r in iter_jsonl(test_files["refer_single"])]
    path = write_lines(tmp_path / "bad.jsonl", make(ids))
    with pytest.raises(InputError, match=message) as err:
        score_cell("refer_single", test_files["refer_single"], path)
    assert err.value.path == str(path) and "\n" not in str(err.value)


def test_non_text_responses_can_be_counted_as_parse_failures(test_files, tmp_path):
    records = list(iter_jsonl(test_files["refer_single"]))
    lines = [{"id": r["id"], "response": r["messages"][1]["content"]} for r in records]
    lines[0]["response"] = 7
    result = score_cell("refer_single", test_files["refer_single"], write_lines(tmp_path / "p.jsonl", lines),
                        bad_responses="failure")
    assert result["responses_not_text"] == 1 and result["parse_failures"] == 1


# ---- each family's own box convention, for zero-shot rows ----

@pytest.mark.parametrize("coords,scale", [
    ("pixel", lambda x, y, w, h: (x, y)),
    ("norm1000", lambda x, y, w, h: (round(x * 1000 / w), round(y * 1000 / h))),
    # Qwen2.5-VL answers in pixels of its processor's resized input (multiples of 28).
    ("resized:28:3136:12845056", lambda x, y, w, h: (round(x * 588 / w), round(y * 392 / h))),
    ("resized:28:3136:12544", lambda x, y, w, h: (round(x * 112 / w), round(y * 84 / h))),
])
def test_boxes_in_each_convention_on_a_non_square_image(coords, scale):
    w, h = 600, 400  # Qwen2.5-VL resizes it to 588 x 392, or to 112 x 84 under MAX_PIXELS=12544
    truth = {"width": w, "height": h, "category": "ship", "boxes": [[60, 40, 300, 200], [420, 280, 580, 380]]}
    parts = []
    for x1, y1, x2, y2 in truth["boxes"]:
        (a, b), (c, d) = scale(x1, y1, w, h), scale(x2, y2, w, h)
        parts.append(f"[{a}, {b}, {c}, {d}]")
    units, parsed = evaluate("refer_multi", truth, "Here: " + " and ".join(parts), coords)
    assert parsed and units["iou50"] == (2, 0, 0), coords
    # Read in the wrong convention, the same answer misses.
    wrong = "norm1000" if coords != "norm1000" else "pixel"
    assert evaluate("refer_multi", truth, "Here: " + " and ".join(parts), wrong)[0]["iou50"][0] < 2


def test_intervals_of_the_average_and_per_category(test_files, tmp_path):
    """The Eq. 4 average's joint bootstrap interval brackets the average and collapses when
    every answer is right; each category's interval brackets its value, over its samples."""
    from sarchat_bench.paper.table3 import average, column_values, task_samples, task_scores
    from sarchat_bench.report.tables import average_interval

    def score_all(answer, folder):
        folder.mkdir()
        cells, paths = {}, {}
        for cell, test in test_files.items():
            paths[cell] = folder / f"{cell}.json"
            cells[cell] = score_cell(cell, test, predict(test, folder, answer), model="m",
                                     details_path=folder / f"{cell}.details.jsonl", allow_empty_answers=True)
            paths[cell].write_bytes(orjson.dumps(cells[cell]))
        return cells, paths

    half = score_all(lambda r: r["messages"][1]["content"] if zlib.crc32(r["id"].encode()) % 2 else "",
                     tmp_path / "half")
    mean = average(task_scores(column_values(half[0])), task_samples(half[0]))
    low, high = average_interval("m", *half)
    assert low < mean < high and high - low < 40 and (low, high) == average_interval("m", *half)
    assert average_interval("m", *score_all(lambda r: r["messages"][1]["content"], tmp_path / "all")) == (100, 100)
    for cell, score in half[0].items():
        for metric, by_category in score["per_category_ci95"].items():
            assert sum(score["per_category_samples"][metric].values()) <= score["metrics"][metric]["n_samples"]
            for category, (lo, hi) in by_category.items():
                value = score["per_category"][metric][category]
                assert value is None or lo <= value <= hi, (cell, metric, category)
