"""Shared fixtures: small datasets the project generates itself (no downloads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow_scripts"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from sarchat_bench.demo_data import generate

    root = tmp_path_factory.mktemp("demo") / "SARDet_100K"
    generate(root, seed=0, images_per_split={"train": 30, "val": 4, "test": 16})
    return root


@pytest.fixture(scope="session")
def demo_tables(demo_root, tmp_path_factory) -> dict:
    from sarchat_bench.annotations import load_split, write_boxes

    out = tmp_path_factory.mktemp("tables")
    tables = {}
    for split in ("train", "test"):
        images, _ = load_split(demo_root, split)
        write_boxes(out / f"{split}.boxes.json", images)
        tables[split] = out / f"{split}.boxes.json"
    return tables


def write_coco(root: Path, split: str, images: list, annotations: list, categories=None, make_files=True) -> Path:
    """A SARDet-100K-layout folder with the given COCO records (image files are empty)."""
    categories = categories or [{"id": i, "name": n} for i, n in
                                enumerate(["ship", "aircraft", "car", "tank", "bridge", "harbor"])]
    path = root / "Annotations" / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    if make_files:
        for im in images:
            f = root / "JPEGImages" / split / im["file_name"]
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()
    return path


def run_cli(*args, cwd=None, check=False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    return subprocess.run([sys.executable, "-m", "sarchat_bench", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, check=check)
