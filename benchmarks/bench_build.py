#!/usr/bin/env python
"""Time the full dataset build on a SARDet-100K-sized annotation set.

Generates COCO annotations with SARDet-100K's size (train 94,493 images / 198,763 boxes,
val 10,492 / 22,264, test 11,613 / 24,626; image files are empty), runs
`snakemake build_dataset` on them, and prints the wall time and peak memory beside the
floor measured in the same run: serialising the same number of records with orjson, the
fastest JSON writer available.

    python benchmarks/bench_build.py [--scale 1.0] [--cores 2] [--repeat 3] [--keep DIR]

Both the build and the floor are timed `--repeat` times (medians are reported): on a VM, the cost
of writing a gigabyte varies several-fold from one minute to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
SARDET_SIZES = {"train": (94_493, 198_763), "val": (10_492, 22_264), "test": (11_613, 24_626)}


def make_annotations(root: Path, scale: float, seed: int = 0, sizes: dict | None = None) -> tuple[int, int]:
    """COCO annotations of SARDet-100K's size below `root`, with empty image files; image sizes
    drawn from `sizes` ({(w, h): weight}) where given (bench_grouped.py: SARDet's own)."""
    rng = random.Random(seed)
    total_images = total_boxes = 0
    ann_id = 1
    for split, (n_images, n_boxes) in SARDET_SIZES.items():
        n_images, n_boxes = int(n_images * scale), int(n_boxes * scale)
        images, annotations = [], []
        folder = root / "JPEGImages" / split
        folder.mkdir(parents=True, exist_ok=True)
        per_image = [1] * n_images
        for _ in range(n_boxes - n_images):
            per_image[rng.randrange(n_images)] += 1
        for i, k in enumerate(per_image):
            if sizes:
                w, h = rng.choices(list(sizes), weights=list(sizes.values()))[0]
            else:
                w, h = rng.choice([(512, 512), (800, 800), (1024, 1024), (256, 256), (600, 400)])
            name = f"{split}_{i:06d}.jpg"
            (folder / name).touch()
            images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
            category = rng.randrange(6)
            for _ in range(k):
                bw, bh = rng.randint(6, w // 3), rng.randint(6, h // 3)
                x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
                annotations.append({"id": ann_id, "image_id": i + 1, "category_id": category,
                                    "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
                ann_id += 1
        names = ["ship", "aircraft", "car", "tank", "bridge", "harbor"]
        categories = [{"id": i, "name": n} for i, n in enumerate(names)]
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{split}.json").write_bytes(
            orjson.dumps({"images": images, "annotations": annotations, "categories": categories}))
        total_images += n_images
        total_boxes += n_boxes
    return total_images, total_boxes


def serialisation_floor(records: list[dict], n: int, path: Path) -> float:
    """Seconds to write `n` records (cycling through real ones) with orjson to a new file: the
    floor. Dirty pages are flushed first, as before each build, so that neither pays for the
    other's writeback."""
    dumps = orjson.dumps
    path.unlink(missing_ok=True)
    os.sync()
    start = time.perf_counter()
    with open(path, "wb") as out:
        for i in range(n):
            out.write(dumps(records[i % len(records)]))
            out.write(b"\n")
    return time.perf_counter() - start


def _runs(times: list[float]) -> str:
    return ", ".join(f"{t:.1f}" for t in times)


def read_output(files: list[Path], every: int = 97, most: int = 20_000) -> tuple[int, list[dict]]:
    """Records in the built files, and every `every`-th of them (at most `most`) as the floor's
    sample, streamed in one pass rather than held in memory (the mix alone is 1 GB)."""
    n, sample = 0, []
    for path in files:
        with open(path, "rb") as handle:
            for line in handle:
                if n % every == 0 and len(sample) < most:
                    sample.append(orjson.loads(line))
                n += 1
    return n, sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of SARDet-100K's size")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="builds and floor runs to take the median of")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder here")
    parser.add_argument("snakemake_args", nargs="*", help="extra Snakemake options (after --)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="sarchat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    root = work / "SARDet_100K"
    t0 = time.perf_counter()
    n_images, n_boxes = make_annotations(root, args.scale)
    print(f"annotation set: {n_images} images, {n_boxes} boxes ({time.perf_counter() - t0:.1f} s to make)")

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "build_dataset", "-s", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(REPO / "config.yaml"), "--cores", str(args.cores), "--quiet", "all",
           *args.snakemake_args, "--config", f"sardet_root={root}",
           "dataset={check_image_headers: false}"]  # the image files are empty
    builds = []
    for _ in range(args.repeat):
        shutil.rmtree(work / "results", ignore_errors=True)
        shutil.rmtree(work / ".snakemake", ignore_errors=True)
        os.sync()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        builds.append(time.perf_counter() - start)
    build_s = statistics.median(builds)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)  # everything is up to date: Snakemake's own start and exit
    snakemake_s = time.perf_counter() - start

    sarchat = work / "results" / "sarchat"
    files = [sarchat / "train.jsonl", *sorted((sarchat / "test").glob("*.jsonl"))]
    n_records, sample = read_output(files)
    floors = [serialisation_floor(sample, n_records, work / "floor.jsonl") for _ in range(args.repeat)]
    (work / "floor.jsonl").unlink()
    floor_s = statistics.median(floors)
    bench_dir = work / "results" / "benchmarks"
    job_times = [(float(p.read_text().splitlines()[1].split("\t")[0]), str(p.relative_to(bench_dir)))
                 for p in bench_dir.rglob("*.tsv")]
    jobs = sorted(job_times, reverse=True)[:5]

    print(f"records built: {n_records} ({n_records / build_s:,.0f} records/s)")
    print(f"full build (snakemake build_dataset, {args.cores} cores): {build_s:.1f} s wall "
          f"(median of {_runs(builds)}), peak job RSS {peak_mb:.0f} MB")
    print(f"baseline, orjson serialisation of {n_records} records: {floor_s:.1f} s (median of {_runs(floors)})")
    print(f"ratio build / baseline: {build_s / floor_s:.2f}x")
    print(f"of the build: {len(job_times)} jobs took {sum(s for s, _ in job_times):.1f} s together (last build); "
          f"Snakemake's own start and exit (a no-op run) take {snakemake_s:.1f} s")
    print("slowest jobs: " + ", ".join(f"{name} {s:.1f} s" for s, name in jobs))
    print(json.dumps({"images": n_images, "boxes": n_boxes, "records": n_records, "build_s": round(build_s, 2),
                      "floor_s": round(floor_s, 2), "ratio": round(build_s / floor_s, 2), "peak_rss_mb": round(peak_mb),
                      "builds_s": [round(b, 2) for b in builds], "floors_s": [round(f, 2) for f in floors],
                      "snakemake_noop_s": round(snakemake_s, 2)}))
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
