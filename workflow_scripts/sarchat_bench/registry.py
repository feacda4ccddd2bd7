"""The model registry (config `models:`): defaults, sources, and checks against the installed
ms-swift's own registry."""

from __future__ import annotations

import re
from pathlib import Path

# The paper's 16 models (§5.2 and the authors' repository), in the order of Table 3.
PAPER_MODELS = ("internvl2.5-8b", "internvl2.5-4b", "internvl2.5-2b", "internvl2.5-1b", "deepseek-vl-7b",
                "deepseek-vl-1.3b", "phi3.5-vision", "glm-edge-v-2b", "glm-edge-v-5b", "mplug-owl3-7b",
                "mplug-owl3-2b", "mplug-owl3-1b", "qwen2-vl-7b", "qwen2-vl-2b", "llava1.5-7b", "yi-vl-6b")
TINY_DIR = "results/models/tiny"
ENTRY_DEFAULTS = {"mode": "finetune", "coords": "pixel", "environment": "default", "env": {}, "load": {},
                  "train": {}, "infer": {}}
# Scheduling resources: a change reruns nothing (a retried job gets more of them).
JOB_KEYS = ("gpus", "cpus_per_gpu", "mem_mb", "runtime")
# Settings that change how a job runs but not what it produces: a change reruns nothing, and
# the job's checkpoints or partial answers stay valid.
RUN_OPTION_KEYS = {"train": ("logging_steps", "save_steps", "save_total_limit"),
                   "infer": ("batch_size", "requests_per_call", "concurrency", "retries", "request_timeout_s")}
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class RegistryError(ValueError):
    pass


def run_models(config: dict) -> list[str]:
    """The model keys to run; an unknown key is an error that lists the known ones."""
    run = config["run"]
    keys = list(PAPER_MODELS) if run == "paper" else list(run)
    unknown = [k for k in keys if k not in config["models"]]
    if unknown:
        raise RegistryError(f"config 'run' names unknown model(s) {unknown}; known: {', '.join(config['models'])}")
    return keys


def entry(config: dict, key: str) -> dict:
    """A model's entry with defaults filled in and train/infer merged over the global ones."""
    if key not in config["models"]:
        raise RegistryError(f"unknown model {key!r}; known: {', '.join(config['models'])}")
    e = {**ENTRY_DEFAULTS, **config["models"][key]}
    e["train"] = {**config["training"], **e["train"]}
    e["infer"] = {**config["inference"], **e["infer"]}
    if "endpoint" in e.get("source", {}):
        if e["mode"] != "zero_shot":
            raise RegistryError(f"model {key!r}: a served model (source.endpoint) is evaluated as it is: "
                                "give it mode: zero_shot")
        e["infer"]["gpus"] = 0  # the server has the GPUs; the job only sends requests
    return e


def model_path(e: dict) -> str:
    """What ms-swift gets as --model: a hub id, a local folder, or the tiny model's folder."""
    source = e["source"]
    if "tiny" in source:
        # Built in the environment that trains it: a tokenizer saved by transformers 5 does not
        # load under 4.57.
        return f"{TINY_DIR}/{e['environment']}/{source['tiny']}"
    if "local" in source:
        return source["local"]
    if "endpoint" in source:
        return source["endpoint"]["base_url"]
    return source["hub"]


def check_local_source(key: str, e: dict) -> None:
    source = e["source"]
    if "local" in source and not Path(source["local"]).is_dir():
        raise RegistryError(f"model {key!r}: local source {source['local']!r} is not a folder")


def job_settings(e: dict, section: str) -> dict:
    """The settings that shape what a train/infer job produces: without its scheduling
    resources, its run options and the shard size, so that changing those reruns nothing."""
    return {k: v for k, v in e[section].items()
            if k not in JOB_KEYS and k not in RUN_OPTION_KEYS[section] and k != "samples_per_shard"}


def run_options(e: dict, section: str) -> dict:
    return {k: v for k, v in e[section].items() if k in RUN_OPTION_KEYS[section]}


def check_against_swift(key: str, e: dict) -> list[str]:
    """Problems of an entry against the installed ms-swift registry (empty when fine).

    A hub id that ms-swift does not list for the model type is a problem unless the entry's
    `note` explains it; an unpinned revision is reported as a warning line ("warning: ...").
    """
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING

    problems = []
    if e["model_type"] not in MODEL_MAPPING:
        problems.append(f"{key}: model_type {e['model_type']!r} is not in ms-swift's model registry")
    if e["template"] not in TEMPLATE_MAPPING:
        problems.append(f"{key}: template {e['template']!r} is not in ms-swift's template registry")
    source = e["source"]
    if "hub" in source and e["model_type"] in MODEL_MAPPING:
        meta = MODEL_MAPPING[e["model_type"]]
        ids = {i for g in meta.model_groups for m in g.models for i in (m.ms_model_id, m.hf_model_id) if i}
        if source["hub"] not in ids and not e.get("note"):
            problems.append(f"{key}: {source['hub']} is not registered for {e['model_type']} and no note says why")
        if not COMMIT_RE.match(source["revision"]):
            problems.append(f"warning: {key}: revision {source['revision']!r} is not a pinned commit")
    if e.get("code_repo") and not COMMIT_RE.match(e["code_repo"]["revision"]):
        problems.append(f"warning: {key}: code_repo revision {e['code_repo']['revision']!r} is not a pinned commit")
    return problems


# Qwen2.5-VL's processor resizes images to sides that are multiples of 28 (14-pixel patches,
# 2x2 merged), between 4 and 16,384 tokens unless MIN_PIXELS / MAX_PIXELS say otherwise.
QWEN25_FACTOR, QWEN25_MIN_TOKENS, QWEN25_MAX_TOKENS = 28, 4, 16384


def scorer_coords(e: dict) -> str:
    """The box convention the scorer converts a model's answers from: a fine-tuned model answers
    in the dataset's own (pixels of the original image); the others in their `coords`."""
    if e["mode"] == "finetune":
        return "pixel"
    if e["coords"] != "qwen2_5_vl":
        return e["coords"]
    tokens = {"MIN_PIXELS": QWEN25_MIN_TOKENS, "MAX_PIXELS": QWEN25_MAX_TOKENS}
    pixels = {k: int(e["env"].get(k, n * QWEN25_FACTOR ** 2)) for k, n in tokens.items()}
    return f"resized:{QWEN25_FACTOR}:{pixels['MIN_PIXELS']}:{pixels['MAX_PIXELS']}"
