"""Models are fetched once, where the workflow starts, and the model jobs read them offline.

The hub is a stand-in (tests/fake_hub.py: the real huggingface_hub client against a local HTTP
server), because tests cannot reach Hugging Face; the code repository is a real git repository
cloned over file://, and the training job is the real one."""

import json
import subprocess

import orjson
import pytest
import yaml
from support.commands import run_cli
from support.fake_hub import commit_id, serve_hub
from support.workflow import planned_rules, snakemake

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
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True).stdout.strip()
    return {"models": root / "models", "code_url": f"file://{code}", "code_commit": pinned, "code_main": head}


def hub_config(hub, cache, code_revision=None):
    return DEMO + f"""cache_dir: {cache}
run: [hubbed]
models:
  hubbed:
    family: Tiny LLaVA-1.5 from a hub
    params_b: 0.0001
    source: {{hub: org/tiny-llava, revision: main}}
    code_repo: {{url: "{hub['code_url']}", revision: {code_revision or hub['code_commit']}}}
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
    # `main` resolved once and recorded, with the code repository's commit, in the model lock.
    lock = yaml.safe_load((tmp_path / "envs" / "locks" / "models.yaml").read_text())
    assert lock == {"hub_models": {"org/tiny-llava": {"revision": "main", "commit": commit}},
                    "code_repos": {hub["code_url"]: {"revision": hub["code_commit"], "commit": hub["code_commit"]}}}
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


def test_the_model_lock_is_what_later_prefetches_fetch_and_what_jobs_load(hub, tmp_path):
    """A lock (another site's, committed) pins `main` of the model and of its code repository to
    older commits: the prefetch fetches those, not what `main` is now. A lock changed since the
    prefetch stops the training job with one line, before anything loads, and reruns nothing."""
    older_model, lock_path = "1" * 40, tmp_path / "envs" / "locks" / "models.yaml"
    lock_path.parent.mkdir(parents=True)
    pins = {"hub_models": {"org/tiny-llava": {"revision": "main", "commit": older_model}},
            "code_repos": {hub["code_url"]: {"revision": "main", "commit": hub["code_commit"]}}}
    lock_path.write_text(yaml.safe_dump(pins))
    extra = hub_config(hub, tmp_path / "cache", code_revision="main")
    with serve_hub(hub["models"]) as url:
        snakemake(tmp_path, "prefetch_models", extra_config=extra, env={"HF_ENDPOINT": url})
    manifest = tmp_path / "results" / "models" / "hubbed" / "source.json"
    info = orjson.loads(manifest.read_bytes())
    assert info["commit"] == older_model != commit_id(hub["models"] / "org" / "tiny-llava")
    assert info["path"].endswith(f"/snapshots/{older_model}")
    assert (tmp_path / "cache" / "code" / f"TinyVL-{hub['code_commit']}" / "model.py").read_text() == "VERSION = 1\n"
    assert hub["code_main"] != hub["code_commit"] and yaml.safe_load(lock_path.read_text()) == pins
    # The lock moves on (another commit pinned): the snapshot prefetched before is not it.
    pins["hub_models"]["org/tiny-llava"]["commit"] = "2" * 40
    lock_path.write_text(yaml.safe_dump(pins))
    assert "prefetch_model" not in planned_rules(tmp_path, "results/models/hubbed/adapter.json", extra_config=extra)
    result = snakemake(tmp_path, "results/models/hubbed/adapter.json", extra_config=extra, check=False)
    log = (tmp_path / "results" / "logs" / "train" / "hubbed.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in log, log
    assert errors[0] == (f"error: org/tiny-llava (main): the model lock envs/locks/models.yaml pins commit {'2' * 40}, "
                         f"but the prefetched snapshot (results/models/hubbed/source.json) is commit {older_model}: "
                         "delete results/models/hubbed/source.json and run `snakemake prefetch_models` (it fetches "
                         "what the lock names, or records it)")
