"""Requests a SLURM cluster can never run, found before any job is submitted.

Unless a site sets EnforcePartLimits, SLURM accepts a job that asks for more CPUs than any node
of its partition has (or more time than the partition allows) and leaves it PENDING for ever,
and Snakemake waits without a word. So before submitting, the workflow asks SLURM itself,
with `sbatch --test-only`, whether each distinct model-job request could ever start, and stops
with one line per request that could not.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from sarchat_bench.core.errors import SarchatError


class ImpossibleRequest(SarchatError, ValueError):
    pass


@dataclass(frozen=True)
class Request:
    partition: str  # "" for the cluster's default partition
    account: str  # "" to let SLURM pick the user's default
    cpus: int
    mem_mb: int
    gpus: int
    gpu_model: str
    minutes: int

    def sbatch_args(self) -> list[str]:
        """The request as sbatch options, as the executor plugin renders them."""
        args = [f"--time={self.minutes}", f"--mem={self.mem_mb}"]
        if self.partition:
            args.append(f"--partition={self.partition}")
        if self.account:
            args.append(f"--account={self.account}")
        if self.gpus:
            args += [f"--gpus={self.gpu_model + ':' if self.gpu_model else ''}{self.gpus}",
                     f"--cpus-per-gpu={max(1, self.cpus // self.gpus)}"]
        else:
            args.append(f"--cpus-per-task={self.cpus}")
        return args


def why_not(request: Request) -> str | None:
    """SLURM's reason why `request` could never start, or None if it could."""
    result = subprocess.run(["sbatch", "--test-only", *request.sbatch_args(), "--wrap", "true"],
                            capture_output=True, text=True)
    if result.returncode == 0:
        return None
    return " ".join(line.removeprefix("sbatch: error: ") for line in result.stderr.strip().splitlines())


def check(requests: dict[str, Request]) -> None:
    """Raise ImpossibleRequest naming the jobs (keys) whose request SLURM could never start."""
    jobs_of: dict[Request, list[str]] = {}
    for job, request in requests.items():
        jobs_of.setdefault(request, []).append(job)
    problems = []
    for request, jobs in jobs_of.items():
        reason = why_not(request)
        if reason:
            shown = ", ".join(jobs[:3]) + (f" and {len(jobs) - 3} more" if len(jobs) > 3 else "")
            problems.append(f"{shown} ({' '.join(request.sbatch_args())}): {reason}")
    if problems:
        raise ImpossibleRequest(
            "SLURM could never start " + "; ".join(problems) + ". Such a job would wait in the queue for ever: "
            "change the model's gpus, cpus_per_gpu, mem_mb or runtime in config.yaml, or slurm/site.yaml")


def model_job_requests(config: dict, needed) -> dict[str, Request]:
    """The requests of the model jobs a run needs, `needed` being (model, section) pairs; a
    model that is not fine-tuned has no training job to check."""
    from sarchat_bench.models.jobs import ModelJob
    from sarchat_bench.models.registry import entry

    requests = {}
    for model, section in sorted(needed):
        if section == "train" and entry(config, model)["mode"] != "finetune":
            continue
        resources = ModelJob.of(config, model, section).resources
        r = resources.request(config["slurm"])
        name = {"train": "train_model", "infer": "infer_shard"}[section]
        requests[f"{name} ({model})"] = Request(partition=r["slurm_partition"], account=r["slurm_account"],
                                                cpus=resources.threads, mem_mb=r["mem_mb"], gpus=r["gpu"],
                                                gpu_model=r["gpu_model"], minutes=r["runtime"])
    return requests
