#!/usr/bin/env python
"""The GPU check's Python half (benchmarks/gpu_check.sh runs it): a tiny model trained through
`python -m sarchat_bench train` twice, on the training mix as it is (the paper's recipe) and
grouped into one conversation per image (`grouping: all`, the file made by the workflow's own
grouping job), then predicted through the workflow's inference code (models/predict.py
predict_shard: the transformers backend, then vLLM where it imports), with training and
inference tokens per second and peak GPU memory printed, and the grouped run's ratios.

    python benchmarks/gpu_check.py --out DIR [--cpu-dry-run] [--steps 30] [--train '{"packing": true}']

`--train` passes extra `train:` settings (JSON) to both training runs, e.g. packing or
gradient checkpointing. `--cpu-dry-run` runs the same chain on the CPU in float32 (what the
tests run); on a GPU it trains in bfloat16. The data is the generated demo dataset; nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

ARCHITECTURE = "qwen2_vl"  # ms-swift's Qwen2-VL path: dynamic resolution, vLLM serves it
TINY_ENV = {"MAX_PIXELS": "12544"}


def dataset(root: Path) -> dict:
    """The demo dataset's training mix and its identification test file (several questions an image)."""
    from sarchat_bench.dataset.annotations import load_split, write_boxes
    from sarchat_bench.dataset.build import build_test_cell, build_train_mix
    from sarchat_bench.dataset.demo_data import generate

    generate(root / "SARDet_100K", seed=0, images_per_split={"train": 24, "test": 8})
    tables = {}
    for split in ("train", "test"):
        images, _ = load_split(root / "SARDet_100K", split)
        write_boxes(root / f"{split}.boxes.json", images)
        tables[split] = root / f"{split}.boxes.json"
    build_train_mix([tables["train"]], root / "train.jsonl", seed=0)
    build_test_cell("identify_multi", [tables["test"]], root / "identify_multi.jsonl", seed=0)
    # The records name their images relative to this root (docs/decisions.md, D18).
    return {"train": root / "train.jsonl", "test": root / "identify_multi.jsonl", "images": root / "SARDet_100K"}


def spec(model: Path, settings: dict, gpus: int) -> dict:
    return {"model_path": str(model), "model_type": ARCHITECTURE, "template": ARCHITECTURE,
            "source": {"tiny": ARCHITECTURE}, "env": TINY_ENV, "load": {}, "environment": "default", "gpus": gpus,
            "settings": settings}


