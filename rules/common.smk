# Paths, targets, wildcard constraints and thin input functions of the rules. What a job's
# output depends on, what it asks the cluster for and whether the config is valid are decided
# in the sarchat_bench package (workflow_scripts/); this file only wires them up.

import json
import re
import shlex
import sys
from pathlib import Path

SCRIPTS_DIR = Path(workflow.basedir) / "workflow_scripts"
sys.path.insert(0, str(SCRIPTS_DIR))
# Jobs run `python -m sarchat_bench`, locally and on cluster nodes alike.
shell.prefix(f"export PYTHONPATH={shlex.quote(str(SCRIPTS_DIR))}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

from sarchat_bench.core.sharding import record_count, shard_count, shard_labels  # noqa: E402
from sarchat_bench.dataset.annotations import annotation_file  # noqa: E402
from sarchat_bench.dataset.build import generator_params  # noqa: E402
from sarchat_bench.evaluation.scoring import details_path  # noqa: E402
from sarchat_bench.models.grouping import grouped_mix, grouped_mixes  # noqa: E402
from sarchat_bench.models.jobs import RESOURCE_NAMES, ModelJob, environment  # noqa: E402
from sarchat_bench.models.plan import plan_settings  # noqa: E402
from sarchat_bench.models.registry import entry, run_models, scorer_coords, tiny_model_folder  # noqa: E402
from sarchat_bench.models.tiny import ARCHITECTURES  # noqa: E402
from sarchat_bench.models.train import train_log_path  # noqa: E402
from sarchat_bench.paper.tasks import CELLS, TASKS  # noqa: E402

RESULTS = "results"
SARCHAT = f"{RESULTS}/sarchat"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
DEMO_ROOT = f"{RESULTS}/demo/SARDet_100K"
DOWNLOAD_ROOT = f"{RESULTS}/download/SARDet_100K"
MODELS_DIR = f"{RESULTS}/models"
PREDICTIONS = f"{RESULTS}/predictions"
SCORES = f"{RESULTS}/scores"
ANSWERS = f"{RESULTS}/answers"
HF_EXPORT = f"{RESULTS}/hf"
LMMS_TASKS = f"{RESULTS}/lmms"

DATASET = config["dataset"]
TRAIN_SPLITS = DATASET["train_splits"]
TEST_SPLITS = DATASET["test_splits"]
SPLITS = list(dict.fromkeys(TRAIN_SPLITS + TEST_SPLITS))
# Site facts for SLURM (slurm/site.yaml, which the profile loads); unused on a local run.
SLURM = config["slurm"]


wildcard_constraints:
    split="[A-Za-z0-9_]+",
    task="|".join(TASKS),
    cell="|".join(CELLS),
    shard=r"\d+-of-\d+",


def untracked(value):
    """A param whose change reruns no job (how a job runs, not what it makes). Snakemake counts
    a param function that takes `threads` as derived from the job and leaves it out of the
    params it compares between runs."""
    return lambda wildcards, threads: value


def sardet_root():
    """Where SARDet-100K is read from: the download, the user's copy, or the demo data."""
    if config["download"]["source"] != "none":
        return DOWNLOAD_ROOT
    return config["sardet_root"] or DEMO_ROOT


# Records name their images relative to the SARDet-100K root; the jobs that open them resolve
# them against this folder (config image_root, by default the one the dataset is built from).
# Passed as an untracked param: moving the images reruns nothing (docs/decisions.md, D18).
IMAGE_ROOT = str(Path(config["image_root"] or sardet_root()).resolve())


def cells_of(task):
    return [cell for cell, (cell_task, _) in CELLS.items() if cell_task == task]


def box_tables(splits):
    return [f"{SARCHAT}/annotations/{split}.boxes.json" for split in splits]


def annotation_reports(splits):
    return [f"{SARCHAT}/annotations/{split}.report.json" for split in splits]


def build_params(tasks):
    return generator_params(DATASET, tasks)


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


# ---- models and scores ----
RUN_MODELS = run_models(config)
# The models of `run` and the baselines scored beside them.
SCORED_MODELS = list(dict.fromkeys(RUN_MODELS + config["report"]["baselines"]))
# Where models are downloaded once (prefetch_model) and read offline by the model jobs.
CACHE_DIR = config["cache_dir"]
# The commits hub revisions resolved to, recorded once (prefetch_model) and checked by the model jobs.
MODEL_LOCK_OPTION = f"--model-lock {shlex.quote(config['model_lock'])}" if config["model_lock"] else ""


def model_entry(model):
    return entry(config, model)


def model_mode(model):
    return model_entry(model)["mode"]


def models_in_mode(*modes):
    return [m for m in RUN_MODELS if model_mode(m) in modes]


def conda_env(section):
    return lambda wildcards: f"../envs/{environment(model_entry(wildcards.model), section)}.yaml"


def job_spec(section):
    """The model job's spec (models.jobs): what its output depends on; a change reruns it."""
    return lambda wildcards: ModelJob.of(config, wildcards.model, section).spec.to_json()


def job_run(section):
    """The model job's run options (models.jobs): how it runs; a change reruns nothing."""
    return lambda wildcards, threads: ModelJob.of(config, wildcards.model, section, threads, IMAGE_ROOT).run.to_json()


def job_threads(section):
    return lambda wildcards: ModelJob.of(config, wildcards.model, section).resources.threads


def job_resources(section, runtime=None):
    """The model job's request of each attempt (models.jobs.Resources.request), as resources."""

    def resource(name):
        return lambda wildcards, attempt: ModelJob.of(config, wildcards.model, section).resources.request(
            SLURM, attempt, runtime
        )[name]

    return {name: resource(name) for name in RESOURCE_NAMES}


# The model jobs that a job of these rules stands for, in the SLURM pre-flight (Snakefile):
# merge_predictions waits on inference shards (and their adapter's training) that exist only
# once the test files are built.
MODEL_JOB_SECTIONS = {
    "train_model": ("train",),
    "merge_adapter": ("train",),
    "infer_shard": ("infer",),
    "merge_predictions": ("infer", "train"),
}


def tiny_source(model):
    """The tiny model folder a model is built from, if any."""
    e = model_entry(model)
    return [tiny_model_folder(e["environment"], e["source"]["tiny"])] if "tiny" in e["source"] else []


def source_info(model):
    """The prefetch manifest of a hub model: its jobs load the local snapshot it names."""
    return [f"{MODELS_DIR}/{model}/source.json"] if "hub" in model_entry(model)["source"] else []


def source_option(wildcards, input):
    return f"--source-info {input.source}" if input.get("source") else ""


def model_inputs(wildcards):
    return {"model": tiny_source(wildcards.model), "source": source_info(wildcards.model)}


# Grouped training (train: grouping; sarchat_bench.models.grouping): one file per distinct
# (data, model source, template, image settings, max_length, grouping, seed), so that the
# hyperparameter variants of one model share it.
TRAIN_MIX = f"{SARCHAT}/train.jsonl"
GROUPED = f"{SARCHAT}/grouped"


def ungrouped_data(model):
    """What a model trains on in the paper's recipe: the training mix, or its own train_data."""
    return model_entry(model).get("train_data", TRAIN_MIX)


GROUPED_MIXES = grouped_mixes(config, ungrouped_data)


def training_data(wildcards):
    """What a model trains on: its data, as conversations where its train: grouping says."""
    mix = grouped_mix(config, wildcards.model, ungrouped_data(wildcards.model))
    return f"{GROUPED}/{mix.name}.jsonl" if mix else ungrouped_data(wildcards.model)


def grouped_mix_inputs(wildcards):
    """The data a grouped file regroups, and the model folder whose tokenizer counts it."""
    mix, model = GROUPED_MIXES[wildcards.mix]
    return {"dataset": mix.dataset, "model": tiny_source(model), "source": source_info(model)}


def inference_inputs(wildcards):
    inputs = {"test": TEST_FILES[wildcards.cell], **model_inputs(wildcards)}
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


def keys_regex(keys):
    return "|".join(re.escape(k) for k in keys) or "^$"


MODEL_KEYS = keys_regex(config["models"])
GROUPED_NAMES = keys_regex(GROUPED_MIXES)
HUB_MODELS = keys_regex(m for m in config["models"] if "hub" in model_entry(m).get("source", {}))
GENERATED_MODELS = keys_regex(m for m in config["models"] if model_mode(m) not in ("predictions", "baseline"))
BASELINE_MODELS = keys_regex(m for m in config["models"] if model_mode(m) == "baseline")
PREFETCH_ALL = [f"{MODELS_DIR}/{m}/source.json" for m in RUN_MODELS if "hub" in model_entry(m).get("source", {})]
TRAIN_ALL = [f"{MODELS_DIR}/{m}/adapter.json" for m in models_in_mode("finetune")]
LOSS_CURVES = [f"{MODELS_DIR}/{m}/loss.png" for m in models_in_mode("finetune")]
INFER_ALL = [f"{PREDICTIONS}/{m}/{c}.jsonl" for m in models_in_mode("finetune", "zero_shot") for c in CELLS]
SCORE_ALL = [f"{SCORES}/{m}/{c}.json" for m in SCORED_MODELS for c in CELLS]
DETAILS_ALL = [str(details_path(score)) for score in SCORE_ALL]
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
ANSWER_PAGES = [f"{ANSWERS}/{m}/{c}.html" for m in SCORED_MODELS for c in CELLS]
TABLE_PAGES = [
    f"{RESULTS}/tables/{t}.html" for t in ("table3", "task_scores", "table3_ci", "table3_vs_paper", "provenance")
]
TABLE_DOWNLOADS = [t for t in TABLES if t.endswith((".csv", ".tex"))]
FIGURES = [
    f"{RESULTS}/figures/{f}.png"
    for f in ("radar", "avg_vs_params", "per_category", "paper_radar", "paper_avg_vs_params")
]


# The plan before launch (rules/models.smk, plan): what it depends on of the config, and the
# tiny models whose own tokenizer and processor it counts with.
PLAN_PAGE = f"{RESULTS}/plan/plan.html"
PLAN_FILES = [f"{RESULTS}/plan/plan.md", f"{RESULTS}/plan/plan.csv"]
PLAN_SETTINGS = json.dumps(plan_settings(config), sort_keys=True)
PLAN_TINY_MODELS = sorted(
    {
        tiny_model_folder(model_entry(m)["environment"], model_entry(m)["source"]["tiny"])
        for m in models_in_mode("finetune", "zero_shot")
        if "tiny" in model_entry(m)["source"]
    }
)


def registry_summary():
    return json.dumps(
        {m: {k: model_entry(m).get(k) for k in ("family", "params_b", "paper_row", "mode")} for m in SCORED_MODELS},
        sort_keys=True,
    )
