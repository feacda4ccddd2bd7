"""The model registry (config `models:`): an entry with its defaults, where its model comes from,
and checks against the installed ms-swift's own registry. Whether a config's entries are valid
is core.configuration's to say; what a model job is made of, models.jobs'."""

from __future__ import annotations

import re

from sarchat_bench.core.errors import SarchatError
from sarchat_bench.paper.printed import PAPER_MODELS

TINY_DIR = "results/models/tiny"
ENTRY_DEFAULTS = {"mode": "finetune", "coords": "pixel", "environment": "default", "env": {}, "load": {},
                  "train": {}, "infer": {}, "allow_empty_answers": False}
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class RegistryError(SarchatError, ValueError):
    pass


def run_models(config: dict) -> list[str]:
    """The model keys `run` names ("paper": the paper's 16)."""
    return list(PAPER_MODELS) if config["run"] == "paper" else list(config["run"])


def entry(config: dict, key: str) -> dict:
    """A model's entry with defaults filled in and train/infer merged over the global ones."""
    if key not in config["models"]:
        raise RegistryError(f"unknown model {key!r}; known: {', '.join(config['models'])}")
    e = {**ENTRY_DEFAULTS, **config["models"][key]}
    e["train"] = {**config["training"], **e["train"]}
    e["infer"] = {**config["inference"], **e["infer"]}
    if "endpoint" in e.get("source", {}):
        e["infer"]["gpus"] = 0  # the server has the GPUs; the job only sends requests
    return e


def tiny_model_folder(environment: str, architecture: str) -> str:
    """Where the tiny model of an architecture is built, in the environment that trains it (a
    tokenizer saved by transformers 5 does not load under 4.57)."""
    return f"{TINY_DIR}/{environment}/{architecture}"


def model_path(e: dict) -> str:
    """What ms-swift gets as --model: a hub id, a local folder, or the tiny model's folder."""
    source = e["source"]
    if "tiny" in source:
        return tiny_model_folder(e["environment"], source["tiny"])
    if "local" in source:
        return source["local"]
    if "endpoint" in source:
        return source["endpoint"]["base_url"]
    return source["hub"]


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
    train = e.get("train", {})
    if (train.get("packing") or train.get("padding_free")) and e["template"] in TEMPLATE_MAPPING:
        problem = packing_problem(e["template"], e["model_type"])
        if problem:
            problems.append(f"{key}: {problem}")
    if e.get("code_repo") and not COMMIT_RE.match(e["code_repo"]["revision"]):
        problems.append(f"warning: {key}: code_repo revision {e['code_repo']['revision']!r} is not a pinned commit")
    return problems


# The templates of the registry that ms-swift 4.6 packs (packing_problem says None for them;
# tests/models/test_registry.py checks the two agree for every entry): the cost plan reads this
# instead of importing ms-swift's registries (ten seconds).
PACKABLE_TEMPLATES = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "internvl2_5", "internvl_hf"})


def packing_problem(template: str, model_type: str) -> str | None:
    """Why ms-swift would refuse `--packing` / `--padding_free` for this template (None: it
    would not), read from its registry as its `swift sft` decides (swift/pipelines/train/sft.py,
    _prepare_template): the template class's `support_padding_free`, or, where that is unset,
    only for text-only models."""
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING

    if template not in TEMPLATE_MAPPING:
        return f"template {template!r} is not in ms-swift's template registry"
    supported = TEMPLATE_MAPPING[template].template_cls.support_padding_free
    if supported is None:
        supported = model_type in MODEL_MAPPING and not MODEL_MAPPING[model_type].is_multimodal
    if not supported:
        return (f"ms-swift's template {template!r} does not support packing or padding-free training; "
                "remove train.packing / padding_free for this model")
    return None


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