def grouped(root: Path, data: dict, model: Path) -> Path:
    """The training mix as one conversation per image, written by the workflow's grouping job."""
    from sarchat_bench.models.grouping import GroupedMix

    mix = GroupedMix(dataset=str(data["train"]), grouping="all", max_length=2048, seed=0, model_path=str(model),
                     model_type=ARCHITECTURE, template=ARCHITECTURE, source={"tiny": ARCHITECTURE},
                     environment="default", env=TINY_ENV)
    out = root / "grouped.jsonl"
    result = subprocess.run([sys.executable, "-m", "sarchat_bench", "group-conversations", "--spec", mix.to_json(),
                             "--cache-dir", str(root / "cache"), "--image-root", str(data["images"]), "--out",
                             str(out), "--summary", str(out.with_suffix(".summary.json"))],
                            env=job_environment(root), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the grouping job failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    return out


def job_environment(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts"), "MODELSCOPE_CACHE": str(root / "ms")}


def train(root: Path, name: str, dataset: Path, data: dict, model: Path, args, gpu: bool, **recipe) -> dict:
    """One training run through the workflow's training job (its own work folder); `recipe`:
    the settings that make it grouped."""
    settings = {"tuner_type": "lora", "lora_rank": 8, "lora_alpha": 32, "target_modules": "all-linear",
                "learning_rate": 1e-4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                "torch_dtype": "bfloat16" if gpu else "float32", "gradient_checkpointing": True,
                "max_steps": args.steps, "max_length": 2048, **recipe, **json.loads(args.train or "{}")}
    run = {"options": {"save_steps": args.steps, "logging_steps": 1}, "cache_dir": str(root / "cache"), "threads": 4,
           "image_root": str(data["images"])}
    folder = root / name
    sentinel = folder / "adapter.json"
    cmd = [sys.executable, "-m", "sarchat_bench", "train", "--model", "gpu-check", "--spec",
           json.dumps(spec(model, settings, 1 if gpu else 0)), "--run", json.dumps(run),
           "--dataset", str(dataset), "--work-dir", str(folder / "work"), "--sentinel", str(sentinel)]
    start = time.monotonic()
    result = subprocess.run(cmd, env=job_environment(root), capture_output=True, text=True)
    seconds = time.monotonic() - start
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"training ({name}) failed ({result.returncode}); its log: {folder / 'train.log'}\n"
                         + (result.stdout + result.stderr)[-3000:])
    logged = [json.loads(line) for line in (folder / "work" / "logging.jsonl").read_text().splitlines()]
    adapter = json.loads(sentinel.read_text())
    rows = args.steps * settings["per_device_train_batch_size"] * settings["gradient_accumulation_steps"]
    tokens, turns = sequences(Path(adapter["dataset_read"]), data, model)
    return {"seconds": seconds, "train_runtime": next((r["train_runtime"] for r in logged if "train_runtime" in r),
                                                      seconds),
            "rows": rows, "tokens": tokens * rows, "samples": turns * rows, "settings": settings,
            "peak_memory_gib": max((r.get("memory(GiB)", 0) for r in logged), default=0), "adapter": adapter}


def sequences(dataset: Path, data: dict, model: Path) -> tuple[float, float]:
    """The mean tokens of the file's sequences, as the model's template makes them, and the mean
    question-answer samples each holds."""
    from sarchat_bench.models.tokens import Conversations, TextTokens, processor_params
    from sarchat_bench.models.train import record_shapes

    text = TextTokens.of_model(model)
    shapes = record_shapes(dataset, data["images"])
    lengths = Conversations(ARCHITECTURE, text, TINY_ENV, processor_params(ARCHITECTURE, model, text)).lengths(shapes)
    turns = [sum(role == "assistant" for role, _ in messages) for _, messages in shapes]
    return sum(lengths) / len(lengths), sum(turns) / len(turns)


def per_second(run: dict, key: str) -> float:
    return run[key] / run["train_runtime"]


def report_training(name: str, run: dict, steps: int) -> None:
    adapter = run["adapter"]
    print(f"training ({name}): {run['rows']} sequences holding {run['samples']:.0f} samples, {steps} steps in "
          f"{run['train_runtime']:.1f} s ({per_second(run, 'tokens'):.0f} tokens/s, "
          f"{per_second(run, 'samples'):.1f} samples/s; job {run['seconds']:.0f} s with start-up); "
          f"peak GPU memory {run['peak_memory_gib']:.2f} GiB; samples over max_length "
          f"{adapter['samples_over_max_length']} of {adapter['training_samples']}", flush=True)


def infer(root: Path, data: dict, model: Path, backend: str, gpu: bool, adapter: Path) -> dict:
    """One shard of the identification file through predict_shard with the adapter of `adapter`
    (a training job's sentinel), in this process (its GPU memory is ours)."""
    from sarchat_bench.models.jobs import JobSpec, ModelJob, Resources, RunOptions
    from sarchat_bench.models.predict import predict_shard

    settings = {"backend": backend, "torch_dtype": "bfloat16" if gpu else "float32", "max_new_tokens": 48}
    job = ModelJob("gpu-check", "infer", JobSpec.from_dict(spec(model, settings, None)),
                   RunOptions({"batch_size": 16, "requests_per_call": 256, "concurrency": 1, "retries": 0,
                               "request_timeout_s": 60}, str(root / "cache"), 4, str(data["images"])),
                   Resources(1 if gpu else 0, 4, 0, 0))
    out = root / f"predictions-{backend}.jsonl"
    if gpu:
        import torch

        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    summary = predict_shard(job, test=str(data["test"]), shard=(1, 1), out=str(out),
                            partial=str(root / f"{backend}.partial.jsonl"), adapter_info=str(adapter))
    seconds = time.monotonic() - start
    from sarchat_bench.models.tokens import TextTokens

    text = TextTokens.of_model(model)
    generated = sum(text.counts([json.loads(line)["response"] for line in out.read_text().splitlines()]))
    peak = 0.0
    if gpu:
        import torch

        peak = torch.cuda.max_memory_allocated() / 2 ** 30
    return {"records": summary["records"], "seconds": seconds, "generated_tokens": generated, "peak_memory_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="scratch folder (data, model, checkpoints, predictions)")
    parser.add_argument("--cpu-dry-run", action="store_true", help="the same chain on the CPU in float32")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--train", default="", help="extra train: settings of both runs, as JSON (e.g. packing)")
    args = parser.parse_args()
    import torch

    gpu = not args.cpu_dry_run
    if gpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible: run with --cpu-dry-run to check the chain on the CPU")
    root = Path(args.out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    from sarchat_bench.models.tiny import build

    data = dataset(root)
    model = build(ARCHITECTURE, root / "model", [data["train"]])
    device = torch.cuda.get_device_name(0) if gpu else "CPU (dry run)"
    print(f"device: {device}; torch {torch.__version__}; tiny {ARCHITECTURE}; extra train settings: "
          f"{args.train or 'none'}", flush=True)
    single = train(root, "single-turn", data["train"], data, model, args, gpu)
    report_training("single-turn", single, args.steps)
    conversations = train(root, "grouping-all", grouped(root, data, model), data, model, args, gpu, grouping="all")
    report_training("grouping: all", conversations, args.steps)
    print(f"grouped / single-turn: samples per second "
          f"{per_second(conversations, 'samples') / per_second(single, 'samples'):.2f}x, tokens per second "
          f"{per_second(conversations, 'tokens') / per_second(single, 'tokens'):.2f}x, peak GPU memory "
          f"{conversations['peak_memory_gib']:.2f} / {single['peak_memory_gib']:.2f} GiB", flush=True)
    backends = ["transformers"]
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("inference (vllm): vLLM does not import here; skipped", flush=True)
    else:
        if gpu:
            backends.append("vllm")
    for backend in backends:
        done = infer(root, data, model, backend, gpu, root / "single-turn" / "adapter.json")
        print(f"inference ({backend}): {done['records']} records in {done['seconds']:.1f} s "
              f"({done['generated_tokens'] / done['seconds']:.0f} generated tokens/s, "
              f"{done['records'] / done['seconds']:.1f} records/s); peak GPU memory {done['peak_memory_gib']:.2f} GiB",
              flush=True)


if __name__ == "__main__":
    main()
