# Dataset build (issue #2): SARDet-100K COCO annotations -> the SARChat-2M JSONL files.


rule demo_dataset:
    """Generate the synthetic SAR-like demo dataset in the SARDet-100K layout."""
    output:
        annotations=expand(f"{DEMO_ROOT}/Annotations/{{split}}.json", split=config["demo"]["images"]),
        images=directory(f"{DEMO_ROOT}/JPEGImages"),
    log:
        f"{LOGS}/demo_dataset.log",
    benchmark:
        f"{BENCH}/demo_dataset.tsv"
    conda:
        "../envs/default.yaml"
    params:
        images=json.dumps(config["demo"]["images"]),
        seed=config["demo"]["seed"],
        root=lambda w, output: Path(output.images).parent,
    shell:
        "python -m sarchat_bench demo-data --root {params.root} --seed {params.seed}"
        " --images {params.images:q} 2> {log}"


rule download_sardet:
    """Fetch SARDet-100K (hub snapshot, URL or archive) where there is network."""
    output:
        expand(f"{DOWNLOAD_ROOT}/Annotations/{{split}}.json", split=SPLITS),
    log:
        f"{LOGS}/download_sardet.log",
    benchmark:
        f"{BENCH}/download_sardet.tsv"
    conda:
        "../envs/default.yaml"
    params:
        # Credentials are read from the environment by the job, never passed here.
        settings=json.dumps(config["download"], sort_keys=True),
        target=lambda w, output: Path(output[0]).parents[1],
        work=lambda w, output: Path(output[0]).parents[2] / "work",
    shell:
        "python -m sarchat_bench download --settings {params.settings:q} --target {params.target}"
        " --work {params.work} 2> {log}"


rule annotations:
    """Validate and filter one split's COCO annotations into a box table and a filter report."""
    input:
        lambda w: str(annotation_file(sardet_root(), w.split)),
    output:
        table=f"{SARCHAT}/annotations/{{split}}.boxes.json",
        report=f"{SARCHAT}/annotations/{{split}}.report.json",
    log:
        f"{LOGS}/annotations/{{split}}.log",
    benchmark:
        f"{BENCH}/annotations/{{split}}.tsv"
    conda:
        "../envs/default.yaml"
    params:
        root=str(Path(sardet_root())),
        categories=" ".join(DATASET["categories"]),
        tolerance=DATASET["bbox_tolerance"],
        check_images=("--check-image-headers" if DATASET["check_image_headers"] else "")
        + ("" if DATASET["check_image_files"] else " --no-check-images"),
        # Whether the build stops, not what it writes: a change reruns nothing.
        max_file_loss=untracked(DATASET["max_image_file_loss"]),
    shell:
        "python -m sarchat_bench annotations --root {params.root:q} --split {wildcards.split}"
        " --out-table {output.table} --out-report {output.report} --categories {params.categories}"
        " --bbox-tolerance {params.tolerance} {params.check_images} --max-image-file-loss {params.max_file_loss}"
        " 2> {log}"


# One job per task writes that task's test cells (grounding, identify and refer have two).
# Checkpoints: inference shards a test file by its record count, known once it is built.
for _task in TASKS:

    checkpoint:
        f"""Generate the {_task} task's test file(s)."""
        name:
            f"test_{_task}"
        input:
            box_tables(TEST_SPLITS),
        output:
            cells=[TEST_FILES[cell] for cell in cells_of(_task)],
            summary=f"{SUMMARIES}/test/{_task}.json",
        log:
            f"{LOGS}/test_task/{_task}.log",
        benchmark:
            f"{BENCH}/test_task/{_task}.tsv"
        localrule: True
        conda:
            "../envs/default.yaml"
        params:
            **build_params([_task]),
            outputs=" ".join(f"{cell}={TEST_FILES[cell]}" for cell in cells_of(_task)),
        shell:
            "python -m sarchat_bench test-cells --out {params.outputs} --summary {output.summary} --tables {input}"
            " --seed {params.seed} --settings {params.settings:q} {params.templates_option} 2> {log}"


# The training mix is one job: every model trains on all of it, so per-task training files
# would save no rerun. Its processes write one file together (sarchat_bench.dataset.ordered_write).
rule train_mix:
    """Generate the training mix: every task's records, in one file."""
    input:
        box_tables(TRAIN_SPLITS),
    output:
        records=f"{SARCHAT}/train.jsonl",
        summary=TRAIN_SUMMARY,
    log:
        f"{LOGS}/train_mix.log",
    benchmark:
        f"{BENCH}/train_mix.tsv"
    conda:
        "../envs/default.yaml"
    threads: DATASET["train_mix_threads"]
    params:
        **build_params(TASKS),
    shell:
        "python -m sarchat_bench train-mix --tables {input} --out {output.records} --summary {output.summary}"
        " --workers {threads} --seed {params.seed} --settings {params.settings:q} {params.templates_option}"
        " 2> {log}"


