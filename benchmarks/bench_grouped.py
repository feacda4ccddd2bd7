#!/usr/bin/env python
"""What grouped training (train: {grouping: identify|all}) saves, measured two ways.

1. Tokens per epoch, on a SARDet-100K-sized training mix (94,493 images at SARDet-100K's own
   image sizes, 1.8 M samples; image files are links to one grey JPEG per size): the
   workflow's grouping job (`python -m sarchat_bench group-conversations`) for `identify` and
   `all`, counting with a tiny Qwen2-VL's ms-swift template: its tokenizer is the tiny one
   (trained on the mix), its images are Qwen2-VL's own geometry (patch 14, 2x2 merge, no
   MAX_PIXELS), so the image counts are the real Qwen2-VL's. Prints tokens, sequences and
   image encodings per epoch beside the paper's single-turn recipe, measured in the same run,
   and the job's wall time and peak memory.
2. `swift sft` wall time on the CPU: the same few hundred demo samples, single-turn and grouped
   (`all`), one epoch each of LoRA on a tiny Qwen2-VL, one after the other in the same run; the
   ratio of the two, for the whole command and for ms-swift's own training loop (train_runtime).

    python benchmarks/bench_grouped.py [--scale 1.0] [--sft-images 8] [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
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
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_build import make_annotations  # noqa: E402
from sarchat_bench.models.grouping import GroupedMix  # noqa: E402

# SARDet-100K's training images by size (shared/notes/training-cost.md, from its sources'
# published sizes and counts).
SARDET_TRAIN_SIZES = {(256, 256): 76.0, (512, 512): 18.0, (800, 800): 4.0, (500, 350): 1.0, (224, 224): 0.8,
                      (1000, 1000): 0.3}
ENV = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts"), "HF_HUB_OFFLINE": "1"}


def link_images(root: Path) -> None:
    """Each image file a symbolic link to one grey JPEG of its size: real headers, little disk
    (a file system allows some 65,000 hard links to one file)."""
    from PIL import Image

    records = orjson.loads((root / "Annotations" / "train.json").read_bytes())["images"]
    made: dict[tuple[int, int], Path] = {}
    for im in records:
        size = (im["width"], im["height"])
        if size not in made:
            made[size] = root / f"grey_{size[0]}x{size[1]}.jpg"
            Image.new("L", size, 128).save(made[size], "JPEG")
        target = root / "JPEGImages" / "train" / im["file_name"]
        target.unlink()
        target.symlink_to(made[size])


def build_mix(root: Path, out: Path) -> int:
    from sarchat_bench.dataset.annotations import load_split, write_boxes
    from sarchat_bench.dataset.build import build_train_mix

    images, _ = load_split(root, "train")
    write_boxes(out.with_suffix(".boxes.json"), images)
    build_train_mix([out.with_suffix(".boxes.json")], out, seed=2025, workers=2)
    return sum(1 for _ in open(out, "rb"))


def tiny_qwen(work: Path, corpus: Path) -> Path:
    from sarchat_bench.models.tiny import build

    return build("qwen2_vl", work / "tiny-qwen2-vl", [corpus])


def mix_spec(dataset: Path, model: Path, grouping: str, max_length: int = 2048) -> GroupedMix:
    return GroupedMix(dataset=str(dataset), grouping=grouping, max_length=max_length, seed=2025,
                      model_path=str(model), model_type="qwen2_vl", template="qwen2_vl", source={"tiny": "qwen2_vl"},
                      environment="default", env={})


def group(mix: GroupedMix, out: Path) -> tuple[dict, float, float]:
    """The workflow's grouping job, as its rule runs it: the summary, wall seconds, peak MB."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sarchat_bench", "group-conversations", "--spec", mix.to_json(),
                    "--cache-dir", str(out.parent / "cache"), "--out", str(out), "--summary",
                    str(out.with_suffix(".summary.json"))], check=True, env=ENV, cwd=out.parent)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return orjson.loads(out.with_suffix(".summary.json").read_bytes()), wall, peak_mb


