# Helpers shared by the rules files: paths, wildcard constraints and config lookups.
# Logic lives in the sarchat_bench package (workflow_scripts/); this file only wires it up.

import json
import shlex
import sys
from pathlib import Path

SCRIPTS_DIR = Path(workflow.basedir) / "workflow_scripts"
sys.path.insert(0, str(SCRIPTS_DIR))
# Jobs run `python -m sarchat_bench`, locally and on cluster nodes alike.
shell.prefix(f"export PYTHONPATH={shlex.quote(str(SCRIPTS_DIR))}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

from sarchat_bench.tasks import CELLS, TASKS  # noqa: E402

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


def box_tables(splits):
    return [f"{SARCHAT}/annotations/{split}.parquet" for split in splits]


def build_settings(task):
    """The settings one generator job sees; a change here reruns only that task's jobs."""
    return json.dumps({"task": TASK_SETTINGS.get(task, {}), "categories": DATASET["categories"]}, sort_keys=True)


def train_shards(task):
    n = DATASET.get("train_shards", {}).get(task, 1)
    return [f"{i}-of-{n}" for i in range(1, n + 1)]


# Training records are written in shards (contiguous parts of the images, in order) so that
# the large tasks spread over cores or nodes; the mix concatenates them.
TRAIN_FILES = {task: [f"{SARCHAT}/train/{task}.{shard}.jsonl" for shard in train_shards(task)] for task in TASKS}
TEST_FILES = {cell: f"{SARCHAT}/test/{cell}.jsonl" for cell in CELLS}
STATS_DIR = f"{SARCHAT}/stats"
STATS_TABLES = ["table1_categories", "table2_aspect_ratio", "table4_aspect_ratio_by_category", "table5_tasks",
                "filter_report"]
STATS_OUTPUTS = [f"{STATS_DIR}/{t}.{ext}" for t in STATS_TABLES for ext in ("csv", "md")] + [
    f"{STATS_DIR}/categories.png", f"{STATS_DIR}/tasks.png"]
VALIDATION = [f"{SARCHAT}/validation/train/{t}.{s}.json" for t in TASKS for s in train_shards(t)] + [
    f"{SARCHAT}/validation/test/{c}.json" for c in CELLS]
DATASET_OUTPUTS = [f"{SARCHAT}/train.jsonl", *TEST_FILES.values(), *STATS_OUTPUTS]
