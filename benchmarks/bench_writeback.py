#!/usr/bin/env python
"""Would an early write-back of the training mix (`sync_file_range` through ctypes after each
part's pwrite in dataset/ordered_write.py) pay for itself? The package had one until 0.8.0 and
dropped it because this benchmark showed no gain (docs/performance.md). Times the training-mix
job's work on SARDet-100K-sized box tables with it (patched in here) and without it (the
package as it is), alternately, each in a fresh process after flushing dirty pages, and prints
the medians and their ratio.

    python benchmarks/bench_writeback.py [--scale 1.0] [--repeat 5] [--workers 2] [--keep DIR]

The only other ctypes call of the package, `prctl(PR_SET_PDEATHSIG)` in cli.py, is there for
correctness, not speed (a job whose shell was killed must not go on and rename its outputs into
place: tests/e2e/test_faults.py::test_a_job_dies_with_its_shell), so it is not timed here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

ONE_RUN = """
import sys, time
from sarchat_bench.dataset import ordered_write
from sarchat_bench.dataset.build import build_train_mix
variant, workers, tables, out = sys.argv[1], int(sys.argv[2]), sys.argv[3:-1], sys.argv[-1]
if variant == "on":
    import ctypes, os
    sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
    sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    def pwrite(fd, data, offset, _pwrite=os.pwrite):
        written = _pwrite(fd, data, offset)
        sync_file_range(fd, offset, written, 2)  # SYNC_FILE_RANGE_WRITE: start, do not wait
        return written
    ordered_write.os.pwrite = pwrite
start = time.perf_counter()
build_train_mix(tables, out, seed=2025, workers=workers)
print(time.perf_counter() - start)
"""


def box_tables(work: Path, scale: float) -> list[str]:
    """The training split's box table of a SARDet-100K-sized annotation set (empty image files)."""
    from bench_build import make_annotations
    from sarchat_bench.dataset.annotations import load_split, write_boxes

    root = work / "SARDet_100K"
    make_annotations(root, scale)
    images, _ = load_split(root, "train")
    table = work / "train.boxes.json"
    write_boxes(table, images)
    return [str(table)]


def one_run(variant: str, tables: list[str], out: Path, workers: int) -> float:
    out.unlink(missing_ok=True)
    os.sync()
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")}
    result = subprocess.run([sys.executable, "-c", ONE_RUN, variant, str(workers), *tables, str(out)],
                            capture_output=True, text=True, check=True, env=env)
    return float(result.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of SARDet-100K's size")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each variant (alternating)")
    parser.add_argument("--workers", type=int, default=2, help="writer processes of the training mix")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sarchat-writeback-"))
    work.mkdir(parents=True, exist_ok=True)
    tables = box_tables(work, args.scale)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.repeat):
        for variant in ("on", "off"):
            times[variant].append(one_run(variant, tables, work / "train.jsonl", args.workers))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    size_mb = (work / "train.jsonl").stat().st_size / 1e6
    print(f"training mix ({size_mb:.0f} MB, {args.workers} writers): with early write-back {on:.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in times['on'])}), without {off:.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in times['off'])}); ratio without / with {off / on:.2f}x")
    print(json.dumps({"with_s": times["on"], "without_s": times["off"], "ratio": round(off / on, 3),
                      "mix_mb": round(size_mb)}))
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
