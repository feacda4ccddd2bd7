"""The model-job contract (sarchat_bench.models.jobs): which settings shape a job's output (and
rerun it), which only say how it runs, and which are what it asks the cluster for."""

import copy
import json

import pytest
from sarchat_bench.core.configuration import validated
from sarchat_bench.models.jobs import JobSpec, ModelJob, RunOptions
from support import CONFIG

SITE = {"account": "lab", "cpu_partition": "cpu", "gpu_partition": "gpu", "gpu_model": "a100", "max_runtime": 1440,
        "max_mem_mb": 200000}


def job(section, threads=None, **changes) -> ModelJob:
    config = validated(copy.deepcopy(CONFIG))
    config["models"]["qwen2-vl-2b"][section] = changes
    return ModelJob.of(config, "qwen2-vl-2b", section, threads)


@pytest.mark.parametrize("section,key,value", [
    ("train", "learning_rate", 2e-4), ("train", "lora_rank", 16), ("train", "gpus", 4), ("train", "max_length", 4096),
    ("train", "extra_args", {"packing": True}), ("train", "grouping", "identify"), ("train", "grouping", "all"),
    ("train", "packing", True), ("train", "padding_free", True), ("train", "gradient_checkpointing", False),
    ("infer", "max_new_tokens", 64), ("infer", "backend", "vllm"),
    ("infer", "format_instruction", "Answer briefly."), ("infer", "torch_dtype", "float16"),
])
def test_what_shapes_the_output_changes_the_spec(section, key, value):
    assert job(section, **{key: value}).spec != job(section).spec


@pytest.mark.parametrize("section,key,value", [
    ("train", "save_steps", 7), ("train", "logging_steps", 3), ("train", "save_total_limit", 1),
    ("train", "cpus_per_gpu", 2), ("train", "mem_mb", 1000), ("train", "runtime", 5),
    ("infer", "batch_size", 5), ("infer", "requests_per_call", 7), ("infer", "concurrency", 9),
    ("infer", "retries", 1), ("infer", "request_timeout_s", 3), ("infer", "samples_per_shard", 100),
    ("infer", "gpus", 2), ("infer", "mem_mb", 100),
])
def test_how_a_job_runs_and_what_it_asks_for_leave_the_spec_alone(section, key, value):
    changed, same = job(section, **{key: value}), job(section)
    assert changed.spec.to_json() == same.spec.to_json()
    assert changed.run != same.run or changed.resources != same.resources or key == "samples_per_shard"


def test_grouping_none_written_down_is_the_papers_recipe_left_out():
    """An existing run stays up to date when a config spells out the default."""
    assert job("train", grouping="none").spec.to_json() == job("train").spec.to_json()
    assert job("train", grouping="all").spec.settings["grouping"] == "all"


def test_the_spec_and_the_run_options_round_trip_as_the_rules_pass_them():
    made = job("train", threads=16)
    read = ModelJob.read("qwen2-vl-2b", "train", json.loads(made.spec.to_json()), json.loads(made.run.to_json()))
    assert read.spec == made.spec and read.run == made.run
    assert made.run.options["dataloader_num_workers"] == 8  # its share of the job's CPUs per GPU (2 GPUs)
    assert isinstance(read.spec, JobSpec) and isinstance(read.run, RunOptions)


def test_a_retried_job_asks_for_more_within_the_sites_limits():
    resources = job("train", gpus=2, cpus_per_gpu=8, mem_mb=128000, runtime=1000).resources
    assert resources.threads == 16
    first, second = resources.request(SITE, 1), resources.request(SITE, 2)
    assert (first["mem_mb"], first["runtime"], second["mem_mb"], second["runtime"]) == (128000, 1000, 200000, 1440)
    assert (first["gpu"], first["gpu_model"], first["slurm_partition"], first["slurm_account"]) == (2, "a100", "gpu",
                                                                                                    "lab")


def test_a_cpu_job_asks_for_no_gpu_type():
    request = job("infer", gpus=0, cpus_per_gpu=3).resources.request(SITE)
    assert (request["gpu"], request["gpu_model"], request["slurm_partition"]) == (0, "", "cpu")


def test_vllm_inference_runs_in_its_own_environment():
    assert job("infer", backend="vllm").spec.environment == "vllm" and job("infer").spec.environment == "default"
