"""LoRA fine-tuning with `swift sft`, one job per model, resumable.

Checkpoints live in an undeclared work folder (results/models/<model>/work/): Snakemake deletes
the declared outputs of a failed job, and a LoRA run's checkpoints must survive that. The
declared output is a small sentinel JSON written last, naming the final adapter. A rerun
after a kill resumes from the newest complete checkpoint (`--resume_from_checkpoint`
restores optimizer, scheduler and data position), but only if the work folder was made from
the same model, data and weight-affecting settings (its manifest, see core.workstate): a
changed learning rate trains a new adapter from step 0.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import orjson

from sarchat_bench.core.errors import InputError, SarchatError
from sarchat_bench.core.io import atomic_output, iter_jsonl, save_figure, write_json, write_jsonl
from sarchat_bench.core.sharding import record_count
from sarchat_bench.core.workstate import claim_folder, digest, file_digest
from sarchat_bench.models.grouping import grouping_of, image_size, turn_passes
from sarchat_bench.models.jobs import JOB_CHECK_KEYS, ModelJob
from sarchat_bench.models.plan import epochs_run
from sarchat_bench.models.sources import OFFLINE, cache_env, local_model, source_identity
from sarchat_bench.paper.records import IMAGE_ROOT_ENV, written_size

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


def is_final(checkpoint: Path) -> bool:
    """Whether a checkpoint was saved at the end of its run (its step is the run's last)."""
    state = orjson.loads((checkpoint / "trainer_state.json").read_bytes())
    return bool(state.get("max_steps")) and state["global_step"] >= state["max_steps"]


def _value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


class TrainingError(SarchatError, RuntimeError):
    pass


def swift_command() -> list[str]:
    """ms-swift's launcher in the running interpreter. The `swift` console script would run the
    interpreter named in its shebang, which is the default venv's even inside another
    environment; ms-swift re-launches `sys.executable` for the training itself."""
    return [sys.executable, "-m", "swift.cli.main"]


def sft_command(*, model_path: str, model_type: str, template: str, dataset: str, work_dir: str | os.PathLike,
                settings: dict, load: dict | None = None,
                resume_from: str | os.PathLike | None = None) -> list[str]:
    """The `swift sft` argument list for one model. `load` holds the registry entry's model-load
    options (e.g. attn_impl, local_repo_path), which inference passes to its engine too."""
    cmd = [*swift_command(), "sft", "--model", model_path, "--model_type", model_type, "--template", template,
           "--dataset", dataset, "--output_dir", str(work_dir), "--add_version", "false", "--check_model", "false",
           "--split_dataset_ratio", "0", "--report_to", "none"]
    # Every setting is a `swift sft` option (config.yaml's `training:` plus the model's `train:`)
    # but `grouping`, which made the dataset (models.grouping); extra_args holds options without
    # a default there.
    options = {k: v for k, v in settings.items() if k not in ("extra_args", "grouping")}
    if grouping_of(settings) != "none":
        # The loss on every assistant turn of a conversation, as on every single-turn sample:
        # ms-swift 4.6's default, stated so that another default could not drop earlier turns.
        options["loss_scale"] = "default"
    if uses_packing(settings):
        load = {"attn_impl": "flash_attn", **(load or {})}  # ms-swift packs only with flash attention
    for key, value in [*options.items(), *sorted((load or {}).items()),
                       *sorted(settings.get("extra_args", {}).items())]:
        if value is not None:
            cmd += [f"--{key}", _value(value)]
    if resume_from:
        cmd += ["--resume_from_checkpoint", str(resume_from)]
    return cmd


def uses_packing(settings: dict) -> bool:
    return bool(settings.get("packing") or settings.get("padding_free"))


def check_packing_support(model: str, spec) -> None:
    """Refuse, before `swift sft` loads anything, packing or padding-free training that ms-swift
    would refuse (the template cannot) or that could not start (flash-attn is not installed)."""
    import importlib.util

    from sarchat_bench.models.registry import packing_problem

    problem = packing_problem(spec.template, spec.model_type)
    if problem is None and importlib.util.find_spec("flash_attn") is None:
        problem = (f"train.packing / padding_free needs flash-attn, which environment {spec.environment!r} lacks "
                   "(on a GPU node: `make flash-attn`, envs/gpu/flash-attn.txt)")
    if problem:
        raise TrainingError(f"{model}: {problem}")


def job_env(model: str, gpus: int, cache_dir: str | os.PathLike, extra: dict | None = None,
            threads: int | None = None, image_root: str | os.PathLike | None = None) -> dict:
    """The environment of a model job: offline, reading the model cache, plus the entry's own
    variables; several GPUs launch torchrun with a port of the model's own. Each process's
    torch threads are its share of the job's CPUs: torch would otherwise start one per core of
    the node, whatever the job was given. `image_root` becomes ms-swift's ROOT_IMAGE_DIR, which
    it resolves the records' relative image paths against."""
    env = {**os.environ, **cache_env(cache_dir), **OFFLINE}
    if image_root:
        env[IMAGE_ROOT_ENV] = str(Path(image_root).resolve())
    if threads:
        env.setdefault("OMP_NUM_THREADS", str(max(1, threads // max(1, gpus))))
    env.update({k: str(v) for k, v in (extra or {}).items()})
    if gpus > 1:
        env["NPROC_PER_NODE"] = str(gpus)
        env["MASTER_PORT"] = str(master_port(model))
    return env


def adapter_digest(checkpoint: Path) -> str:
    """The adapter's identity: its weights, so that predictions of another adapter (retrained,
    even with the same settings) are never taken for this one's."""
    weights = sorted(checkpoint.glob("adapter_model.*"))
    if not weights:
        raise TrainingError(f"{checkpoint}: no adapter_model.* weights (not a LoRA checkpoint?)")
    return digest([file_digest(w) for w in weights])


def loss_points(logging_jsonl: Path) -> tuple[list[int], list[float]]:
    """The (step, training loss) points of ms-swift's logging.jsonl (a missing file has none)."""
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
    return steps, losses


def loss_curve(logging_jsonl: Path, out_png: Path, title: str) -> int:
    """Plot the training loss from ms-swift's logging.jsonl; returns the number of points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = loss_points(logging_jsonl)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.4)
    save_figure(fig, out_png)
    return len(steps)


def train_log_path(sentinel: str | os.PathLike) -> Path:
    """ms-swift's log of the run, copied beside the sentinel (the loss curve reads it)."""
    return Path(sentinel).with_name("train_log.jsonl")


# Over-long samples a training job accepts without a setting (training.max_overlong_fraction).
DEFAULT_MAX_OVERLONG_FRACTION = 0.001


def record_shapes(dataset: str | os.PathLike, image_root: str | os.PathLike | None = None
                  ) -> list[tuple[list[tuple[int, int]], list[tuple[str, str]]]]:
    """Each training record's image sizes and (role, content) messages. SARChat records carry
    their image's size in `truth`; another file's images are read for their size (header only,
    once per file), relative paths below `image_root` (paper.records.image_file)."""
    sizes: dict[str, tuple[int, int]] = {}
    shapes = []
    for line, rec in enumerate(iter_jsonl(dataset), start=1):
        try:
            messages = [(m["role"], m["content"]) for m in rec["messages"]]
            written = written_size(rec)
            image_sizes = []
            for path in rec.get("images", []):
                if written is None and path not in sizes:
                    sizes[path] = image_size(None, path, image_root, dataset, f"line {line}")
                image_sizes.append(written or sizes[path])
        except (KeyError, TypeError, orjson.JSONDecodeError) as err:
            raise InputError(dataset, f"cannot size the record ({type(err).__name__}: {err})",
                             record=f"line {line}") from None
        shapes.append((image_sizes, messages))
    return shapes


def overlong_samples(job: ModelJob, dataset: str | os.PathLike, model_path: str | os.PathLike) -> dict:
    """How many training samples are longer than max_length for this model: image tokens as
    its ms-swift template counts them, the texts with its own tokenizer (distinct texts once),
    the template's chat turn around each message (models.tokens)."""
    from sarchat_bench.models.tokens import Conversations, TextTokens, processor_params

    spec = job.spec
    text = TextTokens.of_model(model_path)
    max_pixels = spec.settings.get("extra_args", {}).get("max_pixels")
    lengths = Conversations(spec.template, text, spec.env, processor_params(spec.template, model_path, text),
                            max_pixels).lengths(record_shapes(dataset, job.run.image_root))
    max_length = spec.settings["max_length"]
    return {"samples": len(lengths), "over": sum(1 for n in lengths if n > max_length),
            "longest": max(lengths, default=0), "max_length": max_length}


def check_overlong(job: ModelJob, counted: dict) -> None:
    """Stop before `swift sft` when more samples than training.max_overlong_fraction are over
    max_length: ms-swift would drop each one silently and train on a random other sample."""
    from sarchat_bench.models.tokens import image_size_knob

    limit = job.run.options.get("max_overlong_fraction", DEFAULT_MAX_OVERLONG_FRACTION)
    samples, over = counted["samples"], counted["over"]
    log.info("%s: %d of %d training samples are longer than max_length %d tokens (longest %d; at most %.3g %% "
             "allowed)", job.model, over, samples, counted["max_length"], counted["longest"], 100 * limit)
    if samples and over / samples > limit:
        raise TrainingError(
            f"{job.model}: {over} of {samples} training samples ({100 * over / samples:.2f} %) are longer than "
            f"max_length {counted['max_length']} (longest {counted['longest']} tokens), more than "
            f"training.max_overlong_fraction ({100 * limit:g} %); ms-swift would drop them silently. Raise the "
            f"model's train: {{max_length: {counted['longest']}}}, or shrink its images "
            f"({image_size_knob(job.spec.template)}), or raise max_overlong_fraction")


def training_file(job: ModelJob, dataset: str, work_dir) -> tuple[str, dict]:
    """What `swift sft` reads, and the settings it reads it with. A grouped file that the run
    goes through more than once is written out once per pass, each with its conversations'
    turns in another order (models.grouping.turn_passes), beside the work folder; the run then
    counts one epoch over that file where it counted epochs over the grouped one."""
    settings = job.spec.settings
    if grouping_of(settings) == "none":
        return dataset, {}
    records = record_count(dataset)
    # (less a rounding error's worth: 250.0000001 epochs are 250 passes)
    passes = math.ceil(epochs_run(records, {**settings, "gpus": job.spec.gpus or 0}) - 1e-9)
    if passes <= 1:
        return dataset, {}
    passes_file = Path(work_dir).with_name("turn_passes.jsonl")
    write_jsonl(passes_file, turn_passes(dataset, passes))
    log.info("%s: the run goes through the %d records of %s %d times; each pass has its own turn order (%s)",
             job.model, records, dataset, passes, passes_file)
    if settings.get("max_steps"):
        return str(passes_file), {}
    return str(passes_file), {"num_train_epochs": settings["num_train_epochs"] / passes}


def train(job: ModelJob, *, dataset: str, work_dir, sentinel, source_info=None) -> dict:
    """Run (or resume) one model's LoRA training and write the sentinel naming the adapter.

    The job's spec shapes the weights and its run options do not, so only the spec (with the
    model's identity and the dataset's digest) goes into `made_from`, the manifest that decides
    whether the checkpoints in `work_dir` may be resumed."""
    model, spec = job.model, job.spec
    model_path, load = local_model(spec, source_info, job.run.model_lock)
    dataset, read_with = training_file(job, dataset, work_dir)
    made_from = {"spec": spec.as_dict(), "model": source_identity(model_path, spec.source),
                 "dataset": file_digest(dataset)}
    if uses_packing(spec.settings):
        check_packing_support(model, spec)
    work_dir = Path(work_dir)
    counted = overlong_samples(job, dataset, model_path)
    check_overlong(job, counted)
    resume = latest_checkpoint(work_dir) if claim_folder(work_dir, made_from, model) else None
    options = {k: v for k, v in job.run.options.items() if k not in JOB_CHECK_KEYS}
    cmd = sft_command(model_path=model_path, model_type=spec.model_type, template=spec.template, dataset=dataset,
                      work_dir=work_dir, settings={**spec.settings, **read_with, **options}, load=load,
                      resume_from=resume)
    if resume and is_final(resume):
        # A job killed after its last save: resuming would train one step more than asked
        # (the trainer steps once before it checks max_steps) and call that the adapter.
        log.info("%s: %s is the final checkpoint of this run; nothing left to train", model, resume)
    else:
        if resume:
            log.info("%s: resuming from %s", model, resume)
        else:
            log.info("%s: training from step 0", model)
        env = job_env(model, spec.gpus or 0, job.run.cache_dir, spec.env, job.run.threads, job.run.image_root)
        log.info("running: %s (images resolved against %s=%s)", shlex.join(cmd), IMAGE_ROOT_ENV,
                 env.get(IMAGE_ROOT_ENV, "(unset)"))
        result = subprocess.run(cmd, env=env)
        if result.returncode != 0:
            raise TrainingError(f"{model}: swift sft failed with exit code {result.returncode} (its output is "
                                f"above); rerun to resume from {latest_checkpoint(work_dir) or 'the start'}")
    final = latest_checkpoint(work_dir)
    if final is None:
        raise TrainingError(f"swift sft finished but left no checkpoint in {work_dir}")
    logs = work_dir / "logging.jsonl"
    points = len(loss_points(logs)[0])  # the curve is the loss_curve job's
    with atomic_output(train_log_path(sentinel)) as out:
        out.write(logs.read_bytes() if logs.is_file() else b"")
    state = orjson.loads((final / "trainer_state.json").read_bytes())
    info = {"model": model, "adapter": str(final), "global_step": state.get("global_step"),
            "resumed_from": str(resume) if resume else None, "loss_points": points, "command": cmd,
            "made_from": digest(made_from), "adapter_digest": adapter_digest(final),
            "training_samples": counted["samples"], "samples_over_max_length": counted["over"],
            "max_length": counted["max_length"], "dataset_read": dataset}
    write_json(sentinel, info)
    return info


def merge(job: ModelJob, *, adapter: str, out, source_info=None) -> None:
    """Merge a LoRA adapter into full weights (`swift export`), for backends that need them."""
    model_path, load = local_model(job.spec, source_info, job.run.model_lock)
    cmd = [*swift_command(), "export", "--model", model_path, "--model_type", job.spec.model_type, "--template",
           job.spec.template, "--adapters", adapter, "--merge_lora", "true", "--output_dir", str(out),
           "--exist_ok", "true"]
    for key, value in sorted(load.items()):
        cmd += [f"--{key}", _value(value)]
    log.info("running: %s", shlex.join(cmd))
    result = subprocess.run(cmd, env=job_env(job.model, 0, job.run.cache_dir, job.spec.env))
    if result.returncode != 0:
        raise TrainingError(f"{job.model}: swift export failed with exit code {result.returncode} (its output is "
                            "above)")
