"""Provenance: the run's commit and config, and what each shard's inference job ran with,
merged per cell and carried into score files."""

import hashlib
import subprocess

from sarchat_bench.core import provenance
from sarchat_bench.core.io import read_json, write_json


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_git_commit_names_head_and_says_when_the_checkout_differs(tmp_path):
    assert provenance.git_commit(tmp_path) is None  # not a checkout
    git(tmp_path, "init", "-q")
    (tmp_path / "Snakefile").write_text("rule all:\n")
    git(tmp_path, "add", "Snakefile")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert provenance.git_commit(tmp_path) == head.strip()
    (tmp_path / "untracked.txt").write_text("results are not code")
    assert provenance.git_commit(tmp_path) == head.strip()
    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    assert provenance.git_commit(tmp_path) == head.strip() + "+modified"


def test_config_digest_follows_the_settings_not_their_order():
    assert provenance.config_digest({"a": 1, "b": {"c": 2}}) == provenance.config_digest({"b": {"c": 2}, "a": 1})
    assert provenance.config_digest({"a": 1}) != provenance.config_digest({"a": 2})


def test_shards_merge_into_one_provenance_per_run(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.GIT_COMMIT_ENV, "abc")
    monkeypatch.setenv(provenance.CONFIG_DIGEST_ENV, "def")
    made_from = {"spec": {"source": {"hub": "Qwen/Qwen2-VL-2B-Instruct", "revision": "main"}},
                 "model": {"hub": "Qwen/Qwen2-VL-2B-Instruct", "snapshot": "0123"}, "adapter": "feed"}
    shards = [tmp_path / f"count.{i}-of-3.jsonl" for i in (1, 2, 3)]
    for shard in shards[:2]:
        provenance.write_inference(shard, made_from)
    second = read_json(provenance.sidecar(shards[1]))
    second["job"]["host"] = "gpu-node-7"  # the same run on another node
    write_json(provenance.sidecar(shards[1]), second)
    merged_path = tmp_path / "count.jsonl"
    merged_path.write_text('{"id": "a", "response": "x"}\n')
    provenance.merge_inference(shards, merged_path)
    merged = read_json(provenance.sidecar(merged_path))
    (run,) = merged["inference"]
    assert run["shards"] == 2 and "gpu-node-7" in run["hosts"] and len(run["hosts"]) == 2
    assert run["job"]["git_commit"] == "abc" and run["job"]["config_digest"] == "def"
    assert run["job"]["packages"]["torch"] and "vllm" in run["job"]["packages"]
    assert run["model"]["adapter_digest"] == "feed" and run["model"]["source"]["revision"] == "main"
    assert merged["shards_without_provenance"] == ["count.3-of-3.jsonl"]
    score_side = provenance.for_score_file(merged_path)
    assert score_side["predictions"] == merged and score_side["scoring"]["packages"]["numpy"]


def test_predictions_made_elsewhere_are_named_by_their_digest(tmp_path):
    path = tmp_path / "classify.jsonl"
    path.write_text('{"id": "a", "response": "ship"}\n')
    side = provenance.for_score_file(path)
    assert side["predictions"]["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert side["predictions"]["inference"] == []
