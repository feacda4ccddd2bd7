"""The contract of a model job (train, merge, infer), defined once: what its output depends on,
how it runs, and what it asks the cluster for.

A registry entry's `train:` or `infer:` settings fall into three parts:
- the spec: what the output depends on (the model, its source and environment, the settings
  that shape the weights or the answers). A change reruns the job, and its checkpoints or
  partial answers are not resumed (they carry the spec in their manifest: core.workstate);
- the run options: how the job runs, not what it makes (logging and saving cadence, batch
  size, request concurrency, the model cache, the job's CPUs, where the dataset's images are
  mounted). A change reruns nothing;
- the resources: what the job asks the scheduler for (GPUs, CPUs, memory, time). A change
  reruns nothing, and a retried job asks for more.

The rules pass the spec and the run options as two parameters: Snakemake compares the first
between runs and not the second (rules/common.smk, `untracked`). The commands read both back
into a ModelJob, which `train`, `merge` and `predict` take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from sarchat_bench.models.registry import entry, model_path

Section = Literal["train", "infer"]
RESOURCE_KEYS = ("gpus", "cpus_per_gpu", "mem_mb", "runtime")
RUN_OPTION_KEYS = {"train": ("logging_steps", "save_steps", "save_total_limit", "max_overlong_fraction"),
                   "infer": ("batch_size", "requests_per_call", "concurrency", "retries", "request_timeout_s")}
# Run options the job reads itself, not `swift sft` options (never on its command line).
JOB_CHECK_KEYS = ("max_overlong_fraction",)
# How a test file is cut into jobs, not what a job makes: changing it renames the shards.
LAYOUT_KEYS = ("samples_per_shard",)
# Settings written down with the value that leaving them out means: not in the spec, so that
# writing them down retrains nothing.
NEUTRAL_SETTINGS = {"grouping": "none"}


@dataclass(frozen=True)
class JobSpec:
    """What a model job's output depends on."""

    model_path: str
    model_type: str | None
    template: str | None
    source: dict
    env: dict
    load: dict
    environment: str
    settings: dict
    gpus: int | None = None  # training only: the world size shapes the effective batch, so the weights

    def as_dict(self) -> dict:
        spec = {"model_path": self.model_path, "model_type": self.model_type, "template": self.template,
                "source": self.source, "env": self.env, "load": self.load, "environment": self.environment,
                "settings": self.settings}
        if self.gpus is not None:
            spec["gpus"] = self.gpus
        return spec

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, spec: dict) -> JobSpec:
        return cls(spec["model_path"], spec.get("model_type"), spec.get("template"), spec["source"],
                   spec.get("env", {}), spec.get("load", {}), spec["environment"], spec["settings"], spec.get("gpus"))


@dataclass(frozen=True)
class RunOptions:
    """How a model job runs: its run options (`swift sft` or engine options), the model cache,
    the CPUs the job was given, the image root: the SARDet-100K folder the records' image
    paths are relative to (paper.records.image_file), wherever it is mounted for this run, and
    the model lock its prefetched snapshot is checked against (models.sources)."""

    options: dict
    cache_dir: str
    threads: int | None = None
    image_root: str | None = None
    model_lock: str | None = None

    def to_json(self) -> str:
        return json.dumps({"options": self.options, "cache_dir": self.cache_dir, "threads": self.threads,
                           "image_root": self.image_root, "model_lock": self.model_lock}, sort_keys=True)

    @classmethod
    def from_dict(cls, run: dict) -> RunOptions:
        return cls(run["options"], run["cache_dir"], run.get("threads"), run.get("image_root"), run.get("model_lock"))


@dataclass(frozen=True)
class Resources:
    """What a model job asks the scheduler for, per attempt."""

    gpus: int
    cpus_per_gpu: int
    mem_mb: int
    runtime: int  # minutes

    @property
    def threads(self) -> int:
        return max(1, self.gpus) * self.cpus_per_gpu

    def request(self, site: dict, attempt: int = 1, runtime: int | None = None) -> dict:
        """The request of one attempt, as rule resources: memory and time grow with the attempt
        of a retried job, capped at the site's limits (a training run longer than the limit
        resumes from its checkpoint in the next attempt). Partition, GPU type and the GPU
        request itself apply only to jobs that ask for GPUs: a CPU-only model (gpus: 0) gets a
        plain CPU job, never `--gpus=<type>:0`."""
        return {
            "gpu": self.gpus,
            "cpus_per_gpu": self.cpus_per_gpu,
            "mem_mb": _capped(self.mem_mb * attempt, site.get("max_mem_mb", 0)),
            "runtime": _capped((runtime or self.runtime) * attempt, site.get("max_runtime", 0)),
            "slurm_partition": site.get("gpu_partition", "") if self.gpus else site.get("cpu_partition", ""),
            "gpu_model": site.get("gpu_model", "") if self.gpus else "",
            "slurm_account": site.get("account", ""),
        }


# The resources a rule declares, in the order of Resources.request.
RESOURCE_NAMES = ("gpu", "cpus_per_gpu", "mem_mb", "runtime", "slurm_partition", "gpu_model", "slurm_account")


def _capped(value: int, limit: int) -> int:
    return min(value, limit) if limit else value


@dataclass(frozen=True)
class ModelJob:
    """One model job: the model, the section of its entry (train: training and merging; infer:
    inference), and the three parts of its settings."""

    model: str
    section: Section
    spec: JobSpec
    run: RunOptions
    resources: Resources = field(compare=False)

    @classmethod
    def of(cls, config: dict, model: str, section: Section, threads: int | None = None,
           image_root: str | None = None) -> ModelJob:
        """The job of `model` that the config describes. `threads`: the CPUs the job was given
        (Snakemake's, at most --cores on a local run); training's dataloader workers are its
        share per GPU. `image_root`: where the records' images are (rules/common.smk IMAGE_ROOT)."""
        e = entry(config, model)
        settings = e[section]
        resources = Resources(*(settings[k] for k in RESOURCE_KEYS))
        spec = JobSpec(
            model_path=model_path(e), model_type=e.get("model_type"), template=e.get("template"), source=e["source"],
            env=e["env"], load=e["load"], environment=environment(e, section),
            settings={k: v for k, v in settings.items()
                      if k not in RESOURCE_KEYS and k not in RUN_OPTION_KEYS[section] and k not in LAYOUT_KEYS
                      and NEUTRAL_SETTINGS.get(k, ...) != v},
            gpus=resources.gpus if section == "train" else None)
        options = {k: v for k, v in settings.items() if k in RUN_OPTION_KEYS[section]}
        if section == "train" and threads is not None:
            options["dataloader_num_workers"] = max(1, threads // max(1, resources.gpus))
        run = RunOptions(options, config["cache_dir"], threads, image_root, config.get("model_lock") or None)
        return cls(model, section, spec, run, resources)

    @classmethod
    def read(cls, model: str, section: Section, spec_json: dict, run_json: dict) -> ModelJob:
        """A job from the two parameters its rule passed (the resources stay the scheduler's)."""
        return cls(model, section, JobSpec.from_dict(spec_json), RunOptions.from_dict(run_json),
                   Resources(spec_json.get("gpus") or 0, 1, 0, 0))


def environment(e: dict, section: Section) -> str:
    """The environment a model's jobs run in (envs/<name>.txt): vLLM inference has its own."""
    if section == "infer" and e["infer"]["backend"] == "vllm":
        return "vllm"
    return e["environment"]
