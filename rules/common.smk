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

from sarchat_bench.registry import RegistryError, check_local_source, entry, job_settings  # noqa: E402
from sarchat_bench.registry import model_path, run_models  # noqa: E402
from sarchat_bench.io import InputError  # noqa: E402
from sarchat_bench.sharding import shard_labels  # noqa: E402
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


def cells_of(task):
    return [cell for cell, (cell_task, _) in CELLS.items() if cell_task == task]


def box_tables(splits):
    return [f"{SARCHAT}/annotations/{split}.boxes.json" for split in splits]


def annotation_reports(splits):
    return [f"{SARCHAT}/annotations/{split}.report.json" for split in splits]


def build_settings(tasks):
    """The settings a generator job sees; a change reruns only the jobs of the tasks it concerns."""
    return json.dumps({"tasks": {t: TASK_SETTINGS.get(t, {}) for t in tasks}, "categories": DATASET["categories"]},
                      sort_keys=True)


def build_params(tasks):
    """A generator job's params: seed, settings and templates (the option naming a file of the
    user's, and a digest of the templates these tasks use, so that editing one task's templates
    reruns only its files)."""
    return {"seed": DATASET["seed"], "settings": build_settings(tasks), "templates_option": TEMPLATES_OPTION,
            "templates_digest": templates_digest(TEMPLATES, tasks)}


TEST_FILES = {cell: f"{SARCHAT}/test/{cell}.jsonl" for cell in CELLS}
# Each generator job also writes a summary (records, skips) that dataset_stats reads.
SUMMARIES = f"{SARCHAT}/summaries"
TRAIN_SUMMARY = f"{SUMMARIES}/train.json"
TEST_SUMMARIES = [f"{SUMMARIES}/test/{task}.json" for task in TASKS]
STATS_DIR = f"{SARCHAT}/stats"
STATS_TABLES = [f"{STATS_DIR}/{t}.{ext}" for t in ("table1_categories", "table2_aspect_ratio",
                                                   "table4_aspect_ratio_by_category", "table5_tasks",
                                                   "filter_report", "generation_report")
                for ext in ("csv", "md")]
STATS_FIGURES = [f"{STATS_DIR}/categories.png", f"{STATS_DIR}/tasks.png"]
STATS_OUTPUTS = STATS_TABLES + STATS_FIGURES
# What both statistics jobs read (the tables job reads the box tables too).
STATS_SOURCES = {"train_reports": annotation_reports(TRAIN_SPLITS), "test_reports": annotation_reports(TEST_SPLITS),
                 "train_summaries": TRAIN_SUMMARY, "test_summaries": TEST_SUMMARIES}
VALIDATION = [f"{SARCHAT}/validation/train.json"] + [f"{SARCHAT}/validation/test/{c}.json" for c in CELLS]
DATASET_OUTPUTS = [f"{SARCHAT}/train.jsonl", *TEST_FILES.values(), *STATS_OUTPUTS]


# ---- models (issue #3) and scores (issue #4) ----
try:
    RUN_MODELS = run_models(config)
except RegistryError as err:
    raise WorkflowError(str(err)) from None

MODELS_DIR = f"{RESULTS}/models"
PREDICTIONS = f"{RESULTS}/predictions"
SCORES = f"{RESULTS}/scores"
ENV_FILES = {"default": "../envs/sarchat.yaml", "transformers4": "../envs/transformers4.yaml"}


def model_entry(model):
    return entry(config, model)


def model_mode(model):
    return model_entry(model)["mode"]


def models_in_mode(*modes):
    return [m for m in RUN_MODELS if model_mode(m) in modes]


def conda_env(wildcards):
    return ENV_FILES[model_entry(wildcards.model)["environment"]]


def _spec(model, section):
    e = model_entry(model)
    check_local_source(model, e)
    return {"model_path": model_path(e), "model_type": e["model_type"], "template": e["template"],
            "source": e["source"], "env": e["env"], "settings": job_settings(e, section)}


def train_spec(wildcards):
    """What a training job depends on; other config changes never retrain a model."""
    return json.dumps(_spec(wildcards.model, "train"), sort_keys=True)


def infer_spec(wildcards):
    return json.dumps(_spec(wildcards.model, "infer"), sort_keys=True)


def job_resource(section, key):
    """A per-model resource; memory and runtime grow with the attempt of a retried job."""
    scaled = key in ("mem_mb", "runtime")

    def get(wildcards, attempt=1):
        value = model_entry(wildcards.model)[section][key]
        return value * attempt if scaled else value

    return get


def job_threads(section):
    def get(wildcards):
        e = model_entry(wildcards.model)[section]
        return max(1, e.get("gpus", 0)) * e.get("cpus_per_gpu", 1)

    return get


def tiny_source(wildcards):
    """The tiny model folder a model is built from, if any."""
    source = model_entry(wildcards.model)["source"]
    return [f"{MODELS_DIR}/tiny/{source['tiny']}"] if "tiny" in source else []


def inference_inputs(wildcards):
    inputs = {"test": f"{SARCHAT}/test/{wildcards.cell}.jsonl", "model": tiny_source(wildcards)}
    if model_mode(wildcards.model) == "finetune":
        inputs["adapter"] = f"{MODELS_DIR}/{wildcards.model}/adapter.json"
    return inputs


def shard_names(model):
    return shard_labels(model_entry(model)["infer"]["shards"])


def prediction_shards(wildcards):
    return [f"{PREDICTIONS}/{wildcards.model}/shards/{wildcards.cell}.{s}.jsonl" for s in shard_names(wildcards.model)]


MODEL_KEYS = "|".join(re.escape(m) for m in config["models"])
GENERATED_MODELS = "|".join(re.escape(m) for m in config["models"] if model_mode(m) != "predictions") or "^$"
TRAIN_ALL = [f"{MODELS_DIR}/{m}/adapter.json" for m in models_in_mode("finetune")]
INFER_ALL = [f"{PREDICTIONS}/{m}/{c}.jsonl" for m in models_in_mode("finetune", "zero_shot") for c in CELLS]
SCORE_ALL = [f"{SCORES}/{m}/{c}.json" for m in RUN_MODELS for c in CELLS]
TABLES = [f"{RESULTS}/tables/{t}" for t in ("table3.md", "table3.csv", "table3.tex", "table3_ci.md",
                                            "table3_ci.csv", "task_scores.md", "task_scores.csv",
                                            "table3_vs_paper.md")]
FIGURES = [f"{RESULTS}/figures/{f}.png" for f in ("radar", "avg_vs_params", "per_category", "paper_radar",
                                                 "paper_avg_vs_params")]


def registry_summary():
    return json.dumps({m: {k: model_entry(m).get(k) for k in ("family", "params_b", "paper_row")} for m in RUN_MODELS},
                      sort_keys=True)
