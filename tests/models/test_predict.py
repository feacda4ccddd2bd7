"""Sharded, resumable inference: resume after a kill (only from answers made by the same model,
adapter, settings and records), out-of-memory halving, checked merges."""

import math
import os
import signal
import time
from collections import Counter

import orjson
import pytest
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import iter_jsonl
from sarchat_bench.models.predict import (
    image_key,
    merge_shards,
    read_partial,
    run_shard,
    shard_records,
    vllm_kwargs,
)
from support.commands import cli
from support.jobs import run_options, spec

MADE_FROM = {"spec": {"settings": {"max_new_tokens": 4}}, "adapter": "a1", "records": "r1"}


def echo(batch):
    return [f"answer for {r['id']}" for r in batch]


def partial_file(path, made_from, answers: dict, tail: bytes = b"") -> None:
    header = orjson.dumps({"made_from": made_from}, option=orjson.OPT_SORT_KEYS) + b"\n"
    path.write_bytes(header + b"".join(orjson.dumps({"id": i, "response": r}) + b"\n" for i, r in answers.items())
                     + tail)


def test_shards_cover_the_file_in_order(identify_cell):
    ids = [r["id"] for r in iter_jsonl(identify_cell)]
    parts = [shard_records(identify_cell, (i, 3)) for i in (1, 2, 3)]
    assert [r["id"] for p in parts for r in p] == ids


def test_resume_skips_done_records_and_repairs_a_torn_line(identify_cell, tmp_path):
    records = shard_records(identify_cell, (1, 1))
    partial = tmp_path / "w.partial.jsonl"
    partial_file(partial, MADE_FROM, {r["id"]: "earlier" for r in records[:5]},
                 tail=b'{"id": "' + records[5]["id"].encode() + b'", "resp')  # killed mid-write
    calls = []

    def predict(batch):
        calls.extend(r["id"] for r in batch)
        return echo(batch)

    summary = run_shard(records, predict, tmp_path / "out.jsonl", partial, batch_size=4, made_from=MADE_FROM)
    assert summary["predicted_now"] == len(records) - 5
    assert calls == [r["id"] for r in records[5:]]
    out = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [o["id"] for o in out] == [r["id"] for r in records]
    assert [o["response"] for o in out[:5]] == ["earlier"] * 5 and not partial.exists()


@pytest.mark.parametrize("changed", ["spec", "adapter", "records"])
def test_answers_made_from_anything_else_are_discarded(identify_cell, tmp_path, caplog, changed):
    """A shard killed mid-run, then rerun after a change to the model's settings, a retrained
    adapter or a regenerated test file: only new answers reach the output."""
    records = shard_records(identify_cell, (1, 1))
    partial = tmp_path / "w.partial.jsonl"
    partial_file(partial, MADE_FROM, {r["id"]: "stale" for r in records[:16]})
    other = {"spec": {"settings": {"max_new_tokens": 8}}, "adapter": "a2", "records": "r2"}
    now = {**MADE_FROM, changed: other[changed]}
    summary = run_shard(records, echo, tmp_path / "out.jsonl", partial, batch_size=4, made_from=now)
    assert summary["predicted_now"] == len(records)
    assert "stale" not in (tmp_path / "out.jsonl").read_text()
    assert f"discarding 16 earlier answers: made from other inputs or settings ({changed}" in caplog.text


def test_partial_file_without_manifest_is_discarded(identify_cell, tmp_path, caplog):
    records = shard_records(identify_cell, (1, 1))[:3]
    partial = tmp_path / "old.partial.jsonl"
    partial.write_bytes(b"".join(orjson.dumps({"id": r["id"], "response": "old"}) + b"\n" for r in records))
    run_shard(records, echo, tmp_path / "out.jsonl", partial, batch_size=4, made_from=MADE_FROM)
    assert "old" not in (tmp_path / "out.jsonl").read_text() and "it has no manifest" in caplog.text


