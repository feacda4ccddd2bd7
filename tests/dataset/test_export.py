"""`export-hf`: a build as a Hugging Face dataset folder, loaded back offline with `datasets`
itself (every config with the JSONL's rows, the images decoding to their files), its card
checked with huggingface_hub's card classes; bad input named by file and record."""

import csv
import json
import os
import re
import shutil

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard, DatasetCardData
from PIL import Image
from sarchat_bench.core.errors import InputError
from sarchat_bench.dataset.export import RECORD_FIELDS, check_card, export
from sarchat_bench.paper.tasks import CELLS, TASKS
from support.commands import run_cli

DESCRIBE = {"min_image_side": 224, "min_area_ratio": 0.01, "max_aspect_ratio": 10.0}
SETTINGS = {"seed": 2025, "train_splits": ["train"], "test_splits": ["test"],
            "categories": ["ship", "aircraft", "car", "tank", "bridge", "harbor"], "bbox_tolerance": 1.0,
            "templates": "", "tasks": {"describe": DESCRIBE, "identify": {"samples_per_instance": 7}}}
BUILD = {"version": "0.7.0", "git_commit": "abc123", "config_digest": "d" * 64}
# Image sizes (w, h), all different, so that a wrong image is caught by its size.
IMAGES = {"train": [(40, 30), (64, 48), (33, 57)], "test": [(50, 20), (24, 36), (70, 70)]}
TRUTHS = {"classify": {"categories": ["ship"]}, "describe": {"targets": [{"category": "ship"}]},
          "count": {"count": 1}, "grounding": {"instances": [], "relations": []}, "identify": {"category": "tank"},
          "refer": {"boxes": [[1, 2, 3, 4]]}}  # a different shape per task, as in a real build
# Test rows per cell; grounding_single has none (it gets no config, and the card says so).
TEST_ROWS = {"classify": 3, "describe": 2, "count": 4, "grounding_single": 0, "grounding_multi": 3,
             "identify_single": 2, "identify_multi": 7, "refer_single": 1, "refer_multi": 2}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No hub: `datasets` reads the folder only, its cache in the test's own folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def record(rid, task, cell, image, n):
    return {"id": rid, "task": task, "cell": cell,
            "messages": [{"role": "user", "content": f"<image>[{task}] question {n}?"},
                         {"role": "assistant", "content": f"answer {n} {{<1><2><3><4>}}"}],
            "images": [str(image)], "truth": json.dumps(TRUTHS[task])}


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_build(root):
    """A tiny build: JPEGs under root/SARDet/JPEGImages, results/sarchat's JSONL files (absolute
    image paths; the test files of describe, relative to the root), and its Table 5."""
    sardet = root / "SARDet"
    paths = {}
    for split, sizes in IMAGES.items():
        for i, (w, h) in enumerate(sizes):
            path = sardet / "JPEGImages" / split / f"{split}_{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.radial_gradient("L").resize((w, h)).save(path, quality=90)
            paths.setdefault(split, []).append(path)
    out = root / "results" / "sarchat"
    train = [record(f"{task}-train-{i}", task, next(c for c in CELLS if CELLS[c][0] == task), paths["train"][i % 3],
                    4 * k + i) for k, task in enumerate(TASKS) for i in range(4)]
    write_jsonl(out / "train.jsonl", train)
    test_counts = dict.fromkeys(TASKS, 0)
    for cell, rows in TEST_ROWS.items():
        task = CELLS[cell][0]
        images = [paths["test"][i % 3] for i in range(rows)]
        if cell == "describe":  # the way records name images from now on: relative to the dataset root
            images = [p.relative_to(sardet) for p in images]
        write_jsonl(out / "test" / f"{cell}.jsonl", [record(f"{cell}-test-{i}", task, cell, image, i)
                                                     for i, image in enumerate(images)])
        test_counts[task] += rows
    (out / "stats").mkdir()
    with (out / "stats" / "table5_tasks.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "train", "train_pct", "train_paper", "train_paper_pct", "test", "test_pct",
                         "test_paper", "test_paper_pct"])
        for task in TASKS:
            writer.writerow([task, 4, 16.67, 1000, 5.0, test_counts[task], 1.0, 100, 5.0])
    return out, sardet


def expected_rows(build):
    rows = {"train": len(jsonl(build / "train.jsonl"))}
    rows.update({cell: len(jsonl(build / "test" / f"{cell}.jsonl")) for cell in CELLS})
    return rows


def load(folder, name, cache):
    return datasets.load_dataset(str(folder), name, cache_dir=str(cache))


