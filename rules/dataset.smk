# Dataset build (issue #2): SARDet-100K COCO annotations -> the SARChat-2M JSONL files.


rule demo_dataset:
    output:
        annotations=expand(f"{DEMO_ROOT}/Annotations/{{split}}.json", split=config["demo"]["images"]),
        images=directory(f"{DEMO_ROOT}/JPEGImages"),
    params:
        images=json.dumps(config["demo"]["images"]),
        seed=config["demo"]["seed"],
        root=lambda w, output: Path(output.images).parent,
    log:
        f"{LOGS}/demo_dataset.log",
    benchmark:
        f"{BENCH}/demo_dataset.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench demo-data --root {params.root} --seed {params.seed}"
        " --images {params.images:q} 2> {log}"


rule download_sardet:
    output:
        expand(f"{DOWNLOAD_ROOT}/Annotations/{{split}}.json", split=SPLITS),
    params:
        # Credentials are read from the environment by the job, never passed here.
        settings=json.dumps(config["download"], sort_keys=True),
        target=lambda w, output: Path(output[0]).parents[1],
        work=lambda w, output: Path(output[0]).parents[2] / "work",
    log:
        f"{LOGS}/download_sardet.log",
    benchmark:
        f"{BENCH}/download_sardet.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench download --settings {params.settings:q} --target {params.target}"
        " --work {params.work} 2> {log}"


rule annotations:
    input:
        f"{sardet_root()}/Annotations/{{split}}.json",
    output:
        table=f"{SARCHAT}/annotations/{{split}}.parquet",
        report=f"{SARCHAT}/annotations/{{split}}.report.json",
    params:
        root=lambda w, input: Path(input[0]).parents[1],
        categories=" ".join(DATASET["categories"]),
        tolerance=DATASET["bbox_tolerance"],
        check_images="" if DATASET["check_image_files"] else "--no-check-images",
    log:
        f"{LOGS}/annotations/{{split}}.log",
    benchmark:
        f"{BENCH}/annotations/{{split}}.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench annotations --root {params.root:q} --split {wildcards.split}"
        " --out-table {output.table} --out-report {output.report} --categories {params.categories}"
        " --bbox-tolerance {params.tolerance} {params.check_images} 2> {log}"


rule train_task:
    input:
        box_tables(TRAIN_SPLITS),
    output:
        f"{SARCHAT}/train/{{task}}.jsonl",
    params:
        seed=DATASET["seed"],
        settings=lambda w: build_settings(w.task),
    log:
        f"{LOGS}/train_task/{{task}}.log",
    benchmark:
        f"{BENCH}/train_task/{{task}}.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench train-task --task {wildcards.task} --tables {input} --out {output}"
        " --seed {params.seed} --settings {params.settings:q} 2> {log}"


rule test_cell:
    input:
        box_tables(TEST_SPLITS),
    output:
        f"{SARCHAT}/test/{{cell}}.jsonl",
    params:
        seed=DATASET["seed"],
        settings=lambda w: build_settings(CELLS[w.cell][0]),
    log:
        f"{LOGS}/test_cell/{{cell}}.log",
    benchmark:
        f"{BENCH}/test_cell/{{cell}}.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench test-cell --cell {wildcards.cell} --tables {input} --out {output}"
        " --seed {params.seed} --settings {params.settings:q} 2> {log}"


rule train_mix:
    input:
        list(TRAIN_FILES.values()),
    output:
        f"{SARCHAT}/train.jsonl",
    log:
        f"{LOGS}/train_mix.log",
    benchmark:
        f"{BENCH}/train_mix.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench mix --out {output} {input} 2> {log}"


rule validate_file:
    input:
        f"{SARCHAT}/{{kind}}/{{name}}.jsonl",
    output:
        f"{SARCHAT}/validation/{{kind}}/{{name}}.json",
    params:
        describe=json.dumps(TASK_SETTINGS.get("describe", {}), sort_keys=True),
    log:
        f"{LOGS}/validate/{{kind}}/{{name}}.log",
    benchmark:
        f"{BENCH}/validate/{{kind}}/{{name}}.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench validate --out {output} --describe {params.describe:q} {input} 2> {log}"


rule dataset_stats:
    input:
        train_tables=box_tables(TRAIN_SPLITS),
        test_tables=box_tables(TEST_SPLITS),
        reports=[f"{SARCHAT}/annotations/{s}.report.json" for s in SPLITS],
        train_files=list(TRAIN_FILES.values()),
        test_files=list(TEST_FILES.values()),
    output:
        STATS_OUTPUTS,
    params:
        out_dir=lambda w, output: Path(output[0]).parent,
        train_pairs=" ".join(f"{t}={p}" for t, p in TRAIN_FILES.items()),
        test_pairs=" ".join(f"{c}={p}" for c, p in TEST_FILES.items()),
    log:
        f"{LOGS}/dataset_stats.log",
    benchmark:
        f"{BENCH}/dataset_stats.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench stats --out-dir {params.out_dir} --train-tables {input.train_tables}"
        " --test-tables {input.test_tables} --train-files {params.train_pairs}"
        " --test-files {params.test_pairs} --reports {input.reports} 2> {log}"


rule build_dataset:
    input:
        DATASET_OUTPUTS,
