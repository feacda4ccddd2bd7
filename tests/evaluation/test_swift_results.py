"""`swift infer` result files scored as they are: a real `swift infer --val_dataset <test file>
--result_path F` run of a tiny model on three test records, its lines (which have no id) matched
to the test file by order and checked by question and image."""

import os
import subprocess
import sys

import orjson
import pytest
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import iter_jsonl, write_jsonl
from sarchat_bench.dataset.build import build_test_cell
from sarchat_bench.evaluation.scoring import score_cell
from sarchat_bench.evaluation.swift_results import same_image

CELL = "refer_single"


@pytest.fixture(scope="module")
def swift_result(tiny, demo_tables, demo_root, tmp_path_factory):
    """(test file of three records, the result file `swift infer` wrote for it, run as
    docs/dataset.md says: the records' images below ROOT_IMAGE_DIR)."""
    work = tmp_path_factory.mktemp("swift_infer")
    build_test_cell(CELL, [demo_tables["test"]], work / "cell.jsonl", seed=0)
    test = work / f"{CELL}.jsonl"
    write_jsonl(test, list(iter_jsonl(work / "cell.jsonl"))[:3])
    result = work / "result.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELSCOPE_CACHE": str(work / "ms"), "ROOT_IMAGE_DIR": str(demo_root)}
    run = subprocess.run([sys.executable, "-m", "swift.cli.infer", "--model", str(tiny["llava1_5_hf"]),
                          "--model_type", "llava1_5_hf", "--template", "llava1_5_hf", "--infer_backend", "transformers",
                          "--torch_dtype", "float32", "--max_new_tokens", "16", "--temperature", "0",
                          "--val_dataset", str(test), "--result_path", str(result)],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return test, result


def lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def with_ids(test, responses, path):
    write_jsonl(path, [{"id": r["id"], "response": a} for r, a in zip(iter_jsonl(test), responses, strict=True)])
    return path


def scores_alike(a, b):
    return {k: v for k, v in a.items() if k != "model"} == {k: v for k, v in b.items() if k != "model"}


@pytest.mark.swift
def test_a_swift_infer_result_file_scores_as_the_same_answers_with_ids(swift_result, tmp_path):
    test, result = swift_result
    written, records = lines(result), list(iter_jsonl(test))
    # What ms-swift 4.6 writes: no id; the response, the reference as `labels`, the messages
    # with the response as the assistant's turn, the images as {bytes, path}.
    assert len(written) == 3 and not any("id" in w for w in written)
    for w, r in zip(written, records, strict=True):
        assert isinstance(w["response"], str) and w["labels"] == r["messages"][1]["content"]
        assert w["messages"] == [r["messages"][0], {"role": "assistant", "content": w["response"]}]
        assert [image["path"] for image in w["images"]] == r["images"]
    as_is = score_cell(CELL, test, result, accept_swift_results=True, allow_empty_answers=True)
    same = with_ids(test, [w["response"] for w in written], tmp_path / "ids.jsonl")
    assert scores_alike(as_is, score_cell(CELL, test, same, allow_empty_answers=True))
    assert as_is["n_samples"] == 3
    # The random model's answers score 0; with the reference (`labels`) on lines 1 and 3, as ms-swift
    # wrote them otherwise, the two files still agree, now on 2 of 3.
    for k in (0, 2):
        written[k]["response"] = written[k]["labels"]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(orjson.dumps(w) + b"\n" for w in written))
    scored = score_cell(CELL, test, mixed, accept_swift_results=True)
    assert scores_alike(scored, score_cell(CELL, test, with_ids(test, [w["response"] for w in written],
                                                                tmp_path / "ids.jsonl")))
    assert scored["metrics"]["iou50"]["value"] == 66.67 and scored["metrics"]["first_box_acc50"]["value"] == 66.67


@pytest.mark.swift
def test_a_result_file_that_does_not_fit_its_test_file_is_one_clear_error(swift_result, tmp_path):
    test, result = swift_result
    data = result.read_bytes()
    records = list(iter_jsonl(test))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(data + data)  # `swift infer` run twice: it appends
    with pytest.raises(InputError, match=r"with 6 lines for the 3 records of .*appends to --result_path"):
        score_cell(CELL, test, bad, accept_swift_results=True)
    bad.write_bytes(b"".join(data.splitlines(True)[:2]))
    with pytest.raises(InputError, match=r"with 2 lines for the 3 records .*stopped early"):
        score_cell(CELL, test, bad, accept_swift_results=True)
    first, second, third = data.splitlines(True)
    bad.write_bytes(second + first + third)  # another order
    with pytest.raises(InputError, match=rf"record line 1 \(test record {records[0]['id']}\): its (question|images)"):
        score_cell(CELL, test, bad, accept_swift_results=True)
    moved = orjson.loads(third)
    moved["images"][0]["path"] = moved["images"][0]["path"].replace(".jpg", "_other.jpg")
    bad.write_bytes(first + second + orjson.dumps(moved) + b"\n")
    with pytest.raises(InputError, match=rf"record line 3 \(test record {records[2]['id']}\): its images"):
        score_cell(CELL, test, bad, accept_swift_results=True)
    # Only a model of mode predictions drops such files: for the others, the line without an id.
    with pytest.raises(InputError, match=r"record line 1: missing string 'id' .*looks like a `swift infer` result"):
        score_cell(CELL, test, result)


def test_an_image_is_the_same_by_its_path_from_the_dataset_root():
    assert same_image("/data/SARDet_100K/JPEGImages/test/x.jpg", "JPEGImages/test/x.jpg")
    assert same_image("JPEGImages/test/x.jpg", "/data/SARDet_100K/JPEGImages/test/x.jpg")
    assert not same_image("/data/SARDet_100K/JPEGImages/test/x.jpg", "JPEGImages/train/x.jpg")
    assert not same_image("/data/a/x.jpg", "b/x.jpg") and not same_image(None, "x.jpg")
