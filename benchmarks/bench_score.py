#!/usr/bin/env python
"""Time the scorer on a SARChat-2M-sized test set (about 229k predictions).

Builds the nine test cells from SARDet-100K-sized test annotations (11,613 images, 24,626
boxes), writes predictions that are the reference answers with every third box shifted
and every tenth answer empty, then prints the time to score all cells (score files and
per-sample details, as the workflow's score jobs write them) beside the floor measured in
the same run: merely reading the same test and prediction files with orjson.

Each measurement runs in a fresh process, as a score job does (the build's heap and the
scorer's caches stay out of it), the floor first, then the scoring; it is repeated
`--repeat` times and medians are reported: on a VM the same work varies by half from one
minute to the next.

    python benchmarks/bench_score.py [--scale 1.0] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BOX = re.compile(r"\{<(\d+)><(\d+)><(\d+)><(\d+)>\}")


def perturb(i: int, answer: str) -> str:
    if i % 10 == 0:
        return ""
    if i % 3 == 0:
        return BOX.sub(lambda m: "{<%d><%s><%d><%s>}" % (int(m[1]) + 3, m[2], int(m[3]) + 3, m[4]), answer)
    return answer


def build(work: Path, scale: float) -> None:
    from bench_build import make_annotations
    from sarchat_bench.core.io import iter_jsonl, write_jsonl
    from sarchat_bench.dataset.annotations import load_split, write_boxes
    from sarchat_bench.dataset.build import build_test_cell
    from sarchat_bench.paper.tasks import CELLS

    make_annotations(work / "SARDet_100K", scale)
    images, _ = load_split(work / "SARDet_100K", "test", check_image_files=False)
    write_boxes(work / "test.boxes.json", images)
    for cell in CELLS:
        test = work / f"{cell}.jsonl"
        build_test_cell(cell, [work / "test.boxes.json"], test, seed=0)
        write_jsonl(work / f"{cell}.pred.jsonl", ({"id": r["id"], "response": perturb(i, r["messages"][1]["content"])}
                                                  for i, r in enumerate(iter_jsonl(test))))


def measure(work: Path) -> dict:
    """One floor and one scoring of all cells, in this (fresh) process."""
    import orjson
    from sarchat_bench.evaluation.scoring import score_cell
    from sarchat_bench.paper.tasks import CELLS

    start = time.perf_counter()
    for cell in CELLS:
        for path in (work / f"{cell}.jsonl", work / f"{cell}.pred.jsonl"):
            for line in path.read_bytes().splitlines():
                orjson.loads(line)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    results = [score_cell(cell, work / f"{cell}.jsonl", work / f"{cell}.pred.jsonl", model="bench",
                          details_path=work / f"{cell}.details.jsonl") for cell in CELLS]
    score_s = time.perf_counter() - start
    return {"read_s": read_s, "score_s": score_s, "predictions": sum(r["n_samples"] for r in results),
            "parse_failures": sum(r["parse_failures"] for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of SARDet-100K's test split")
    parser.add_argument("--repeat", type=int, default=3, help="measurements to take the median of")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder here")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # make the data, in a process of its own
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one measurement of a built folder
    args = parser.parse_args()
    if args.build:
        build(args.build, args.scale)
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="sarchat-score-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, __file__, "--build", str(work), "--scale", str(args.scale)], check=True)
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--measure", str(work)], check=True,
                                          capture_output=True, text=True).stdout) for _ in range(args.repeat)]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    read_s = statistics.median(r["read_s"] for r in runs)
    score_s = statistics.median(r["score_s"] for r in runs)
    n = runs[0]["predictions"]
    print(f"predictions scored: {n}")
    print(f"scoring all nine cells (score files and details): {score_s:.2f} s, median of {len(runs)} "
          f"({n / score_s:,.0f} predictions/s; target < 20 s)")
    print(f"floor, reading the test and prediction files with orjson: {read_s:.2f} s")
    ratios = [r["score_s"] / r["read_s"] for r in runs]
    print(f"ratio scoring / floor: median {statistics.median(ratios):.1f}x (target 5x); per run: "
          + ", ".join(f"{ratio:.1f}x" for ratio in ratios))
    print(json.dumps({"predictions": n, "score_s": round(score_s, 2), "read_s": round(read_s, 2),
                      "ratio": round(statistics.median(ratios), 2), "parse_failures": runs[0]["parse_failures"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
