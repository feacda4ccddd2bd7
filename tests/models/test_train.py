"""Real `swift sft` LoRA training of a tiny model: a killed job resumes from its checkpoint, and
a job whose settings changed trains a new adapter from step 0."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sarchat_bench.models.jobs import JobSpec, ModelJob, Resources, RunOptions
from sarchat_bench.models.sources import OFFLINE
from sarchat_bench.models.tokens import Conversations, TextTokens, processor_params
from sarchat_bench.models.train import (
    job_env,
    latest_checkpoint,
    master_port,
    record_shapes,
    sft_command,
    training_file,
)
from support.commands import cli

pytestmark = pytest.mark.swift


def test_sft_command_carries_the_paper_settings(tmp_path):
    cmd = sft_command(model_path="m", model_type="qwen2_vl", template="qwen2_vl", dataset="d.jsonl",
                      work_dir=tmp_path, settings={"tuner_type": "lora", "lora_rank": 8, "gradient_checkpointing": True,
                                                   "deepspeed": None, "dataloader_num_workers": 4},
                      load={"attn_impl": "eager"}, resume_from=tmp_path / "checkpoint-2")
    joined = " ".join(cmd)
    assert "--tuner_type lora --lora_rank 8 --gradient_checkpointing true" in joined
    assert "--deepspeed" not in joined and "--train_type" not in joined
    assert f"--resume_from_checkpoint {tmp_path / 'checkpoint-2'}" in joined
    # ms-swift runs in this interpreter (the job's environment), not the `swift` script's.
    assert cmd[:4] == [sys.executable, "-m", "swift.cli.main", "sft"]
    assert "--add_version false --check_model false" in joined and "--dataloader_num_workers 4" in joined
    assert "--attn_impl eager" in joined
    assert master_port("a") != master_port("b") and 20000 <= master_port("a") < 40000


def test_the_cheaper_recipes_reach_swift_as_its_options(tmp_path):
    def command(load=None, **settings):
        return " ".join(sft_command(model_path="m", model_type="qwen2_vl", template="qwen2_vl", dataset="d.jsonl",
                                    work_dir=tmp_path, settings={"max_length": 2048, **settings}, load=load))

    paper = command()
    assert "--grouping" not in paper and "--loss_scale" not in paper and "--packing" not in paper
    assert "--attn_impl" not in paper
    # Grouping made the data; swift gets the loss on every assistant turn, stated.
    grouped = command(grouping="all")
    assert "--grouping" not in grouped and "--loss_scale default" in grouped
    # Packing and padding-free need flash attention; a flash attention the entry names is kept.
    assert "--packing true" in command(packing=True) and "--attn_impl flash_attn" in command(packing=True)
    assert "--padding_free true" in command(padding_free=True)
    kept = command({"attn_impl": "flash_attention_2"}, packing=True)
    assert "--attn_impl flash_attention_2" in kept and "flash_attn " not in kept + " "


def test_a_grouped_run_of_several_epochs_reads_the_grouped_file_once_per_pass(tmp_path):
    conversations = [{"id": f"a{i}+1", "ids": [f"a{i}", f"b{i}"], "images": [f"{i}.jpg"], "task": "count",
                      "messages": [{"role": "user", "content": f"<image>qa{i}"}, {"role": "assistant", "content": "x"},
                                   {"role": "user", "content": f"qb{i}"}, {"role": "assistant", "content": "y"}]}
                     for i in range(10)]
    grouped = tmp_path / "grouped.jsonl"
    grouped.write_text("".join(json.dumps(c, sort_keys=True, separators=(",", ":")) + "\n" for c in conversations))

    def read(gpus=0, **settings):
        train = {"grouping": "all", "num_train_epochs": 1, "per_device_train_batch_size": 2,
                 "gradient_accumulation_steps": 2, **settings}
        spec = JobSpec("m", "qwen2_vl", "qwen2_vl", {"tiny": "qwen2_vl"}, {}, {}, "default", train, gpus)
        job = ModelJob("m", "train", spec, RunOptions({}, str(tmp_path / "cache")), Resources(gpus, 1, 1000, 10))
        return training_file(job, str(grouped), tmp_path / "m" / "work")

    passes_file = tmp_path / "m" / "turn_passes.jsonl"
    assert read() == (str(grouped), {}) and not passes_file.exists()  # one epoch: the file as it is
    assert read(max_steps=2) == (str(grouped), {})  # 8 of 10 conversations
    # 3 epochs: three passes, the first the file as written, one epoch over them.
    assert read(num_train_epochs=3) == (str(passes_file), {"num_train_epochs": 1.0})
    lines = passes_file.read_bytes().splitlines()
    assert len(lines) == 30 and b"\n".join(lines[:10]) + b"\n" == grouped.read_bytes()
    assert lines[10:20] != lines[:10] and lines[20:] != lines[10:20]
    # max_steps decides how far the run goes (25 steps of 4 conversations, 2 GPUs: 20 passes).
    assert read(gpus=2, max_steps=25) == (str(passes_file), {})
    assert len(passes_file.read_bytes().splitlines()) == 200
    assert read(num_train_epochs=2.5) == (str(passes_file), {"num_train_epochs": 2.5 / 3})
    assert read(grouping="none", num_train_epochs=3) == (str(grouped), {})


@pytest.mark.parametrize("arch,message", [
    ("llava1_5_hf", "ms-swift's template 'llava1_5_hf' does not support packing or padding-free training; "
                    "remove train.packing / padding_free for this model"),
    ("qwen2_vl", "train.packing / padding_free needs flash-attn, which environment 'default' lacks "
                 r"\(on a GPU node: `make flash-attn`, envs/gpu/flash-attn.txt\)"),
])
def test_packing_ms_swift_would_refuse_stops_the_job_before_training(arch, message, tiny, tmp_path):
    """llava1_5_hf's template cannot pack (ms-swift's own registry says so); qwen2_vl's can, but
    flash-attn is not installed on a machine without CUDA. Either stops with one line before
    `swift sft` loads anything."""
    import re

    work, sentinel = tmp_path / "work", tmp_path / "adapter.json"
    args = train_args(tiny, work, sentinel, packing=True)
    spec = json.loads(args[4])
    spec.update(model_path=str(tiny[arch]), model_type=arch, template=arch, source={"tiny": arch})
    args[4] = json.dumps(spec)
    job = cli(*args)
    output = job.communicate(timeout=300)[0]
    assert job.returncode == 1
    assert re.fullmatch(f"error: tiny: {message}", output.strip().splitlines()[-1]), output[-1000:]
    assert not work.exists() and not sentinel.exists()


def test_model_jobs_run_offline_on_the_model_cache(tmp_path):
    env = job_env("m", 2, tmp_path / "cache", {"MAX_PIXELS": "12544"})
    assert all(env[k] == "1" for k in OFFLINE) and {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} <= OFFLINE.keys()
    assert env["HF_HOME"] == str(tmp_path / "cache" / "huggingface")
    assert env["MODELSCOPE_CACHE"] == str(tmp_path / "cache" / "modelscope")
    assert env["NPROC_PER_NODE"] == "2" and env["MAX_PIXELS"] == "12544"
    # The records' images are relative to the dataset root: ms-swift resolves them against it.
    assert "ROOT_IMAGE_DIR" not in env or env["ROOT_IMAGE_DIR"] == os.environ.get("ROOT_IMAGE_DIR")
    moved = job_env("m", 0, tmp_path / "cache", image_root=tmp_path / "mounted" / "SARDet_100K")
    assert moved["ROOT_IMAGE_DIR"] == str(tmp_path / "mounted" / "SARDet_100K")


def train_args(tiny, work, sentinel, run_options=None, **settings):  # noqa: F811
    spec = {"model_path": str(tiny["qwen2_vl"]), "model_type": "qwen2_vl", "template": "qwen2_vl",
            "source": {"tiny": "qwen2_vl"}, "env": {"MAX_PIXELS": "12544"}, "load": {}, "environment": "default",
            "gpus": 0, "settings": {"tuner_type": "lora", "lora_rank": 8, "lora_alpha": 32,
                                    "target_modules": "all-linear", "learning_rate": 1e-4,
                                    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                                    "torch_dtype": "float32", "max_steps": 8, "max_length": 2048, **settings}}
    run = {"options": {"save_steps": 2, "logging_steps": 1, **(run_options or {})},
           "cache_dir": str(work.parent / "cache"), "threads": 1, "image_root": str(tiny["image_root"])}
    return ["train", "--model", "tiny", "--spec", json.dumps(spec), "--run", json.dumps(run), "--dataset",
            tiny["train"], "--work-dir", work, "--sentinel", sentinel]


def test_killed_training_resumes_and_changed_settings_retrain_from_step_0(tiny, tmp_path):  # noqa: F811
    work, sentinel = tmp_path / "work", tmp_path / "adapter.json"
    args = train_args(tiny, work, sentinel)
    env = {"MODELSCOPE_CACHE": str(tmp_path / "ms")}
    job = cli(*args, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and latest_checkpoint(work) is None and job.poll() is None:
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    killed_at = latest_checkpoint(work)
    assert killed_at is not None and not sentinel.exists()
    # Unchanged settings: resumes where the killed job stopped.
    job = cli(*args, env=env)
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0, log
    first = json.loads(sentinel.read_text())
    assert first["global_step"] == 8 and first["resumed_from"] == str(killed_at)
    assert f"resuming from {killed_at}" in log
    assert first["loss_points"] >= 1 and (tmp_path / "train_log.jsonl").stat().st_size > 0
    # Counted before swift sft: every sample fits 2048 tokens.
    assert (first["samples_over_max_length"], first["max_length"]) == (0, 2048)
    assert first["training_samples"] == len(Path(tiny["train"]).read_text().splitlines())
    # Killed after its last save, before the sentinel: the rerun takes the final checkpoint as it
    # is (resuming from it used to train a 9th step and call checkpoint-9 the adapter).
    sentinel.unlink()
    job = cli(*args, env=env)
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0 and "is the final checkpoint of this run; nothing left to train" in log, log
    again = json.loads(sentinel.read_text())
    assert (again["global_step"], again["adapter_digest"]) == (8, first["adapter_digest"])
    # Another learning rate after the finished run: its checkpoints are not resumed (before the
    # fix, the job went on from checkpoint-8 and called checkpoint-9 the new adapter).
    job = cli(*train_args(tiny, work, sentinel, learning_rate=2e-4), env=env)
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0, log
    second = json.loads(sentinel.read_text())
    assert "discarding its state" in log and "spec.settings.learning_rate" in log and "training from step 0" in log
    assert second["resumed_from"] is None and second["global_step"] == 8
    assert Path(second["adapter"]).name == "checkpoint-8" and second["adapter_digest"] != first["adapter_digest"]
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["global_step/max_steps"] for r in logged if "loss" in r and "global_step/max_steps" in r][0] == "1/8"


def test_over_long_samples_stop_the_job_before_swift_sft(tiny, tmp_path):  # noqa: F811
    """ms-swift drops a sample over max_length and trains on a random other one, without a word:
    the job counts them first (its tokenizer, its template's image tokens) and stops with one line."""
    text = TextTokens.of_model(tiny["qwen2_vl"])
    lengths = Conversations("qwen2_vl", text, {"MAX_PIXELS": "12544"},
                            processor_params("qwen2_vl", tiny["qwen2_vl"], text)).lengths(record_shapes(tiny["train"]))
    max_length = sorted(lengths)[len(lengths) // 2]
    over = sum(n > max_length for n in lengths)
    assert 0 < over < len(lengths)
    work, sentinel = tmp_path / "work", tmp_path / "adapter.json"
    job = cli(*train_args(tiny, work, sentinel, max_length=max_length), env={"MODELSCOPE_CACHE": str(tmp_path / "ms")})
    log = job.communicate(timeout=300)[0]
    assert job.returncode != 0 and not sentinel.exists() and "running:" not in log, log
    error = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(error) == 1, log
    assert f"{over} of {len(lengths)} training samples" in error[0]
    assert f"longer than max_length {max_length}" in error[0]
    assert "MAX_PIXELS" in error[0] and "max_overlong_fraction" in error[0]
    assert latest_checkpoint(work) is None