def run_export(build, sardet, out, **kw):
    return export(build, out, image_root=sardet, settings=SETTINGS, build=BUILD, **kw)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    build, sardet = make_build(root)
    summary = run_export(build, sardet, root / "hf")
    return build, sardet, root / "hf", summary


def test_every_config_loads_with_the_jsonl_rows(exported, tmp_path):
    build, sardet, out, summary = exported
    for name, n in expected_rows(build).items():
        split = "train" if name == "train" else "test"
        if n == 0:  # no configuration: datasets cannot load an empty split
            assert summary["configs"][name]["files"] == []
            with pytest.raises(ValueError, match="not found"):
                load(out, name, tmp_path)
            continue
        loaded = load(out, name, tmp_path)
        assert list(loaded) == [split] and loaded[split].num_rows == n == summary["configs"][name]["rows"]
        want = jsonl(build / ("train.jsonl" if name == "train" else f"test/{name}.jsonl"))
        for r in want:  # the one change: each image named by its path from the dataset root
            r["images"] = [os.path.relpath(p, sardet) if os.path.isabs(p) else p for p in r["images"]]
        assert loaded[split].to_list() == want, name
        assert list(loaded[split].features) == list(RECORD_FIELDS)
    assert datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path)).num_rows == 24  # the default


def test_each_image_is_stored_once_and_decodes_to_its_file(exported, tmp_path):
    build, sardet, out, summary = exported
    images = load(out, "images", tmp_path)["images"]
    assert images.num_rows == summary["images"] == 6
    assert images["key"] == sorted(f"JPEGImages/{s}/{s}_{i:03d}.jpg" for s in IMAGES for i in range(3))
    for row in images:
        assert isinstance(row["image"], Image.Image)
        assert row["image"].size == (row["width"], row["height"]) == Image.open(sardet / row["key"]).size
    for row in images.cast_column("image", datasets.Image(decode=False)):  # the JPEG's own bytes
        assert row["image"]["bytes"] == (sardet / row["key"]).read_bytes() and row["image"]["path"] == row["key"]


def test_the_card_validates_offline_and_states_the_build(exported):
    build, sardet, out, summary = exported
    card = DatasetCard.load(out / "README.md")
    data = DatasetCardData(**card.data.to_dict())  # huggingface_hub's own parsing of the metadata
    assert data.license == "cc-by-nc-4.0" and data.size_categories == ["n<1K"]
    assert set(data.task_categories) <= set(datasets.utils.metadata.known_task_ids)
    names = [c["config_name"] for c in card.data.to_dict()["configs"]]
    assert names == ["train", *(c for c in CELLS if TEST_ROWS[c]), "images"]
    check_card(out / "README.md")
    infos = datasets.info.DatasetInfosDict.from_dataset_card_data(card.data)
    assert isinstance(infos["images"].features["image"], datasets.Image)
    for name, n in expected_rows(build).items():
        if n:
            assert infos[name].splits["train" if name == "train" else "test"].num_examples == n
    for needle in ("arXiv:2502.08168", "@article{ma2025sarchat", "@inproceedings{li2024sardet100k", "CC BY-NC 4.0",
                   "version **0.7.0**", "`" + "d" * 64 + "`", "`abc123`", "min_image_side: 224",
                   "| identify | 4 | 16.67 | 1,000 |", "without a configuration", "`grounding_single`",
                   "## What the workflow changed"):
        assert needle in card.text, needle
    assert "Demo build" not in card.text


def test_datasets_checks_the_cards_counts_and_bad_metadata_is_refused(exported, tmp_path):
    build, sardet, out, summary = exported
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    card = DatasetCard.load(copy / "README.md")
    next(i for i in card.data.dataset_info if i["config_name"] == "classify")["splits"][0]["num_examples"] += 1
    card.save(copy / "README.md")
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        load(copy, "classify", tmp_path / "cache")
    card.data.license = "mit"
    card.data.configs[1]["data_files"][0]["path"] = "data/nothing-*.parquet"
    card.save(copy / "README.md")
    with pytest.raises(InputError, match=r"invalid card metadata: licence 'mit'; config classify: no file matches"):
        check_card(copy / "README.md")


def test_the_same_build_gives_the_same_bytes_and_parquet_as_datasets_writes_it(exported, tmp_path):
    build, sardet, out, summary = exported
    again = tmp_path / "again"
    run_export(build, sardet, again)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)
    for f in out.rglob("*.parquet"):
        meta = pq.ParquetFile(f).metadata
        assert set(meta.metadata) == {b"ARROW:schema", b"huggingface"}  # nothing time-dependent
        for group in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                column = meta.row_group(group).column(c)
                assert column.compression == ("UNCOMPRESSED" if column.path_in_schema == "image.bytes" else "ZSTD")


