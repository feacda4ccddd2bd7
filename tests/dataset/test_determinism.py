"""Same inputs, config and seed give byte-identical files; another seed changes templates only."""

import orjson
import pytest
from sarchat_bench.dataset.build import build_test_cell, build_train_mix
from sarchat_bench.paper.tasks import CELLS, TASKS


def build_all(tables, out, seed):
    build_train_mix([tables["train"]], out / "train.jsonl", seed=seed)
    for cell in CELLS:
        build_test_cell(cell, [tables["test"]], out / "test" / f"{cell}.jsonl", seed=seed)
    return sorted(out.rglob("*.jsonl"))


def strip_text(path):
    out = []
    for line in path.read_bytes().splitlines():
        rec = orjson.loads(line)
        out.append((rec["id"], rec["cell"], rec["images"], rec["truth"]))
    return out


@pytest.fixture(scope="module")
def builds(demo_tables, tmp_path_factory):
    root = tmp_path_factory.mktemp("builds")
    return {name: build_all(demo_tables, root / name, seed) for name, seed in (("a", 1), ("b", 1), ("c", 2))}


def test_same_seed_is_byte_identical(builds):
    assert [p.name for p in builds["a"]] == [p.name for p in builds["b"]]
    for a, b in zip(builds["a"], builds["b"], strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_other_seed_changes_template_choice_only(builds):
    changed = 0
    for a, c in zip(builds["a"], builds["c"], strict=True):
        assert strip_text(a) == strip_text(c), a.name
        changed += a.read_bytes() != c.read_bytes()
    assert changed >= len(builds["a"]) - 2  # nearly every file uses other templates


@pytest.mark.parametrize("workers", [2, 3])
def test_the_mix_does_not_depend_on_its_writers(demo_tables, tmp_path, workers):
    """Parts of 4 images: many parts per task, shared by several processes in any order."""
    serial, parallel = tmp_path / "serial.jsonl", tmp_path / "parallel.jsonl"
    summaries = build_train_mix([demo_tables["train"]], serial, seed=1, part_images=4)
    assert build_train_mix([demo_tables["train"]], parallel, seed=1, part_images=4, workers=workers) == [
        {**s, "file": str(parallel)} for s in summaries]
    assert serial.read_bytes() == parallel.read_bytes()
    records = [orjson.loads(line) for line in serial.read_bytes().splitlines()]
    # Task after task, each in image order, and the summaries count them.
    tasks = [r["task"] for r in records]
    assert tasks == sorted(tasks, key=TASKS.index)
    assert {s["task"]: s["records"] for s in summaries} == {t: tasks.count(t) for t in TASKS}


def test_the_mix_of_some_tasks_holds_those_tasks(demo_tables, tmp_path):
    summaries = build_train_mix([demo_tables["train"]], tmp_path / "m.jsonl", seed=1, tasks=["refer", "count"])
    assert [s["task"] for s in summaries] == ["refer", "count"]
    assert {orjson.loads(line)["task"] for line in (tmp_path / "m.jsonl").read_bytes().splitlines()} == {
        "refer", "count"}
    with pytest.raises(ValueError, match="unknown task"):
        build_train_mix([demo_tables["train"]], tmp_path / "x.jsonl", seed=1, tasks=["caption"])


def test_cells_built_together_equal_cells_built_alone(demo_tables, tmp_path):
    from sarchat_bench.dataset.build import build_test_cells

    build_test_cells({"refer_single": tmp_path / "a.jsonl", "refer_multi": tmp_path / "b.jsonl"},
                     [demo_tables["test"]], seed=4)
    build_test_cell("refer_multi", [demo_tables["test"]], tmp_path / "c.jsonl", seed=4)
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "c.jsonl").read_bytes()
