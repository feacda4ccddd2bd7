# Models: fetched once (prefetch), tiny random ones built here, one ms-swift LoRA job each.


rule prefetch_model:
    """Download a hub model at its pinned revision (and its code repository) into the model cache."""
    output:
        f"{MODELS_DIR}/{{model}}/source.json",
    log:
        f"{LOGS}/prefetch_model/{{model}}.log",
    benchmark:
        f"{BENCH}/prefetch_model/{{model}}.tsv"
    wildcard_constraints:
        model=HUB_MODELS,
    conda:
        "../envs/default.yaml"
    params:
        entry=lambda w: json.dumps({k: model_entry(w.model).get(k) for k in ("source", "code_repo")}, sort_keys=True),
        cache_dir=CACHE_DIR,
        # What to fetch where the lock names it; a lock changed since stops the model jobs
        # instead (models.sources.check_against_lock): a change reruns nothing.
        lock=untracked(MODEL_LOCK_OPTION),
    shell:
        "python -m sarchat_bench prefetch --model {wildcards.model} --entry {params.entry:q}"
        " --cache-dir {params.cache_dir:q} --out {output} {params.lock} 2> {log}"


rule tiny_model:
    """Build a tiny vision-language model with random weights, in the environment that will train it."""
    input:
        f"{SARCHAT}/train.jsonl",
    output:
        directory(tiny_model_folder("{environment}", "{architecture}")),
    log:
        f"{LOGS}/tiny_model/{{environment}}/{{architecture}}.log",
    benchmark:
        f"{BENCH}/tiny_model/{{environment}}/{{architecture}}.tsv"
    wildcard_constraints:
        architecture="|".join(ARCHITECTURES),
        environment="[a-z0-9_]+",
    conda:
        "../envs/{environment}.yaml"
    shell:
        "python -m sarchat_bench tiny-model --architecture {wildcards.architecture} --environment {wildcards.environment}"
        " --out {output} --corpus {input} 2> {log}"


rule grouped_mix:
    """A training file's samples as multi-turn conversations per image, counted with the model's template."""
    input:
        unpack(grouped_mix_inputs),
    output:
        records=f"{GROUPED}/{{mix}}.jsonl",
        summary=f"{GROUPED}/{{mix}}.summary.json",
    log:
        f"{LOGS}/grouped_mix/{{mix}}.log",
    benchmark:
        f"{BENCH}/grouped_mix/{{mix}}.tsv"
    wildcard_constraints:
        mix=GROUPED_NAMES,
    conda:
        lambda w: f"../envs/{GROUPED_MIXES[w.mix][0].environment}.yaml"
    params:
        spec=lambda w: GROUPED_MIXES[w.mix][0].to_json(),
        source=source_option,
        cache_dir=untracked(CACHE_DIR),
        image_root=untracked(IMAGE_ROOT),
    shell:
        "python -m sarchat_bench group-conversations --spec {params.spec:q} {params.source}"
        " --cache-dir {params.cache_dir:q} --image-root {params.image_root:q} --out {output.records} --summary {output.summary} 2> {log}"


rule train_model:
    """LoRA fine-tuning of one model with swift sft (resumes a killed run; retrains when settings change)."""
    input:
        unpack(model_inputs),
        dataset=training_data,
    output:
        # The sentinel is written last. Checkpoints stay in work/, which is not declared
        # (Snakemake would delete it when a job fails) so that a rerun resumes from them.
        f"{MODELS_DIR}/{{model}}/adapter.json",
    log:
        f"{LOGS}/train/{{model}}.log",
    benchmark:
        f"{BENCH}/train/{{model}}.tsv"
    wildcard_constraints:
        model=MODEL_KEYS,
    conda:
        conda_env("train")
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    params:
        spec=job_spec("train"),
        run=job_run("train"),
        source=source_option,
        work_dir=lambda w, output: Path(output[0]).with_name("work"),
    shell:
        "python -m sarchat_bench train --model {wildcards.model} --spec {params.spec:q} --run {params.run:q}"
        " --dataset {input.dataset} {params.source} --work-dir {params.work_dir} --sentinel {output} > {log} 2>&1"


rule loss_curve:
    """A model's training loss per logged step, from ms-swift's log of its training run."""
    input:
        f"{MODELS_DIR}/{{model}}/adapter.json",
    output:
        report(f"{MODELS_DIR}/{{model}}/loss.png", category="Training", caption="report/loss.rst"),
    log:
        f"{LOGS}/loss_curve/{{model}}.log",
    benchmark:
        f"{BENCH}/loss_curve/{{model}}.tsv"
    wildcard_constraints:
        model=MODEL_KEYS,
    conda:
        "../envs/default.yaml"
    params:
        train_log=lambda w, input: train_log_path(input[0]),
    shell:
        "python -m sarchat_bench loss-curve --model {wildcards.model} --train-log {params.train_log}"
        " --out {output} 2> {log}"


rule merge_adapter:
    """Merge a model's LoRA adapter into full weights, for backends that need them."""
    input:
        unpack(model_inputs),
        adapter=f"{MODELS_DIR}/{{model}}/adapter.json",
    output:
        directory(f"{MODELS_DIR}/{{model}}/merged"),
    log:
        f"{LOGS}/merge_adapter/{{model}}.log",
    benchmark:
        f"{BENCH}/merge_adapter/{{model}}.tsv"
    wildcard_constraints:
        model=MODEL_KEYS,
    conda:
        conda_env("train")
    threads: job_threads("train")
    resources:
        **job_resources("train", runtime=60),
    params:
        spec=job_spec("train"),
        run=job_run("train"),
        source=source_option,
    shell:
        "python -m sarchat_bench merge --model {wildcards.model} --spec {params.spec:q} --run {params.run:q}"
        " --adapter-info {input.adapter} {params.source} --out {output} > {log} 2>&1"


rule prefetch_models:
    """Fetch every hub model of `run` into the model cache (run this where there is network)."""
    input:
        PREFETCH_ALL,


rule train_all:
    """Train a LoRA adapter for every fine-tuned model of `run`."""
    input:
        TRAIN_ALL,


rule plan:
    """The plan before launch: tokens, optimizer steps and GPU-hours of every model of `run`."""
    input:
        train_tables=box_tables(TRAIN_SPLITS),
        test_tables=box_tables(TEST_SPLITS),
        train_summaries=TRAIN_SUMMARY,
        test_summaries=TEST_SUMMARIES,
        # A tiny model's own tokenizer and processor; hub models are read from the cache if there.
        tiny_models=PLAN_TINY_MODELS,
    output:
        page=report(PLAN_PAGE, category="Cost", caption="report/plan.rst"),
        files=PLAN_FILES,
    log:
        f"{LOGS}/plan.log",
    benchmark:
        f"{BENCH}/plan.tsv"
    conda:
        "../envs/default.yaml"
    params:
        settings=PLAN_SETTINGS,
        # Where prefetched hub models (their tokenizers) are read from: a move reruns nothing.
        cache_dir=untracked(CACHE_DIR),
        out_dir=lambda w, output: Path(output.page).parent,
    shell:
        "python -m sarchat_bench plan --settings {params.settings:q} --cache-dir {params.cache_dir:q}"
        " --out-dir {params.out_dir}"
        " --train-tables {input.train_tables} --test-tables {input.test_tables}"
        " --train-summaries {input.train_summaries} --test-summaries {input.test_summaries} 2> {log}"
