"""The no-model baseline (decision D14) and the answer browser's choice and order of samples."""

import logging

import orjson
import pytest
from PIL import Image
from sarchat_bench.evaluation.baselines import majority_answer, majority_predictions
from sarchat_bench.evaluation.scoring import score_cell
from sarchat_bench.report import answers as answer_browser
from sarchat_bench.report.answers import cell_page, pick, truth_boxes, verdict


def record(rid, cell, answer, width=100, height=200, **truth):
    return {"id": rid, "cell": cell, "task": cell.split("_")[0], "messages": [{"role": "user", "content": "<image>q"},
                                                  {"role": "assistant", "content": answer}],
            "images": ["x.jpg"], "truth": orjson.dumps({"width": width, "height": height, **truth}).decode()}


def write(path, records):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_the_most_frequent_answer_counts_answers_that_differ_only_in_their_boxes_as_one(tmp_path):
    train = write(tmp_path / "train.jsonl", [
        record("a", "count", "There is 1 instance. {<10><20><30><60>}"),
        record("b", "count", "There is 1 instance. {<50><100><70><140>}", width=200, height=400),
        record("c", "count", "There are 2 instances. {<0><0><10><10>}{<0><0><10><10>}"),
        record("d", "classify", "The scene includes ship."),
    ])
    text, median = majority_answer(train, "count")
    assert text == "There is 1 instance. \x00"
    # As fractions: (.1,.1,.3,.3), (.25,.25,.35,.35) and (0,0,.1,.05) twice; medians per coordinate.
    assert median == pytest.approx((0.05, 0.05, 0.2, 0.175))
    test = write(tmp_path / "test.jsonl", [record("t1", "count", "There are 3 instances. ...", width=1000, height=600)])
    expected = [{"id": "t1", "response": "There is 1 instance. {<50><30><200><105>}"}]
    assert majority_predictions(train, test, "count") == expected
    # No samples of the cell: its task's (refer_single from refer_multi), else nothing.
    refer = write(tmp_path / "refer.jsonl", [record("r", "refer_multi", "{<10><20><30><60>} (top left)")])
    assert majority_answer(refer, "refer_single") == ("\x00 (top left)", pytest.approx((0.1, 0.1, 0.3, 0.3)))
    assert majority_answer(train, "describe")[0] == ""


def test_the_baseline_scores_the_majority_share_of_a_classification_file(tmp_path):
    train = write(tmp_path / "train.jsonl", [record(str(i), "classify", f"The scene includes {c}.", categories=[c])
                                             for i, c in enumerate(["ship", "ship", "tank"])])
    test = write(tmp_path / "test.jsonl", [record(f"t{i}", "classify", f"The scene includes {c}.", categories=[c])
                                           for i, c in enumerate(["ship", "car", "ship", "ship"])])
    predictions = write(tmp_path / "pred.jsonl", majority_predictions(train, test, "classify"))
    assert score_cell("classify", test, predictions)["metrics"]["category"]["value"] == 75.0


def test_answer_browser_shows_failures_first_in_a_fixed_order():
    details = {"p": {"parsed": False, "units": {"iou50": [0, 0, 1]}},
               "w": {"parsed": True, "units": {"iou50": [0, 1, 1]}},
               "h": {"parsed": True, "units": {"iou50": [1, 0, 0], "iou25": [0, 1, 0]}},
               "r": {"parsed": True, "units": {"iou50": [1, 0, 0]}}}
    groups = {i: verdict(d)[0] for i, d in details.items()}
    assert groups == {"p": "unparsed", "w": "wrong", "h": "partly right", "r": "right"}
    assert pick(["r", "h", "w", "p"], groups, 3) == ["p", "w", "h"]
    many = {f"id{i}": "right" for i in range(50)}
    assert pick(list(many), many, 10) == pick(sorted(many, reverse=True), many, 10) != sorted(many)[:10]
    assert truth_boxes({"instances": [{"box": [1, 2, 3, 4]}], "width": 9}) == [[1, 2, 3, 4]]
    assert truth_boxes({"boxes": [[1, 2, 3, 4]]}) == [[1, 2, 3, 4]] == truth_boxes({"box": [1, 2, 3, 4]})


def test_an_answer_page_too_big_for_the_report_says_so(tmp_path, caplog, monkeypatch):
    """Chromium opens no data: URL over 2 MiB, and the report shows each page through one: a page
    past REPORT_PAGE_LIMIT is still written, with a warning naming it and what makes it fit."""
    Image.new("RGB", (100, 200), (40, 40, 40)).save(tmp_path / "x.jpg")
    records = [{**record(f"r{i}", "refer_single", "{<1><2><30><40>}", boxes=[[1, 2, 30, 40]]),
                "images": ["x.jpg"]} for i in range(3)]  # relative to the image root, as the build writes them
    test = write(tmp_path / "refer_single.jsonl", records)
    predictions = write(tmp_path / "pred.jsonl", [{"id": f"r{i}", "response": "{<5><2><34><40>}"} for i in range(3)])
    score_path, details = tmp_path / "s.json", tmp_path / "s.details.jsonl"
    score_path.write_bytes(orjson.dumps(score_cell("refer_single", test, predictions, details_path=details)))
    paths = {"test": test, "predictions": predictions, "details": details, "score": score_path}
    with caplog.at_level(logging.WARNING):
        page = cell_page(tmp_path / "page.html", "m", "refer_single", paths, image_root=tmp_path)
    assert page.read_text().count("<img ") == 3 and not caplog.records
    monkeypatch.setattr(answer_browser, "REPORT_PAGE_LIMIT", page.stat().st_size - 1)
    with caplog.at_level(logging.WARNING):
        cell_page(tmp_path / "page.html", "m", "refer_single", paths, image_root=tmp_path)
    (warning,) = caplog.records
    assert str(tmp_path / "page.html") in warning.message and "report.answers_per_cell" in warning.message
