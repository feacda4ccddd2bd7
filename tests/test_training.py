"""Real `swift sft` LoRA training of a tiny model: a killed job resumes from its checkpoint."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from sarchat_bench.training import latest_checkpoint, master_port, sft_command
from test_inference import cli, tiny  # noqa: F401  (fixture)

pytestmark = pytest.mark.swift


def test_sft_command_carries_the_paper_settings(tmp_path):
    cmd = sft_command(model_path="m", model_type="qwen2_vl", template="qwen2_vl", dataset="d.jsonl",
                      work_dir=tmp_path, workers=4, settings={"tuner_type": "lora", "lora_rank": 8,
                                                              "gradient_checkpointing": True, "deepspeed": None},
                      resume_from=tmp_path / "checkpoint-2")
    joined = " ".join(cmd)
    assert "--tuner_type lora --lora_rank 8 --gradient_checkpointing true" in joined
    assert "--deepspeed" not in joined and "--train_type" not in joined
    assert f"--resume_from_checkpoint {tmp_path / 'checkpoint-2'}" in joined
    assert cmd[1] == "sft" and Path(cmd[0]).name == "swift"
    assert "--add_version false --check_model false" in joined and "--dataloader_num_workers 4" in joined
    assert master_port("a") != master_port("b") and 20000 <= master_port("a") < 40000


def test_killed_training_resumes_from_last_checkpoint(tiny, tmp_path):  # noqa: F811
    work, sentinel = tmp_path / "work", tmp_path / "adapter.json"
    spec = {"model_path": str(tiny["qwen2_vl"]), "model_type": "qwen2_vl", "template": "qwen2_vl",
            "source": {"tiny": "qwen2_vl"}, "env": {"MAX_PIXELS": "12544"},
            "settings": {"tuner_type": "lora", "lora_rank": 8, "lora_alpha": 32, "target_modules": "all-linear",
                         "learning_rate": 1e-4, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                         "torch_dtype": "float32", "max_steps": 8, "save_steps": 2, "logging_steps": 1,
                         "max_length": 2048}}
    args = ["train", "--model", "tiny", "--spec", json.dumps(spec), "--dataset", tiny["train"], "--work-dir", work,
            "--sentinel", sentinel]
    env = {"MODELSCOPE_CACHE": str(tmp_path / "ms")}
    job = cli(*args, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and latest_checkpoint(work) is None and job.poll() is None:
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    killed_at = latest_checkpoint(work)
    assert killed_at is not None and not sentinel.exists()
    job = cli(*args, env=env)
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0, log
    info = json.loads(sentinel.read_text())
    assert info["global_step"] == 8 and info["resumed_from"] == str(killed_at)
    assert f"resuming from {killed_at}" in log
    assert (tmp_path / "loss.png").stat().st_size > 0 and info["loss_points"] >= 1
