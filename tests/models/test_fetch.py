"""Models are fetched once, where the workflow starts, and the model jobs read them offline.

The hub is a stand-in (tests/fake_hub.py: the real huggingface_hub client against a local HTTP
server), because tests cannot reach Hugging Face; the code repository is a real git repository
cloned over file://, and the training job is the real one."""

import json
import subprocess

import orjson
import pytest
from support.commands import run_cli
from support.fake_hub import commit_id, serve_hub
from support.workflow import snakemake

pytestmark = pytest.mark.workflow
DEMO = "demo: {seed: 5, images: {train: 6, test: 4}}\n"


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub folder holding a tiny LLaVA-1.5 as `org/tiny-llava`, and a code repository."""
    root = tmp_path_factory.mktemp("hub")
    corpus = root / "corpus.jsonl"
    corpus.write_text(json.dumps({"messages": [{"role": "user", "content": "<image>How many ships are there?"},
                                               {"role": "assistant", "content": "There are 2 ships."}]}) + "\n")
    result = run_cli("tiny-model", "--architecture", "llava1_5_hf", "--out", root / "models" / "org" / "tiny-llava",
                     "--corpus", corpus)
    assert result.returncode == 0, result.stderr
    code = root / "code" / "TinyVL"
    code.mkdir(parents=True)
    (code / "model.py").write_text("VERSION = 1\n")
    git("init", "-q", "-b", "main", cwd=code)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start", cwd=code)
    git("add", "model.py", cwd=code)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "v1", cwd=code)
    pinned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True).stdout.strip()
    (code / "model.py").write_text("VERSION = 2\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "v2", cwd=code)
    return {"models": root / "models", "code_url": f"file://{code}", "code_commit": pinned}


def hub_config(hub, cache):
    return DEMO + f"""cache_dir: {cache}
run: [hubbed]
models:
  hubbed:
    family: Tiny LLaVA-1.5 from a hub
    params_b: 0.0001
    source: {{hub: org/tiny-llava, revision: main}}
    code_repo: {{url: "{hub['code_url']}", revision: {hub['code_commit']}}}
    model_type: llava1_5_hf
    template: llava1_5_hf
    train: {{max_steps: 2, save_steps: 1, logging_steps: 1, torch_dtype: float32, gpus: 0, cpus_per_gpu: 1,
             mem_mb: 4000, runtime: 30}}
"""


def test_prefetch_then_train_offline(hub, tmp_path):
    cache = tmp_path / "cache"
    extra = hub_config(hub, cache)
    result = snakemake(tmp_path, "results/models/hubbed/adapter.json", "--dry-run", extra_config=extra)
    plan = result.stdout + result.stderr
    assert "rule prefetch_model:" in plan and "rule train_model:" in plan
    with serve_hub(hub["models"]) as url:
        snakemake(tmp_path, "prefetch_models", extra_config=extra, env={"HF_ENDPOINT": url})
    info = orjson.loads((tmp_path / "results" / "models" / "hubbed" / "source.json").read_bytes())
    commit = commit_id(hub["models"] / "org" / "tiny-llava")
    assert info["commit"] == commit and info["hub"] == "org/tiny-llava"
    snapshot = cache / "huggingface" / "hub" / "models--org--tiny-llava" / "snapshots" / commit
    assert info["path"] == str(snapshot) and (snapshot / "config.json").is_file()
    # The code repository at its pinned commit, not the branch's newer state.
    assert (cache / "code" / f"TinyVL-{hub['code_commit']}" / "model.py").read_text() == "VERSION = 1\n"
    assert info["code_repo"] == str(cache / "code" / f"TinyVL-{hub['code_commit']}")
    # The hub is gone: the training job loads the snapshot, with the hubs switched off.
    snakemake(tmp_path, "results/models/hubbed/adapter.json", extra_config=extra)
    log = (tmp_path / "results" / "logs" / "train" / "hubbed.log").read_text()
    assert f"--model {snapshot} " in log and f"--local_repo_path {info['code_repo']}" in log
    adapter = orjson.loads((tmp_path / "results" / "models" / "hubbed" / "adapter.json").read_bytes())
    assert adapter["global_step"] == 2
    # A second prefetch finds everything in the cache and asks no hub (none is running).
    (tmp_path / "results" / "models" / "hubbed" / "source.json").unlink()
    result = snakemake(tmp_path, "prefetch_models", extra_config=extra, check=False,
                       env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
