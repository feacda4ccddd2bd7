"""Same inputs, config and seed give byte-identical files; another seed changes templates only."""

import orjson
import pytest

from sarchat_bench.build import build_test_cell, build_train_task
from sarchat_bench.tasks import CELLS, TASKS


def build_all(tables, out, seed):
    for task in TASKS:
        build_train_task(task, [tables["train"]], out / "train" / f"{task}.jsonl", seed=seed)
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
    for a, b in zip(builds["a"], builds["b"]):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_other_seed_changes_template_choice_only(builds):
    changed = 0
    for a, c in zip(builds["a"], builds["c"]):
        assert strip_text(a) == strip_text(c), a.name
        changed += a.read_bytes() != c.read_bytes()
    assert changed >= len(builds["a"]) - 2  # nearly every file uses other templates


def test_concatenate_keeps_order_and_bytes(tmp_path, monkeypatch):
    import os

    from sarchat_bench import build

    parts = []
    for i in range(3):
        parts.append(tmp_path / f"p{i}.jsonl")
        parts[-1].write_bytes(b"".join(b'{"i": %d, "k": %d}\n' % (i, k) for k in range(1000 * (i + 1))))
    expected = b"".join(p.read_bytes() for p in parts)
    build.concatenate(parts, tmp_path / "kernel.jsonl")

    def no_copy_file_range(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", no_copy_file_range)
    build.concatenate(parts, tmp_path / "fallback.jsonl")
    assert (tmp_path / "kernel.jsonl").read_bytes() == expected == (tmp_path / "fallback.jsonl").read_bytes()


@pytest.mark.parametrize("task", ["identify", "count"])
def test_shards_in_order_cover_the_unsharded_records(demo_tables, tmp_path, task):
    whole = tmp_path / "whole.jsonl"
    build_train_task(task, [demo_tables["train"]], whole, seed=1)
    shards = []
    for i in (1, 2, 3):
        shards.append(tmp_path / f"part{i}.jsonl")
        build_train_task(task, [demo_tables["train"]], shards[-1], seed=1, shard=(i, 3))
    ids = [orjson.loads(line)["id"] for line in whole.read_bytes().splitlines()]
    shard_ids = [orjson.loads(line)["id"] for p in shards for line in p.read_bytes().splitlines()]
    assert shard_ids == ids and all(p.stat().st_size > 0 for p in shards)


def test_bad_shard_is_refused(demo_tables, tmp_path):
    with pytest.raises(ValueError, match="shard 3 of 2"):
        build_train_task("count", [demo_tables["train"]], tmp_path / "x.jsonl", seed=1, shard=(3, 2))


def test_cells_built_together_equal_cells_built_alone(demo_tables, tmp_path):
    from sarchat_bench.build import build_test_cells

    build_test_cells({"refer_single": tmp_path / "a.jsonl", "refer_multi": tmp_path / "b.jsonl"},
                     [demo_tables["test"]], seed=4)
    build_test_cell("refer_multi", [demo_tables["test"]], tmp_path / "c.jsonl", seed=4)
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "c.jsonl").read_bytes()
