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


onsuccess:
    cancel_rate_limiter_timers()


localrules:
    all,
    build_dataset,
    validate_dataset,
    demo_dataset,
    train_all,
    infer_all,
    score_all,
    merge_predictions,
    score_cell,
    report,


rule all:
    default_target: True
    input:
        DATASET_OUTPUTS,
        VALIDATION,
        TABLES,
        FIGURES,
