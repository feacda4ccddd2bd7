# SARChat-Bench: SARDet-100K -> SARChat-2M -> LoRA fine-tuning -> inference -> Table 3.
# Run `snakemake --cores all` for the demo, `snakemake --profile slurm <target>` on a cluster.
# Targets: build_dataset, validate_dataset, train_all, infer_all, score_all, report (see README "Targets" for the full list).

from snakemake.utils import min_version, validate

# 9.20 fixed runtime units in profiles (notes/snakemake-slurm.md).
min_version("9.20")


configfile: "config.yaml"


validate(config, "workflow_scripts/sarchat_bench/schemas/config.schema.yaml")


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/dataset.smk"
include: "rules/models.smk"
include: "rules/evaluate.smk"


# A request no node can run would wait in SLURM's queue for ever: refuse it before submitting.
if workflow.executor_plugin and workflow.executor_plugin.name == "slurm" and workflow.is_main_process:
    check_cluster_can_run_model_jobs()


onsuccess:
    cancel_rate_limiter_timers()


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
    validate_dataset,
    prefetch_model,
    prefetch_models,
    tiny_model,
    train_all,
    infer_all,
    merge_predictions,
    score_cell,
    score_all,
    report,


rule all:
    default_target: True
    input:
        DATASET_OUTPUTS,
        VALIDATION,
        TABLES,
        FIGURES,
