"""Shared fixtures: small datasets the project generates itself (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from sarchat_bench.dataset.demo_data import generate

    root = tmp_path_factory.mktemp("demo") / "SARDet_100K"
    generate(root, seed=0, images_per_split={"train": 30, "val": 4, "test": 16})
    return root


@pytest.fixture(scope="session")
def demo_tables(demo_root, tmp_path_factory) -> dict:
    from sarchat_bench.dataset.annotations import load_split, write_boxes

    out = tmp_path_factory.mktemp("tables")
    tables = {}
    for split in ("train", "test"):
        images, _ = load_split(demo_root, split)
        write_boxes(out / f"{split}.boxes.json", images)
        tables[split] = out / f"{split}.boxes.json"
    return tables


@pytest.fixture(scope="session")
def identify_cell(demo_tables, tmp_path_factory):
    from sarchat_bench.dataset.build import build_test_cell

    path = tmp_path_factory.mktemp("infer") / "identify_multi.jsonl"
    build_test_cell("identify_multi", [demo_tables["test"]], path, seed=0)
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, demo_tables, demo_root):
    from sarchat_bench.dataset.build import build_train_mix
    from sarchat_bench.models.tiny import build

    root = tmp_path_factory.mktemp("tiny")
    train = root / "train.jsonl"
    build_train_mix([demo_tables["train"]], train, seed=0, tasks=["refer"])
    return {"qwen2_vl": build("qwen2_vl", root / "qwen2_vl", [train]),
            "llava1_5_hf": build("llava1_5_hf", root / "llava1_5_hf", [train]), "train": train,
            "image_root": demo_root}  # the folder the training records' image paths are relative to