def test_out_of_memory_halves_the_batch(identify_cell, tmp_path, caplog):
    import torch

    records = shard_records(identify_cell, (1, 1))[:20]
    sizes = []

    def predict(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return echo(batch)

    run_shard(records, predict, tmp_path / "out.jsonl", tmp_path / "p.jsonl", batch_size=8, made_from=MADE_FROM)
    assert sizes[:3] == [8, 4, 2] and set(sizes[3:]) == {2}
    assert "batch size halved to 2" in caplog.text
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 20


def test_other_errors_are_not_swallowed(identify_cell, tmp_path):
    def predict(batch):
        raise ValueError("broken template")

    with pytest.raises(ValueError, match="broken template"):
        run_shard(shard_records(identify_cell, (1, 1)), predict, tmp_path / "o.jsonl", tmp_path / "p.jsonl",
                  batch_size=4, made_from=MADE_FROM)
    assert not (tmp_path / "o.jsonl").exists()


def write_shards(identify_cell, tmp_path, n=2):
    paths = []
    for i in range(1, n + 1):
        records = shard_records(identify_cell, (i, n))
        paths.append(tmp_path / f"s{i}.jsonl")
        run_shard(records, echo, paths[-1], tmp_path / f"s{i}.partial", batch_size=16, made_from=MADE_FROM)
    return paths


def test_merge_checks_ids(identify_cell, tmp_path):
    paths = write_shards(identify_cell, tmp_path)
    assert merge_shards(identify_cell, paths, tmp_path / "m.jsonl") == len(list(iter_jsonl(identify_cell)))
    with pytest.raises(InputError, match="ids missing"):
        merge_shards(identify_cell, paths[:1], tmp_path / "m2.jsonl")
    with pytest.raises(InputError, match="1 duplicated|duplicated"):
        merge_shards(identify_cell, [paths[0], paths[0], paths[1]], tmp_path / "m3.jsonl")
    assert not (tmp_path / "m2.jsonl").exists() and not (tmp_path / "m3.jsonl").exists()


def test_truncated_shard_file_is_an_error_not_half_scored(identify_cell, tmp_path):
    paths = write_shards(identify_cell, tmp_path)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) - 20])
    with pytest.raises(InputError, match="malformed JSON"):
        merge_shards(identify_cell, paths, tmp_path / "m.jsonl")


def test_malformed_test_record_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "messages": [{"role": "user", "content": "q"}], "images": []}\n{"id": 3}\n')
    with pytest.raises(InputError, match="line 2"):
        shard_records(path, (1, 1))


def test_read_partial_of_clean_file_changes_nothing(tmp_path):
    p = tmp_path / "p.jsonl"
    partial_file(p, MADE_FROM, {"a": "x"})
    before = p.read_bytes()
    assert read_partial(p, MADE_FROM) == {"a": "x"} and p.read_bytes() == before
    assert read_partial(p, MADE_FROM) == {"a": "x"} and p.read_bytes() == before


# ---- real ms-swift on tiny models ----

@pytest.mark.swift
def test_killed_inference_job_resumes_without_recomputing(tiny, identify_cell, demo_root, tmp_path):
    out, partial = tmp_path / "shard.jsonl", tmp_path / "shard.partial.jsonl"
    args = ["infer", "--model", "tiny", "--spec", spec(tiny, "qwen2_vl"), "--run",
            run_options(tmp_path, image_root=demo_root), "--test",
            identify_cell, "--shard", "1-of-2", "--out", out, "--partial", partial]
    job = cli(*args, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 4):
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    header = orjson.loads(partial.read_bytes().splitlines()[0])
    before = read_partial(partial, header["made_from"])
    assert len(before) >= 4 and not out.exists()
    # Another batch size, or the images mounted elsewhere, is how the job runs, not what it
    # answers: the answers are kept.
    moved = tmp_path / "moved" / "SARDet_100K"
    moved.parent.mkdir()
    moved.symlink_to(demo_root, target_is_directory=True)
    args[args.index("--run") + 1] = run_options(tmp_path, batch_size=3, image_root=moved)
    job = cli(*args)
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0, log
    total = len(shard_records(identify_cell, (1, 2)))
    assert f"{len(before)} already done, {total - len(before)} to predict" in log
    final = {r["id"]: r["response"] for r in iter_jsonl(out)}
    assert len(final) == total and all(final[i] == r for i, r in before.items())