def test_files_and_row_groups_are_split_by_size(tmp_path):
    build, sardet = make_build(tmp_path)
    sizes = sorted(p.stat().st_size for p in sardet.rglob("*.jpg"))
    out = tmp_path / "hf"
    summary = run_export(build, sardet, out, max_shard_bytes=sizes[-1] + sizes[-2], image_row_group_bytes=1,
                         record_row_group_rows=3)
    image_files = summary["configs"]["images"]["files"]
    assert len(image_files) >= 3
    assert image_files == [f"images/images-{i:05d}-of-{len(image_files):05d}.parquet" for i in range(len(image_files))]
    for f in image_files:
        meta = pq.ParquetFile(out / f).metadata
        assert meta.num_row_groups == meta.num_rows  # one image per row group here
    train_files = summary["configs"]["train"]["files"]
    assert len(train_files) > 1 and all(pq.ParquetFile(out / f).metadata.num_row_groups
                                        == -(-pq.ParquetFile(out / f).metadata.num_rows // 3) for f in train_files)
    assert load(out, "train", tmp_path / "cache")["train"]["id"] == [r["id"] for r in jsonl(build / "train.jsonl")]
    assert load(out, "images", tmp_path / "cache")["images"].num_rows == 6


def test_bad_input_is_one_error_naming_file_and_record(tmp_path):
    build, sardet = make_build(tmp_path)
    path = build / "test" / "count.jsonl"
    rows = jsonl(path)
    out = tmp_path / "hf"

    def fails(match):
        with pytest.raises(InputError, match=match):
            run_export(build, sardet, out)
        assert not out.exists() and not list(tmp_path.glob(".hf.*"))  # nothing half-written left

    rows[1]["truth"] = {"as": "object"}  # truth stays JSON text
    write_jsonl(path, rows)
    fails(r"count\.jsonl, record line 2: 'truth' is not a string")
    rows[1]["truth"], rows[1]["cell"] = "{}", "classify"
    write_jsonl(path, rows)
    fails(r"count\.jsonl, record line 2: a record of cell 'classify' in the count test file")
    rows[1]["cell"], rows[1]["images"] = "count", [str(tmp_path / "elsewhere" / "x.jpg")]
    write_jsonl(path, rows)
    fails(r"count\.jsonl, record line 2: image '.*elsewhere/x\.jpg' is not inside the dataset root")
    rows[1]["images"] = ["JPEGImages/test/missing.jpg"]
    write_jsonl(path, rows)
    fails(r"count\.jsonl, record line 2: image 'JPEGImages/test/missing\.jpg' not found")
    rows[1]["images"] = ["../SARDet/JPEGImages/test/test_000.jpg"]
    write_jsonl(path, rows)
    fails(r"count\.jsonl, record line 2: image '\.\./SARDet.*' is not a path inside the dataset root")
    rows[1]["images"] = [str(sardet / "JPEGImages" / "test" / "test_000.jpg")]
    write_jsonl(path, rows)
    table5 = build / "stats" / "table5_tasks.csv"
    right = table5.read_text()
    table5.write_text(right.replace("count,4,16.67,1000,5.0,4,", "count,4,16.67,1000,5.0,5,"))
    fails(r"table5_tasks\.csv, record task count: says 5 test samples, the exported files have 4")
    (sardet / "JPEGImages" / "test" / "test_001.jpg").write_bytes(b"not a jpeg")
    table5.write_text(right)
    fails(r"test_001\.jpg, record key JPEGImages/test/test_001\.jpg: not a readable image")
    (build / "test" / "describe.jsonl").unlink()
    fails(r"describe\.jsonl: missing: not a built SARChat dataset")


def test_a_failed_export_leaves_the_last_one_as_it_was(tmp_path):
    build, sardet = make_build(tmp_path / "copy")
    target = tmp_path / "hf"
    run_export(build, sardet, target)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    (sardet / "JPEGImages" / "train" / "train_001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="not a readable image"):
        run_export(build, sardet, target)
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "hf"]


def test_the_command_line(exported, tmp_path):
    build, sardet, out, summary = exported
    result = run_cli("export-hf", "--dataset-dir", build, "--image-root", sardet, "--settings", json.dumps(SETTINGS),
                     "--demo", "--out", tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    assert re.search(r"48 records, 6 images \(\d+ bytes of images\), 10 configs", result.stderr), result.stderr
    assert "Demo build" in (tmp_path / "hf" / "README.md").read_text()
