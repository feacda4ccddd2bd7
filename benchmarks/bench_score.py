#!/usr/bin/env python
"""Time the scorer on a SARChat-2M-sized test set (about 227k predictions).

Builds the nine test cells from SARDet-100K-sized test annotations (11,613 images, 24,626
boxes), writes predictions that are the reference answers with every third box shifted
and every tenth answer empty, then prints the time to score all cells beside the time to
merely read the same test and prediction files (orjson), measured in the same run.

    python benchmarks/bench_score.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import make_annotations  # noqa: E402
from sarchat_bench.annotations import load_split, write_boxes  # noqa: E402
from sarchat_bench.build import build_test_cell  # noqa: E402
from sarchat_bench.io import iter_jsonl, write_jsonl  # noqa: E402
from sarchat_bench.scoring import score_cell  # noqa: E402
from sarchat_bench.tasks import CELLS  # noqa: E402

BOX = re.compile(r"\{<(\d+)><(\d+)><(\d+)><(\d+)>\}")


def perturb(i: int, answer: str) -> str:
    if i % 10 == 0:
        return ""
    if i % 3 == 0:
        return BOX.sub(lambda m: "{<%d><%s><%d><%s>}" % (int(m[1]) + 3, m[2], int(m[3]) + 3, m[4]), answer)
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sarchat-score-"))
    make_annotations(work / "SARDet_100K", args.scale)
    images, _ = load_split(work / "SARDet_100K", "test", check_image_files=False)
    write_boxes(work / "test.boxes.json", images)
    files = {}
    for cell in CELLS:
        test = work / f"{cell}.jsonl"
        build_test_cell(cell, [work / "test.boxes.json"], test, seed=0)
        pred = work / f"{cell}.pred.jsonl"
        write_jsonl(pred, ({"id": r["id"], "response": perturb(i, r["messages"][1]["content"])}
                           for i, r in enumerate(iter_jsonl(test))))
        files[cell] = (test, pred)
    n = sum(1 for t, _ in files.values() for _ in iter_jsonl(t))

    start = time.perf_counter()
    for test, pred in files.values():
        for path in (test, pred):
            for line in path.read_bytes().splitlines():
                orjson.loads(line)
    read_s = time.perf_counter() - start

    start = time.perf_counter()
    results = {cell: score_cell(cell, test, pred, model="bench") for cell, (test, pred) in files.items()}
    score_s = time.perf_counter() - start

    print(f"predictions scored: {n}")
    print(f"scoring all nine cells: {score_s:.1f} s ({n / score_s:,.0f} predictions/s; target < 20 s)")
    print(f"baseline, reading the test and prediction files with orjson: {read_s:.1f} s")
    print(f"ratio scoring / baseline: {score_s / read_s:.1f}x")
    print(json.dumps({"predictions": n, "score_s": round(score_s, 2), "read_s": round(read_s, 2),
                      "ratio": round(score_s / read_s, 2),
                      "parse_failures": sum(r["parse_failures"] for r in results.values())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
