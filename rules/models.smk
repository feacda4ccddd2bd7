# Training (issue #3): one ms-swift LoRA job per model; tiny random models for the demo.


rule tiny_model:
    input:
        f"{SARCHAT}/train.jsonl",
    output:
        directory(f"{MODELS_DIR}/tiny/{{architecture}}"),
    wildcard_constraints:
        architecture="|".join(ARCHITECTURES),
    log:
        f"{LOGS}/tiny_model/{{architecture}}.log",
    benchmark:
        f"{BENCH}/tiny_model/{{architecture}}.tsv"
    conda:
        "../envs/sarchat.yaml"
    shell:
        "python -m sarchat_bench tiny-model --architecture {wildcards.architecture} --out {output}"
        " --corpus {input} 2> {log}"


rule train_model:
    input:
        dataset=f"{SARCHAT}/train.jsonl",
        model=tiny_source,
    output:
        # The sentinel is written last. Checkpoints stay in work/, which is not declared
        # (Snakemake would delete it when a job fails) so that a rerun resumes from them.
        f"{MODELS_DIR}/{{model}}/adapter.json",
    wildcard_constraints:
        model=MODEL_KEYS,
    params:
        spec=train_spec,
        work_dir=lambda w, output: Path(output[0]).with_name("work"),
    threads: job_threads("train")
    resources:
        gpu=job_resource("train", "gpus"),
        cpus_per_gpu=job_resource("train", "cpus_per_gpu"),
        mem_mb=job_resource("train", "mem_mb"),
        runtime=job_resource("train", "runtime"),
    log:
        f"{LOGS}/train/{{model}}.log",
    benchmark:
        f"{BENCH}/train/{{model}}.tsv"
    conda:
        conda_env
    shell:
        "python -m sarchat_bench train --model {wildcards.model} --spec {params.spec:q} --dataset {input.dataset}"
        " --work-dir {params.work_dir} --sentinel {output} --gpus {resources.gpu} --workers {threads} > {log} 2>&1"


rule merge_adapter:
    input:
        f"{MODELS_DIR}/{{model}}/adapter.json",
    output:
        directory(f"{MODELS_DIR}/{{model}}/merged"),
    wildcard_constraints:
        model=MODEL_KEYS,
    params:
        adapter=lambda w, input: json.loads(Path(input[0]).read_text())["adapter"],
    resources:
        mem_mb=job_resource("train", "mem_mb"),
        runtime=60,
    log:
        f"{LOGS}/merge_adapter/{{model}}.log",
    benchmark:
        f"{BENCH}/merge_adapter/{{model}}.tsv"
    conda:
        conda_env
    shell:
        "swift export --adapters {params.adapter} --merge_lora true --output_dir {output} > {log} 2>&1"


rule train_all:
    input:
        TRAIN_ALL,