def tokens_part(work: Path, scale: float) -> dict:
    root = work / "SARDet_100K"
    t0 = time.perf_counter()
    make_annotations(root, scale, sizes=SARDET_TRAIN_SIZES)
    link_images(root)
    mix = work / "train.jsonl"
    samples = build_mix(root, mix)
    print(f"SARDet-sized training mix: {samples:,} samples ({time.perf_counter() - t0:.0f} s to make)")
    model = tiny_qwen(work, mix)
    results = {}
    for grouping in ("identify", "all"):
        summary, wall, peak = group(mix_spec(mix, model, grouping), work / f"grouped-{grouping}.jsonl")
        results[grouping] = summary
        print(f"grouping job ({grouping}): {wall:.0f} s wall, peak RSS {peak:.0f} MB, "
              f"{summary['records_out']:,} records out of {summary['records_in']:,}")
    none = results["all"]["epoch_tokens"]["none"]
    print(f"image tokens measured with the template (Qwen2-VL geometry): {results['all']['measured']['image_tokens']}")
    print(f"{'tokens per epoch':28}{'sequences':>12}{'LLM tokens':>16}{'images encoded':>16}{'token ratio':>13}")
    rows = {"none (the paper's recipe)": none, **{g: results[g]["epoch_tokens"][g] for g in ("identify", "all")}}
    for name, t in rows.items():
        print(f"{name:28}{t['sequences']:>12,}{t['tokens']:>16,}{t['image_encodings']:>16,}"
              f"{t['tokens'] / none['tokens']:>13.3f}")
    return {name: {**t, "ratio": round(t["tokens"] / none["tokens"], 4)} for name, t in rows.items()}


def sft(dataset: Path, model: Path, work_dir: Path) -> tuple[float, float, int]:
    """One epoch of LoRA with `swift sft` as the train job builds it: wall seconds, ms-swift's
    train_runtime, and the steps."""
    from sarchat_bench.models.train import sft_command

    settings = {"tuner_type": "lora", "lora_rank": 8, "lora_alpha": 32, "target_modules": "all-linear",
                "learning_rate": 1e-4, "num_train_epochs": 1, "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 1, "torch_dtype": "float32", "max_length": 2048,
                "gradient_checkpointing": False, "save_steps": 100000, "logging_steps": 5,
                "dataloader_num_workers": 1, "grouping": "all" if "grouped" in dataset.name else "none"}
    cmd = sft_command(model_path=str(model), model_type="qwen2_vl", template="qwen2_vl", dataset=str(dataset),
                      work_dir=work_dir, settings=settings)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**ENV, "OMP_NUM_THREADS": "2"}, cwd=dataset.parent,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    log = [orjson.loads(line) for line in (work_dir / "logging.jsonl").read_bytes().splitlines()]
    end = next(r for r in log if "train_runtime" in r)
    steps = max(int(str(r["global_step/max_steps"]).split("/")[1]) for r in log if "global_step/max_steps" in r)
    return wall, float(end["train_runtime"]), steps


def sft_part(work: Path, images: int, repeat: int) -> dict:
    from sarchat_bench.dataset.demo_data import generate

    root = work / "demo" / "SARDet_100K"
    generate(root, seed=0, images_per_split={"train": images, "val": 1, "test": 1})
    mix = work / "demo" / "train.jsonl"
    samples = build_mix(root, mix)
    model = tiny_qwen(work / "demo", mix)
    grouped = work / "demo" / "grouped.jsonl"
    summary, _, _ = group(mix_spec(mix, model, "all"), grouped)
    print(f"swift sft, one epoch on the CPU: {samples} samples of {images} images; grouped: "
          f"{summary['records_out']} conversations")
    runs = {"single-turn": [], "grouped": []}
    for _ in range(repeat):  # alternated, so that both see the same machine
        for name, data in (("single-turn", mix), ("grouped", grouped)):
            out = work / "demo" / f"sft-{name}"
            shutil.rmtree(out, ignore_errors=True)
            runs[name].append(sft(data, model, out))
    result = {}
    for name, values in runs.items():
        wall, loop = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        result[name] = {"wall_s": round(wall, 1), "train_runtime_s": round(loop, 1), "steps": values[0][2]}
        print(f"{name:12} {values[0][2]:4} steps  wall {wall:6.1f} s  training loop {loop:6.1f} s")
    ratio = {k: round(result["grouped"][k] / result["single-turn"][k], 3) for k in ("wall_s", "train_runtime_s")}
    print(f"ratio grouped / single-turn: wall {ratio['wall_s']:.2f}x, training loop {ratio['train_runtime_s']:.2f}x")
    return {**result, "ratio": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of SARDet-100K's training split")
    parser.add_argument("--sft-images", type=int, default=8, help="demo training images for the swift sft runs")
    parser.add_argument("--repeat", type=int, default=1, help="swift sft runs of each kind (median)")
    parser.add_argument("--skip-tokens", action="store_true")
    parser.add_argument("--skip-sft", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sarchat-grouped-"))
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    if not args.skip_tokens:
        out["tokens"] = tokens_part(work, args.scale)
    if not args.skip_sft:
        out["sft"] = sft_part(work, args.sft_images, args.repeat)
    print(json.dumps(out))
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
