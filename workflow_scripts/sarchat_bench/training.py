"""LoRA fine-tuning with `swift sft`, one job per model, resumable.

Checkpoints live in an undeclared work folder (results/models/<model>/work/): Snakemake deletes
the declared outputs of a failed job, and a LoRA run's checkpoints must survive that. The
declared output is a small sentinel JSON written last, naming the final adapter. A rerun
after a kill resumes from the newest complete checkpoint (`--resume_from_checkpoint`
restores optimizer, scheduler and data position).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import orjson

from .io import atomic_output, save_figure, write_json

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def master_port(model: str) -> int:
    """A port per model, so that two jobs on one node do not collide on torchrun's 29500."""
    return 20000 + int(hashlib.sha256(model.encode()).hexdigest(), 16) % 20000


def latest_checkpoint(work_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint that finished saving (its trainer_state.json exists)."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None
    found = []
    for child in work_dir.iterdir():
        m = CHECKPOINT_RE.match(child.name)
        if m and (child / "trainer_state.json").is_file() and (child / "adapter_config.json").is_file():
            found.append((int(m.group(1)), child))
    return max(found)[1] if found else None


def _value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


class TrainingError(RuntimeError):
    pass


def swift_executable() -> str:
    """The `swift` launcher of the running environment (the venv need not be activated)."""
    candidate = Path(sys.executable).with_name("swift")
    return str(candidate) if candidate.is_file() else "swift"


def sft_command(*, model_path: str, model_type: str, template: str, dataset: str, work_dir: str | os.PathLike,
                settings: dict, workers: int, revision: str | None = None, use_hf: bool = False,
                resume_from: str | os.PathLike | None = None) -> list[str]:
    """The `swift sft` argument list for one model."""
    cmd = [swift_executable(), "sft", "--model", model_path, "--model_type", model_type, "--template", template,
           "--dataset", dataset, "--output_dir", str(work_dir), "--add_version", "false", "--check_model", "false",
           "--split_dataset_ratio", "0", "--report_to", "none", "--dataloader_num_workers", str(workers)]
    if revision:
        cmd += ["--model_revision", revision]
    if use_hf:
        cmd += ["--use_hf", "true"]
    # Every setting is a `swift sft` option (config.yaml's `training:` plus the model's `train:`);
    # extra_args holds options without a default there.
    options = {k: v for k, v in settings.items() if k != "extra_args"}
    for key, value in [*options.items(), *sorted(settings.get("extra_args", {}).items())]:
        if value is not None:
            cmd += [f"--{key}", _value(value)]
    if resume_from:
        cmd += ["--resume_from_checkpoint", str(resume_from)]
    return cmd


def job_env(model: str, gpus: int, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("MODELSCOPE_CACHE", str(Path("results/cache/modelscope").resolve()))
    env.update({k: str(v) for k, v in (extra or {}).items()})
    if gpus > 1:
        env["NPROC_PER_NODE"] = str(gpus)
        env["MASTER_PORT"] = str(master_port(model))
    return env


def loss_curve(logging_jsonl: Path, out_png: Path, title: str) -> int:
    """Plot the training loss from ms-swift's logging.jsonl; returns the number of points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = [], []
    if logging_jsonl.is_file():
        for line in logging_jsonl.read_bytes().splitlines():
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if "loss" in rec and "global_step/max_steps" in rec:
                steps.append(int(str(rec["global_step/max_steps"]).split("/")[0]))
                losses.append(float(rec["loss"]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.4)
    save_figure(fig, out_png)
    return len(steps)


def train(model: str, *, model_path: str, model_type: str, template: str, dataset: str, work_dir, sentinel,
          settings: dict, gpus: int, workers: int, env: dict | None = None, revision: str | None = None,
          use_hf: bool = False) -> dict:
    """Run (or resume) one model's LoRA training and write the sentinel naming the adapter."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    resume = latest_checkpoint(work_dir)
    if resume:
        log.info("%s: resuming from %s", model, resume)
    cmd = sft_command(model_path=model_path, model_type=model_type, template=template, dataset=dataset,
                      work_dir=work_dir, settings=settings, workers=workers, revision=revision, use_hf=use_hf,
                      resume_from=resume)
    log.info("running: %s", shlex.join(cmd))
    result = subprocess.run(cmd, env=job_env(model, gpus, env))
    if result.returncode != 0:
        raise TrainingError(f"{model}: swift sft failed with exit code {result.returncode} (its output is above); "
                            f"rerun to resume from {latest_checkpoint(work_dir) or 'the start'}")
    final = latest_checkpoint(work_dir)
    if final is None:
        raise RuntimeError(f"swift sft finished but left no checkpoint in {work_dir}")
    logs = work_dir / "logging.jsonl"
    points = loss_curve(logs, Path(sentinel).with_name("loss.png"), f"{model}: LoRA training")
    with atomic_output(Path(sentinel).with_name("train_log.jsonl")) as out:
        out.write(logs.read_bytes() if logs.is_file() else b"")
    state = orjson.loads((final / "trainer_state.json").read_bytes())
    info = {"model": model, "adapter": str(final), "global_step": state.get("global_step"),
            "resumed_from": str(resume) if resume else None, "loss_points": points, "command": cmd}
    write_json(sentinel, info)
    return info
