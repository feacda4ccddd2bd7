# Inference, scoring and the report.


rule baseline_predictions:
    """A baseline's answers to one test file, made from the training mix without a model."""
    input:
        train=f"{SARCHAT}/train.jsonl",
        test=f"{SARCHAT}/test/{{cell}}.jsonl",
    output:
        f"{PREDICTIONS}/{{model}}/{{cell}}.jsonl",
    log:
        f"{LOGS}/baseline_predictions/{{model}}/{{cell}}.log",
    benchmark:
        f"{BENCH}/baseline_predictions/{{model}}/{{cell}}.tsv"
    wildcard_constraints:
        model=BASELINE_MODELS,
    conda:
        "../envs/default.yaml"
    shell:
        "python -m sarchat_bench baseline --train {input.train} --test {input.test} --cell {wildcards.cell}"
        " --out {output} 2> {log}"


rule infer_shard:
    """Predict one shard of one test file with one model (resumable)."""
    input:
        unpack(inference_inputs),
    output:
        f"{PREDICTIONS}/{{model}}/shards/{{cell}}.{{shard}}.jsonl",
    log:
        f"{LOGS}/infer/{{model}}/{{cell}}.{{shard}}.log",
    benchmark:
        f"{BENCH}/infer/{{model}}/{{cell}}.{{shard}}.tsv"
    wildcard_constraints:
        model=GENERATED_MODELS,
    conda:
        conda_env("infer")
    threads: job_threads("infer")
    resources:
        **job_resources("infer"),
    params:
        spec=job_spec("infer"),
        run=job_run("infer"),
        source=source_option,
        adapter=lambda w, input: f"--adapter-info {input.adapter}" if "adapter" in input.keys() else "",
        # Undeclared on purpose: Snakemake must not delete finished records of a failed job.
        partial=lambda w, output: Path(output[0]).parents[1] / "work" / f"{Path(output[0]).stem}.partial.jsonl",
    shell:
        "python -m sarchat_bench infer --model {wildcards.model} --spec {params.spec:q} --run {params.run:q}"
        " --test {input.test} --shard {wildcards.shard} {params.source} {params.adapter} --out {output}"
        " --partial {params.partial} > {log} 2>&1"


rule merge_predictions:
    """Concatenate a cell's shard predictions, checking the ids against the test file."""
    input:
        test=f"{SARCHAT}/test/{{cell}}.jsonl",
        shards=prediction_shards,
    output:
        f"{PREDICTIONS}/{{model}}/{{cell}}.jsonl",
    log:
        f"{LOGS}/merge_predictions/{{model}}/{{cell}}.log",
    benchmark:
        f"{BENCH}/merge_predictions/{{model}}/{{cell}}.tsv"
    wildcard_constraints:
        model=GENERATED_MODELS,
    conda:
        "../envs/default.yaml"
    shell:
        "python -m sarchat_bench merge-predictions --test {input.test} --out {output} {input.shards} 2> {log}"


rule score_cell:
    """Score one model's predictions for one test file (Table 3 metrics with intervals)."""
    input:
        test=f"{SARCHAT}/test/{{cell}}.jsonl",
        predictions=f"{PREDICTIONS}/{{model}}/{{cell}}.jsonl",
    output:
        scores=f"{SCORES}/{{model}}/{{cell}}.json",
        details=str(details_path(f"{SCORES}/{{model}}/{{cell}}.json")),
    log:
        f"{LOGS}/score/{{model}}/{{cell}}.log",
    benchmark:
        f"{BENCH}/score/{{model}}/{{cell}}.tsv"
    wildcard_constraints:
        model=MODEL_KEYS,
    conda:
        "../envs/default.yaml"
    params:
        coords=lambda w: scorer_coords(model_entry(w.model)),
        seed=config["scoring"]["seed"],
        bad_responses=config["scoring"]["bad_responses"],
        instruction=lambda w: shlex.quote(model_entry(w.model)["infer"].get("format_instruction", "")),
        # A baseline's empty answers are its own (logged when the mix has nothing to learn from).
        allow_empty=lambda w: (
            "--allow-empty-answers"
            if model_entry(w.model).get("allow_empty_answers") or model_mode(w.model) == "baseline"
            else ""
        ),
        # Files made by other tools may be `swift infer` result files (no ids, matched by order).
        swift_results=lambda w: "--accept-swift-results" if model_mode(w.model) == "predictions" else "",
    shell:
        "python -m sarchat_bench score --cell {wildcards.cell} --test {input.test} --predictions {input.predictions}"
        " --out {output.scores} --details {output.details} --model {wildcards.model} --coords {params.coords}"
        " --seed {params.seed} --bad-responses {params.bad_responses}"
        " --format-instruction {params.instruction} {params.allow_empty} {params.swift_results} 2> {log}"


