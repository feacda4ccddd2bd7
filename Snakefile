# SARChat-Bench: SARDet-100K -> SARChat-2M -> LoRA fine-tuning -> inference -> Table 3.
# Run `snakemake --cores all` for the demo, `snakemake --profile slurm <target>` on a cluster.
# Targets: build_dataset, validate_dataset, train_all, infer_all, score_all, report (see README "Targets" for the full list).

import os
import sys

from snakemake.utils import min_version

# 9.20 fixed runtime units in profiles (notes/snakemake-slurm.md).
min_version("9.20")


configfile: "config.yaml"


# The config as every job sees it: typed (nested --config values arrive as strings), checked
# against the schema with its defaults filled in, then against what a schema cannot express.
sys.path.insert(0, f"{workflow.basedir}/workflow_scripts")
from sarchat_bench.core.configuration import SCHEMA, ConfigError, validated  # noqa: E402

try:
    validated(config, SCHEMA)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# Every job records the run it belongs to (core/provenance.py); a job on a SLURM node inherits them.
from sarchat_bench.core import provenance  # noqa: E402

os.environ.setdefault(provenance.GIT_COMMIT_ENV, provenance.git_commit(workflow.basedir) or "unknown")
os.environ.setdefault(provenance.CONFIG_DIGEST_ENV, provenance.config_digest(config))


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/dataset.smk"
include: "rules/models.smk"
include: "rules/evaluate.smk"


onstart:
    # On SLURM, a request no node can run would wait in the queue for ever: refuse it first.
    if workflow.executor_plugin.name == "slurm":
        from sarchat_bench.models.slurm import ImpossibleRequest, check, model_job_requests

        if not any(SLURM.values()):
            logger.warning(
                "No SLURM site settings (slurm: in config): was slurm/site.yaml left out of --configfile?"
            )
        needed = {
            (job.wildcards.model, section)
            for job in workflow.dag.needrun_jobs()
            for section in MODEL_JOB_SECTIONS.get(job.rule.name, ())
        }
        try:
            check(model_job_requests(config, needed))
        except ImpossibleRequest as err:
            raise WorkflowError(str(err)) from None


# Only the model jobs (train_model, infer_shard, merge_adapter) go to a cluster. Every other job
# takes seconds and runs where Snakemake runs (the test-file jobs say so themselves), never as
# a queue of cluster jobs; downloads need the network that cluster nodes often lack.
localrules:
    all,
    demo_dataset,
    download_sardet,
    annotations,
    train_mix,
    validate_records,
    dataset_stats,
    dataset_figures,
    build_dataset,
    export_hf,
    validate_dataset,
    prefetch_model,
    prefetch_models,
    tiny_model,
    plan,
    train_all,
    infer_all,
    merge_predictions,
    baseline_predictions,
    loss_curve,
    score_cell,
    score_all,
    report,
    answer_browser,
    lmms_tasks,


rule all:
    """Everything: the dataset, its validation, every model's scores, the tables and figures."""
    default_target: True
    input:
        DATASET_OUTPUTS,
        VALIDATION,
        TABLES,
        FIGURES,
        ANSWER_PAGES,
        LOSS_CURVES,
        PLAN_PAGE,
        PLAN_FILES,
