# Helpers shared by the rules files: paths, wildcard constraints and config lookups.
# Logic lives in the sarchat_bench package (workflow_scripts/); this file only wires it up.

import json
import re
import shlex
import sys
import threading
from pathlib import Path

SCRIPTS_DIR = Path(workflow.basedir) / "workflow_scripts"
sys.path.insert(0, str(SCRIPTS_DIR))
# Jobs run `python -m sarchat_bench`, locally and on cluster nodes alike.
shell.prefix(f"export PYTHONPATH={shlex.quote(str(SCRIPTS_DIR))}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

from sarchat_bench.registry import RegistryError, check_local_source, entry, job_settings, run_options  # noqa: E402
from sarchat_bench.registry import model_path, run_models, scorer_coords  # noqa: E402
from sarchat_bench.io import InputError  # noqa: E402
from sarchat_bench.sharding import record_count, shard_count, shard_labels  # noqa: E402
from sarchat_bench.tasks import CELLS, TASKS  # noqa: E402
from sarchat_bench.templates import DEFAULT_PATH, load_templates, templates_digest  # noqa: E402
from sarchat_bench.tiny_models import ARCHITECTURES  # noqa: E402

RESULTS = "results"
SARCHAT = f"{RESULTS}/sarchat"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
DEMO_ROOT = f"{RESULTS}/demo/SARDet_100K"
DOWNLOAD_ROOT = f"{RESULTS}/download/SARDet_100K"

DATASET = config["dataset"]
TRAIN_SPLITS = DATASET["train_splits"]
TEST_SPLITS = DATASET["test_splits"]
if set(TRAIN_SPLITS) & set(TEST_SPLITS):
    raise WorkflowError(
        f"dataset.train_splits {TRAIN_SPLITS} and test_splits {TEST_SPLITS} share "
        f"{sorted(set(TRAIN_SPLITS) & set(TEST_SPLITS))}: the same images would train and test the models"
    )
if config["sardet_root"] and config["download"]["source"] == "none":
    if not Path(config["sardet_root"], "Annotations").is_dir():
        raise WorkflowError(
            f"sardet_root {config['sardet_root']!r} is not a SARDet-100K folder (it has no Annotations/ folder)"
        )
SPLITS = list(dict.fromkeys(TRAIN_SPLITS + TEST_SPLITS))
TASK_SETTINGS = DATASET.get("tasks", {})
try:  # checked here: a broken template fails before any job
    TEMPLATES = load_templates(DATASET["templates"] or DEFAULT_PATH)
except InputError as err:
    raise WorkflowError(f"dataset.templates: {err}") from None
# Empty: the generator jobs' own default, the package's template file.
TEMPLATES_OPTION = f"--templates {shlex.quote(DATASET['templates'])}" if DATASET["templates"] else ""


wildcard_constraints:
    split="[A-Za-z0-9_]+",
    task="|".join(TASKS),
    cell="|".join(CELLS),
    shard=r"\d+-of-\d+",


def sardet_root():
    """Where SARDet-100K is read from: the download, the user's copy, or the demo data."""
    if config["download"]["source"] != "none":
        return DOWNLOAD_ROOT
    return config["sardet_root"] or DEMO_ROOT


def cancel_rate_limiter_timers():
    """Let Snakemake exit as soon as the workflow is done.

    Snakemake 9.27's job-rate limiter arms a non-daemon one-second `threading.Timer` on every
    scheduling pass (`JobScheduler._schedule_reevalutation`), and the interpreter waits for the
    last one before it exits: up to a second added to every run, 8 % of a full dataset build.
    The timers only wake the scheduler, which has returned by the time `onsuccess` runs."""
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


def untracked(value):
    """A param whose change reruns no job (how a job runs, not what it makes). Snakemake counts
    a param function that takes `threads` as derived from the job and leaves it out of the
    params it compares between runs."""
    return lambda wildcards, threads: value


def cells_of(task):
    return [cell for cell, (cell_task, _) in CELLS.items() if cell_task == task]


def box_tables(splits):
    return [f"{SARCHAT}/annotations/{split}.boxes.json" for split in splits]


def annotation_reports(splits):
    return [f"{SARCHAT}/annotations/{split}.report.json" for split in splits]


def build_settings(tasks):
    """The settings a generator job sees; a change reruns only the jobs of the tasks it concerns."""
    return json.dumps(
        {"tasks": {t: TASK_SETTINGS.get(t, {}) for t in tasks}, "categories": DATASET["categories"]}, sort_keys=True
    )


def build_params(tasks):
    """A generator job's params: seed, settings and templates (the option naming a file of the
    user's, and a digest of the templates these tasks use, so that editing one task's templates
    reruns only its files)."""
    return {
        "seed": DATASET["seed"],
        "settings": build_settings(tasks),
        "templates_option": TEMPLATES_OPTION,
        "templates_digest": templates_digest(TEMPLATES, tasks),
    }


TEST_FILES = {cell: f"{SARCHAT}/test/{cell}.jsonl" for cell in CELLS}
# Each generator job also writes a summary (records, skips) that dataset_stats reads.
SUMMARIES = f"{SARCHAT}/summaries"
TRAIN_SUMMARY = f"{SUMMARIES}/train.json"
TEST_SUMMARIES = [f"{SUMMARIES}/test/{task}.json" for task in TASKS]
STATS_DIR = f"{SARCHAT}/stats"
STATS_TABLES = [
    f"{STATS_DIR}/{t}.{ext}"
    for t in (
        "table1_categories",
        "table2_aspect_ratio",
        "table4_aspect_ratio_by_category",
        "table5_tasks",
        "filter_report",
        "generation_report",
    )
    for ext in ("csv", "md", "html")
]
STATS_FIGURES = [f"{STATS_DIR}/categories.png", f"{STATS_DIR}/tasks.png"]
STATS_OUTPUTS = STATS_TABLES + STATS_FIGURES
# What both statistics jobs read (the tables job reads the box tables too).
STATS_SOURCES = {
    "train_reports": annotation_reports(TRAIN_SPLITS),
    "test_reports": annotation_reports(TEST_SPLITS),
    "train_summaries": TRAIN_SUMMARY,
    "test_summaries": TEST_SUMMARIES,
}
VALIDATION = [f"{SARCHAT}/validation/train.json"] + [f"{SARCHAT}/validation/test/{c}.json" for c in CELLS]
DATASET_OUTPUTS = [f"{SARCHAT}/train.jsonl", *TEST_FILES.values(), *STATS_OUTPUTS]


# ---- models (issue #3) and scores (issue #4) ----
try:
    RUN_MODELS = run_models(config)
    for baseline in config["report"]["baselines"]:
        if entry(config, baseline)["mode"] != "baseline":
            raise RegistryError(f"report.baselines: model {baseline!r} is not of mode baseline")
except RegistryError as err:
    raise WorkflowError(str(err)) from None
# The models of `run` and the baselines scored beside them.
SCORED_MODELS = list(dict.fromkeys(RUN_MODELS + config["report"]["baselines"]))

MODELS_DIR = f"{RESULTS}/models"
PREDICTIONS = f"{RESULTS}/predictions"
SCORES = f"{RESULTS}/scores"
# Where models are downloaded once (prefetch_model) and read offline by the model jobs.
CACHE_DIR = config["cache_dir"]


def model_entry(model):
    return entry(config, model)


def model_mode(model):
    return model_entry(model)["mode"]


def models_in_mode(*modes):
    return [m for m in RUN_MODELS if model_mode(m) in modes]


def job_environment(model, section):
    """The environment a model's jobs run in (envs/<name>.txt): vLLM inference has its own."""
    e = model_entry(model)
    if section == "infer" and e["infer"]["backend"] == "vllm":
        return "vllm"
    return e["environment"]


def conda_env(section):
    return lambda wildcards: f"../envs/{job_environment(wildcards.model, section)}.yaml"


def _spec(model, section):
    """What a train/infer job's output depends on; other config changes never rerun it."""
    e = model_entry(model)
    check_local_source(model, e)
    spec = {
        "model_path": model_path(e),
        "model_type": e.get("model_type"),
        "template": e.get("template"),
        "source": e["source"],
        "env": e["env"],
        "load": e["load"],
        "environment": job_environment(model, section),
        "settings": job_settings(e, section),
    }
    if section == "train":
        spec["gpus"] = e["train"]["gpus"]  # the world size shapes the effective batch, so the weights
    return spec


def train_spec(wildcards):
    return json.dumps(_spec(wildcards.model, "train"), sort_keys=True)


def infer_spec(wildcards):
    return json.dumps(_spec(wildcards.model, "infer"), sort_keys=True)


def run_settings(section):
    """How a job runs, not what it makes: logging and saving cadence, batch size, loader
    workers, the model cache. The param is derived from `threads`, and Snakemake does not count
    derived params as a settings change (as with resources), so changing these reruns nothing;
    tests/test_workflow.py pins that."""

    def get(wildcards, threads):
        e = model_entry(wildcards.model)
        options = run_options(e, section)
        if section == "train":
            options["dataloader_num_workers"] = max(1, threads // max(1, e["train"]["gpus"]))
        return json.dumps({"options": options, "cache_dir": CACHE_DIR, "threads": threads}, sort_keys=True)

    return get


# Site facts for SLURM (slurm/site.yaml, which the profile loads); unused on a local run.
SLURM = config["slurm"]


def _capped(value, limit):
    return min(value, limit) if limit else value


MODEL_JOB_RESOURCES = ("gpu", "cpus_per_gpu", "mem_mb", "runtime", "slurm_partition", "gpu_model", "slurm_account")


def model_job_request(model, section, attempt=1, runtime=None):
    """What a model job (train, merge, infer) asks for. Memory and time grow with the attempt of a
    retried job, capped at the site's limits: a training run longer than the limit resumes from
    its checkpoint in the next attempt. Partition, GPU type and the GPU request itself apply
    only to jobs that ask for GPUs, so a CPU-only model (gpus: 0) gets a plain CPU job."""
    settings = model_entry(model)[section]
    gpus = settings["gpus"]
    return {
        "gpu": gpus,
        "cpus_per_gpu": settings["cpus_per_gpu"],
        "mem_mb": _capped(settings["mem_mb"] * attempt, SLURM["max_mem_mb"]),
        "runtime": _capped((runtime or settings["runtime"]) * attempt, SLURM["max_runtime"]),
        "slurm_partition": SLURM["gpu_partition"] if gpus else SLURM["cpu_partition"],
        "gpu_model": SLURM["gpu_model"] if gpus else "",
        "slurm_account": SLURM["account"],
    }


def model_job_resources(section, runtime=None):
    """model_job_request as a rule's resources."""

    def resource(key):
        return lambda wildcards, attempt: model_job_request(wildcards.model, section, attempt, runtime)[key]

    return {key: resource(key) for key in MODEL_JOB_RESOURCES}


# The model jobs that a job of these rules stands for: merge_predictions waits on inference
# shards (and their adapter's training) that exist only once the test files are built.
MODEL_JOB_SECTIONS = {
    "train_model": ("train",),
    "merge_adapter": ("train",),
    "infer_shard": ("infer",),
    "merge_predictions": ("infer", "train"),
}


def check_cluster_can_run_model_jobs(jobs):
    """On SLURM, before any job is submitted: SLURM must be able to start the model jobs this
    run needs, or they would wait in the queue for ever (sarchat_bench.slurm_limits)."""
    from types import SimpleNamespace

    from sarchat_bench.slurm_limits import ImpossibleRequest, Request, check

    requests = {}
    needed = {(job.wildcards.model, section) for job in jobs for section in MODEL_JOB_SECTIONS.get(job.rule.name, ())}
    for model, section in sorted(needed):
        if section == "train" and model_mode(model) != "finetune":
            continue
        r = model_job_request(model, section)
        name = {"train": "train_model", "infer": "infer_shard"}[section]
        requests[f"{name} ({model})"] = Request(
            partition=r["slurm_partition"],
            account=r["slurm_account"],
            cpus=job_threads(section)(SimpleNamespace(model=model)),
            mem_mb=r["mem_mb"],
            gpus=r["gpu"],
            gpu_model=r["gpu_model"],
            minutes=r["runtime"],
        )
    try:
        check(requests)
    except ImpossibleRequest as err:
        raise WorkflowError(str(err)) from None


def job_threads(section):
    def get(wildcards):
        e = model_entry(wildcards.model)[section]
        return max(1, e.get("gpus", 0)) * e.get("cpus_per_gpu", 1)

    return get


def tiny_source(wildcards):
    """The tiny model folder a model is built from, if any."""
    e = model_entry(wildcards.model)
    return [model_path(e)] if "tiny" in e["source"] else []


def source_info(wildcards):
    """The prefetch manifest of a hub model: its jobs load the local snapshot it names."""
    return [f"{MODELS_DIR}/{wildcards.model}/source.json"] if "hub" in model_entry(wildcards.model)["source"] else []


def source_option(wildcards, input):
    return f"--source-info {input.source}" if input.get("source") else ""


def model_inputs(wildcards):
    return {"model": tiny_source(wildcards), "source": source_info(wildcards)}


def inference_inputs(wildcards):
    inputs = {"test": f"{SARCHAT}/test/{wildcards.cell}.jsonl", **model_inputs(wildcards)}
    if model_mode(wildcards.model) == "finetune":
        inputs["adapter"] = f"{MODELS_DIR}/{wildcards.model}/adapter.json"
    return inputs


def prediction_shards(wildcards):
    """A cell's shards: as many as its test file needs at `samples_per_shard` records each, so
    that every inference job has about the same work. The test files are checkpoints: their
    record counts are known once they are built, and the shard names stay the same as long as
    the test file does."""
    task = CELLS[wildcards.cell][0]
    test_file = getattr(checkpoints, f"test_{task}").get().output.cells[cells_of(task).index(wildcards.cell)]
    count = shard_count(record_count(test_file), model_entry(wildcards.model)["infer"]["samples_per_shard"])
    return [f"{PREDICTIONS}/{wildcards.model}/shards/{wildcards.cell}.{s}.jsonl" for s in shard_labels(count)]


MODEL_KEYS = "|".join(re.escape(m) for m in config["models"])
HUB_MODELS = "|".join(re.escape(m) for m in config["models"] if "hub" in model_entry(m).get("source", {})) or "^$"
PREFETCH_ALL = [f"{MODELS_DIR}/{m}/source.json" for m in RUN_MODELS if "hub" in model_entry(m).get("source", {})]
GENERATED_MODELS = (
    "|".join(re.escape(m) for m in config["models"] if model_mode(m) not in ("predictions", "baseline")) or "^$"
)
BASELINE_MODELS = "|".join(re.escape(m) for m in config["models"] if model_mode(m) == "baseline") or "^$"
TRAIN_ALL = [f"{MODELS_DIR}/{m}/adapter.json" for m in models_in_mode("finetune")]
LOSS_CURVES = [f"{MODELS_DIR}/{m}/loss.png" for m in models_in_mode("finetune")]
INFER_ALL = [f"{PREDICTIONS}/{m}/{c}.jsonl" for m in models_in_mode("finetune", "zero_shot") for c in CELLS]
SCORE_ALL = [f"{SCORES}/{m}/{c}.json" for m in SCORED_MODELS for c in CELLS]
DETAILS_ALL = [f"{SCORES}/{m}/{c}.details.jsonl" for m in SCORED_MODELS for c in CELLS]
TABLES = [
    f"{RESULTS}/tables/{t}"
    for t in (
        "table3.md",
        "table3.csv",
        "table3.tex",
        "table3_ci.md",
        "table3_ci.csv",
        "task_scores.md",
        "task_scores.csv",
        "table3_vs_paper.md",
        "provenance.md",
        "provenance.csv",
    )
]
# Shown in the report's pages (each with its own caption, rules/report/<name>.rst); the .md and
# .csv/.tex copies stay beside them, the .csv/.tex ones as downloads.
ANSWERS = f"{RESULTS}/answers"
ANSWER_PAGES = [f"{ANSWERS}/{m}/{c}.html" for m in SCORED_MODELS for c in CELLS]
TABLE_PAGES = [
    f"{RESULTS}/tables/{t}.html" for t in ("table3", "task_scores", "table3_ci", "table3_vs_paper", "provenance")
]
TABLE_DOWNLOADS = [t for t in TABLES if t.endswith((".csv", ".tex"))]
FIGURES = [
    f"{RESULTS}/figures/{f}.png"
    for f in ("radar", "avg_vs_params", "per_category", "paper_radar", "paper_avg_vs_params")
]


def registry_summary():
    return json.dumps(
        {m: {k: model_entry(m).get(k) for k in ("family", "params_b", "paper_row", "mode")} for m in SCORED_MODELS},
        sort_keys=True,
    )