rule report:
    """Table 3, task scores, intervals, the comparison with the paper, and the figures."""
    input:
        scores=SCORE_ALL,
        details=DETAILS_ALL,  # the average's interval resamples samples
    output:
        tables=[t for t in TABLES if t not in TABLE_DOWNLOADS],
        pages=[report(t, category="Benchmark", caption=f"report/{Path(t).stem}.rst") for t in TABLE_PAGES],
        downloads=[report(t, category="Downloads", caption="report/downloads.rst") for t in TABLE_DOWNLOADS],
        figures=[report(f, category="Figures", caption=f"report/{Path(f).stem}.rst") for f in FIGURES],
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    conda:
        "../envs/default.yaml"
    params:
        scores=" ".join(f"{m}={SCORES}/{m}/{c}.json" for m in SCORED_MODELS for c in CELLS),
        registry=registry_summary(),
        radar_min=config["report"]["radar_min"],
        tables_dir=lambda w, output: Path(output.tables[0]).parent,
        figures_dir=lambda w, output: Path(output.figures[0]).parent,
    shell:
        "python -m sarchat_bench report --tables-dir {params.tables_dir} --figures-dir {params.figures_dir}"
        " --scores {params.scores} --registry {params.registry:q} --radar-min {params.radar_min} 2> {log}"


rule answer_browser:
    """One model's answers on one test file beside the references, with verdicts and boxes drawn."""
    input:
        test=f"{SARCHAT}/test/{{cell}}.jsonl",
        score=f"{SCORES}/{{model}}/{{cell}}.json",
        details=str(details_path(f"{SCORES}/{{model}}/{{cell}}.json")),
        predictions=f"{PREDICTIONS}/{{model}}/{{cell}}.jsonl",
    output:
        report(
            f"{ANSWERS}/{{model}}/{{cell}}.html",
            category="Answers",
            subcategory="{model}",
            labels={"test file": "{cell}"},
            caption="report/answers.rst",
        ),
    log:
        f"{LOGS}/answer_browser/{{model}}/{{cell}}.log",
    benchmark:
        f"{BENCH}/answer_browser/{{model}}/{{cell}}.tsv"
    wildcard_constraints:
        model=MODEL_KEYS,
    conda:
        "../envs/default.yaml"
    params:
        per_cell=config["report"]["answers_per_cell"],
        side=config["report"]["thumbnail_px"],
        # Where the images are, not what the page shows: a change reruns nothing.
        image_root=untracked(IMAGE_ROOT),
    shell:
        "python -m sarchat_bench answers --out {output} --model {wildcards.model} --cell {wildcards.cell}"
        " --test {input.test} --predictions {input.predictions} --details {input.details} --score {input.score}"
        " --per-cell {params.per_cell} --side {params.side} --image-root {params.image_root:q} 2> {log}"


rule lmms_tasks:
    """The nine test files as lmms-eval tasks, scored by the workflow's scorer (docs/interop.md)."""
    input:
        list(TEST_FILES.values()),
    output:
        directory(LMMS_TASKS),
    log:
        f"{LOGS}/lmms_tasks.log",
    benchmark:
        f"{BENCH}/lmms_tasks.tsv"
    conda:
        "../envs/default.yaml"
    params:
        cells=lambda w, input: " ".join(f"{cell}={path}" for cell, path in zip(CELLS, input)),
        # The task folder names the root its images are below: another root rewrites it.
        image_root=IMAGE_ROOT,
    shell:
        "python -m sarchat_bench lmms-tasks --out {output} --image-root {params.image_root:q} {params.cells}"
        " 2> {log}"


rule infer_all:
    """Predictions of every model of `run` for the nine test files."""
    input:
        INFER_ALL,


rule score_all:
    """Score files of every model of `run` for the nine test files."""
    input:
        SCORE_ALL,