# One validation report per generated file: the training mix or a test cell.
rule validate_records:
    """Re-derive every word of every record of one file from its boxes; fail on any mismatch."""
    input:
        f"{SARCHAT}/{{records}}.jsonl",
    output:
        f"{SARCHAT}/validation/{{records}}.json",
    log:
        f"{LOGS}/validate/{{records}}.log",
    benchmark:
        f"{BENCH}/validate/{{records}}.tsv"
    wildcard_constraints:
        records=r"train|test/[^/]+",
    conda:
        "../envs/default.yaml"
    params:
        describe=json.dumps(DATASET.get("tasks", {}).get("describe", {}), sort_keys=True),
    shell:
        "python -m sarchat_bench validate --out {output} --describe {params.describe:q} {input} 2> {log}"


# The statistics come last, as Table 5 counts the training mix: tables and figures are two
# jobs, side by side on the cores the mix has freed. Counts come from the generator jobs'
# summaries and the annotation reports, so the 2M records are not read again.
rule dataset_stats:
    """Tables 1, 2, 4 and 5 beside the paper's, and the filter and generation reports."""
    input:
        **STATS_SOURCES,
        train_tables=box_tables(TRAIN_SPLITS),
        test_tables=box_tables(TEST_SPLITS),
    output:
        pages=[
            report(p, category="Dataset", caption=f"report/{Path(p).stem}.rst")
            for p in STATS_TABLES
            if p.endswith(".html")
        ],
        files=[p for p in STATS_TABLES if not p.endswith(".html")],
    log:
        f"{LOGS}/dataset_stats.log",
    benchmark:
        f"{BENCH}/dataset_stats.tsv"
    conda:
        "../envs/default.yaml"
    params:
        out_dir=lambda w, output: Path(output[0]).parent,
    shell:
        "python -m sarchat_bench stats --out-dir {params.out_dir} --train-tables {input.train_tables}"
        " --test-tables {input.test_tables} --train-reports {input.train_reports}"
        " --test-reports {input.test_reports} --train-summaries {input.train_summaries}"
        " --test-summaries {input.test_summaries} 2> {log}"


rule dataset_figures:
    """The category and task distributions as figures."""
    input:
        **STATS_SOURCES,
    output:
        [report(p, category="Dataset", caption=f"report/{Path(p).stem}.rst") for p in STATS_FIGURES],
    log:
        f"{LOGS}/dataset_figures.log",
    benchmark:
        f"{BENCH}/dataset_figures.tsv"
    conda:
        "../envs/default.yaml"
    params:
        out_dir=lambda w, output: Path(output[0]).parent,
    shell:
        "python -m sarchat_bench figures --out-dir {params.out_dir} --train-reports {input.train_reports}"
        " --test-reports {input.test_reports} --train-summaries {input.train_summaries}"
        " --test-summaries {input.test_summaries} 2> {log}"


rule export_hf:
    """The built dataset as a Hugging Face dataset folder: Parquet, the images once, a dataset card."""
    input:
        train=f"{SARCHAT}/train.jsonl",
        tests=list(TEST_FILES.values()),
        stats=[f"{STATS_DIR}/{t}.csv" for t in ("table5_tasks", "filter_report", "generation_report")],
    output:
        directory(HF_EXPORT),
    log:
        f"{LOGS}/export_hf.log",
    benchmark:
        f"{BENCH}/export_hf.tsv"
    conda:
        "../envs/default.yaml"
    params:
        dataset_dir=lambda w, input: Path(input.train).parent,
        # Where the images are read from, not what is written (they are keyed by their path
        # below the root): a change reruns nothing (D20).
        image_root=untracked(IMAGE_ROOT),
        settings=json.dumps(DATASET, sort_keys=True),
        demo="--demo" if sardet_root() == DEMO_ROOT else "",
    shell:
        "python -m sarchat_bench export-hf --dataset-dir {params.dataset_dir} --image-root {params.image_root:q}"
        " --settings {params.settings:q} {params.demo} --out {output} 2> {log}"


rule build_dataset:
    """The nine test files, the training mix and the statistics."""
    input:
        DATASET_OUTPUTS,


rule validate_dataset:
    """Validation reports for the training mix and every test file."""
    input:
        VALIDATION,