@pytest.mark.swift
def test_llava_zero_shot_inference(tiny, identify_cell, demo_root, tmp_path):
    out = tmp_path / "llava.jsonl"
    job = cli("infer", "--model", "tiny-llava", "--spec", spec(tiny, "llava1_5_hf"), "--run",
              run_options(tmp_path, image_root=demo_root), "--test", identify_cell, "--shard", "3-of-3", "--out", out,
              "--partial", tmp_path / "p.jsonl")
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0 and "cannot read image" not in log, log
    assert [r["id"] for r in iter_jsonl(out)] == [r["id"] for r in shard_records(identify_cell, (3, 3))]


def test_an_inference_job_without_an_image_root_stops_with_one_line(tiny, identify_cell, tmp_path, monkeypatch):
    """Records name their images relative to the SARDet-100K root: a job given no root (no
    image_root in its run options, no $ROOT_IMAGE_DIR) stops before loading the model, naming
    the test file and the record, instead of answering every record empty."""
    monkeypatch.delenv("ROOT_IMAGE_DIR", raising=False)
    job = cli("infer", "--model", "tiny-llava", "--spec", spec(tiny, "llava1_5_hf"), "--run", run_options(tmp_path),
              "--test", identify_cell, "--out", tmp_path / "o.jsonl", "--partial", tmp_path / "p.jsonl")
    log = job.communicate(timeout=120)[0]
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert job.returncode == 2 and len(errors) == 1, log  # 2: bad input
    assert errors[0].startswith(f"error: {identify_cell}, record identify-test-") and \
        "is relative to the SARDet-100K root, but no image root was given" in errors[0]


def test_an_images_records_go_to_the_engine_together(identify_cell, tmp_path):
    """Identification asks several questions of one image (adjacent in the test file): they go in
    one engine call, so that vLLM's prefix cache computes the image once; only an image with more
    records than a call holds is split."""
    records = shard_records(identify_cell, (1, 1))
    per_image = Counter(image_key(r) for r in records)
    size = min(per_image.values()) + 1
    assert max(per_image.values()) > size  # both cases occur in this file
    calls = []

    def predict(batch):
        calls.append([image_key(r) for r in batch])
        return echo(batch)

    run_shard(records, predict, tmp_path / "out.jsonl", tmp_path / "p.jsonl", batch_size=size, made_from=MADE_FROM)
    assert sum(map(len, calls)) == len(records) and all(len(c) <= size for c in calls)
    for image, count in per_image.items():
        holding = [c for c in calls if image in c]
        assert len(holding) == (1 if count <= size else math.ceil(count / size)), (image, count)


def test_shards_keep_an_images_records_together(identify_cell):
    ids = [r["id"] for r in iter_jsonl(identify_cell)]
    for count in (2, 3, 7):
        shards = [shard_records(identify_cell, (i, count)) for i in range(1, count + 1)]
        assert [r["id"] for s in shards for r in s] == ids
        owners = {}
        for i, shard in enumerate(shards):
            for r in shard:
                assert owners.setdefault(image_key(r), i) == i, f"an image in shards {owners[image_key(r)]} and {i}"


def test_vllm_caches_prefixes_unless_the_entry_says_otherwise():
    assert vllm_kwargs({}, None)["enable_prefix_caching"] is True
    assert vllm_kwargs({"enable_prefix_caching": False}, ["a"]) == {"enable_prefix_caching": False,
                                                                    "enable_lora": True, "max_lora_rank": 64}
