#!/usr/bin/env python
"""Time `snakemake plan` at SARDet-100K's scale (116,598 images, about 2 M records) for the
paper's 16 models, beside a floor measured in the same run: a Python process that only reads the
plan's inputs (the box tables and the generators' summaries) with orjson.

    python benchmarks/bench_plan.py [--workdir DIR [--root SARDET_ROOT]] [--repeat 3]

Without --workdir it builds the dataset first (`snakemake build_dataset` on generated
annotations with SARDet-100K's image sizes, bench_build.make_annotations and
bench_grouped.SARDET_TRAIN_SIZES; a few minutes); with one, it reuses that build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_build import make_annotations
from bench_grouped import SARDET_TRAIN_SIZES

REPO = Path(__file__).resolve().parents[1]
FLOOR = """import sys, orjson
from pathlib import Path
for path in sys.argv[1:]:
    orjson.loads(Path(path).read_bytes())
"""


def snakemake(workdir: Path, root: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", str(REPO / "config.yaml"), "--config", f"sardet_root={root}",
           "dataset={check_image_headers: false}", "run=paper"]
    # The jobs run `python -m sarchat_bench`: this interpreter's, as `make` puts .venv/bin first.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"snakemake {args[0]} failed:\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="a folder where build_dataset already ran (its SARDet root beside it)")
    parser.add_argument("--root", help="the SARDet root that build ran on (default: WORKDIR/SARDet_100K)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(args.workdir or tempfile.mkdtemp(prefix="bench_plan_"))
    root = Path(args.root) if args.root else scratch / "SARDet_100K"
    if not args.workdir:
        print("images, boxes:", make_annotations(root, 1.0, sizes=SARDET_TRAIN_SIZES))
        snakemake(scratch, root, "build_dataset")
    inputs = [str(p) for p in (scratch / "results" / "sarchat").rglob("*.json")
              if p.parent.name in ("annotations", "summaries", "test") and not p.name.endswith(".report.json")]
    plans, floors = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        snakemake(scratch, root, "plan", "--forcerun", "plan")
        plans.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR, *inputs], check=True)
        floors.append(time.perf_counter() - start)
    plan, floor = statistics.median(plans), statistics.median(floors)
    print(f"snakemake plan (16 models, median of {args.repeat}): {plan:.1f} s; reading its inputs: {floor:.2f} s; "
          f"ratio {plan / floor:.1f}")
    if not args.workdir:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
