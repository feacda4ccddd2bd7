"""The lmms-eval hooks give the scorer's numbers: what lmms-eval does with them (process_results per
record, each metric's list to its aggregation) equals score_cell's score file for reference,
empty and mixed answers in every cell; the task folder `lmms-tasks` writes. lmms-eval itself runs
them in tests/e2e/test_lmms_eval.py."""

import importlib.util
import json
import sys

import pytest
import yaml
from sarchat_bench.core.io import iter_jsonl, write_jsonl
from sarchat_bench.dataset.build import build_test_cell
from sarchat_bench.evaluation import lmms_task
from sarchat_bench.evaluation.scoring import score_cell
from sarchat_bench.paper.records import truth_of
from sarchat_bench.paper.table3 import CELL_METRICS
from sarchat_bench.paper.tasks import CELLS
from support import SCRIPTS
from support.commands import run_cli


@pytest.fixture(scope="module")
def test_files(demo_tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("lmms_cells")
    for cell in CELLS:
        build_test_cell(cell, [demo_tables["test"]], out / f"{cell}.jsonl", seed=0)
    assert all((out / f"{cell}.jsonl").stat().st_size for cell in CELLS)
    return {cell: out / f"{cell}.jsonl" for cell in CELLS}


def reference(record):
    return record["messages"][1]["content"]


ANSWERS = {  # every third answer empty, every other one cut short, the rest the reference
    "reference": lambda i, r: reference(r),
    "empty": lambda i, r: "",
    "mixed": lambda i, r: "" if i % 3 == 2 else reference(r) if i % 2 else reference(r)[: len(reference(r)) // 2],
}


@pytest.mark.parametrize("answers", list(ANSWERS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_the_hooks_give_the_scorers_numbers(cell, answers, test_files, tmp_path):
    records = list(iter_jsonl(test_files[cell]))
    responses = [ANSWERS[answers](i, r) for i, r in enumerate(records)]
    per_metric: dict[str, list] = {}
    for record, response in zip(records, responses, strict=True):
        for metric, value in lmms_task.process_results(record, [response]).items():
            per_metric.setdefault(metric, []).append(value)
    predictions = tmp_path / "predictions.jsonl"
    write_jsonl(predictions, [{"id": r["id"], "response": a} for r, a in zip(records, responses, strict=True)])
    scored = score_cell(cell, test_files[cell], predictions, allow_empty_answers=True)
    for metric in CELL_METRICS[cell]:
        want = scored["metrics"][metric]["value"]
        got = lmms_task.eq3(per_metric.get(metric, []))
        assert (got != got) if want is None else got == want, (metric, got, want)  # None: NaN in lmms-eval
    assert lmms_task.total(per_metric["parse_failures"]) == scored["parse_failures"]
    if answers == "mixed":
        assert 0 < scored["parse_failures"] < len(records)


def test_the_question_and_its_image_as_lmms_eval_sends_them(test_files, demo_root, tmp_path, monkeypatch):
    record = next(iter_jsonl(test_files["refer_multi"]))
    monkeypatch.setattr(lmms_task, "IMAGE_ROOT", str(demo_root))  # as the task folder's utils.py sets it
    (turn,) = lmms_task.doc_to_messages(record)
    assert [part["type"] for part in turn["content"]] == ["image", "text"]
    assert turn["content"][1]["text"] == lmms_task.doc_to_text(record) == reference_question(record)
    truth = truth_of(record)
    assert turn["content"][0]["url"].size == (truth["width"], truth["height"])
    # The record names its image relative to the dataset root: resolved against the task's root,
    # and a record built before that (an absolute path) as it is.
    relative = record
    assert record["images"][0].startswith("JPEGImages/")
    absolute = {**record, "images": [str(demo_root / record["images"][0])]}
    monkeypatch.setattr(lmms_task, "IMAGE_ROOT", str(tmp_path))
    assert lmms_task.doc_to_visual(absolute)[0].size == (truth["width"], truth["height"])
    monkeypatch.setattr(lmms_task, "IMAGE_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        lmms_task.doc_to_visual(relative)


def reference_question(record):
    return record["messages"][0]["content"].replace("<image>", "").strip()


def test_the_task_folder(test_files, tmp_path, monkeypatch):
    out = tmp_path / "tasks"
    image_root = tmp_path / "root"
    result = run_cli("lmms-tasks", "--out", out, "--limit", "2", "--image-root", image_root,
                     *[f"{cell}={path}" for cell, path in test_files.items()])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["utils.py", "_sarchat_template_yaml", "sarchat.yaml", "data", *(f"sarchat_{c}.yaml" for c in CELLS)])
    assert "!function utils.process_results" in (out / "_sarchat_template_yaml").read_text()
    assert yaml.safe_load((out / "sarchat.yaml").read_text()) == {"group": "sarchat",
                                                                  "task": [f"sarchat_{c}" for c in CELLS]}
    for cell in CELLS:
        task = yaml.load((out / f"sarchat_{cell}.yaml").read_text(), Loader=FunctionTagLoader)
        assert [m["metric"] for m in task["metric_list"]] == [*CELL_METRICS[cell], "parse_failures"]
        data = task["dataset_kwargs"]["data_files"]["test"]
        assert data == str(out / "data" / f"{cell}.jsonl")
        assert [json.loads(line) for line in open(data)] == list(iter_jsonl(test_files[cell]))[:2]
    # The generated utils.py: this checkout's hooks, with the folder's image root.
    for name, value in (("IMAGE_ROOT", None), ("COORDS", "pixel")):  # restored after the test
        monkeypatch.setattr(lmms_task, name, value)
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("sarchat_lmms_utils", out / "utils.py")
    spec.loader.exec_module(utils := importlib.util.module_from_spec(spec))
    assert utils.process_results is lmms_task.process_results and lmms_task.IMAGE_ROOT == str(image_root.resolve())
    assert sys.path[0] == str(SCRIPTS)
    bad = run_cli("lmms-tasks", "--out", tmp_path / "bad", "nope=x.jsonl")
    assert bad.returncode != 0 and "unknown cell(s) ['nope']" in bad.stderr


class FunctionTagLoader(yaml.SafeLoader):
    """lmms-eval's `!function module.name` tags, read as text."""


FunctionTagLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")
