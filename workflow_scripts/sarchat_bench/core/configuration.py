"""Whether a configuration is valid, decided in one place: the schema (core/config.schema.yaml,
with a description of every key) and the checks here that a schema cannot express.

Config values given on the command line are typed as the schema says before it validates them.
Snakemake reads the nested values of `--config key=value` with YAML's BaseLoader, so every
nested scalar arrives as a string: `--config 'dataset={check_image_files: false}'` failed with
"'false' is not of type 'boolean'", and `inference={samples_per_shard: 7}` with "'7' is not of
type 'integer'". Where the schema asks for an integer, a number or a boolean and the config
holds a string that spells one, the string is converted; anything else is left for the
validator to report.
"""

from __future__ import annotations

import re
from pathlib import Path

from sarchat_bench.core.errors import SarchatError
from sarchat_bench.paper.printed import PAPER_MODELS

SCHEMA = Path(__file__).with_name("config.schema.yaml")


class ConfigError(SarchatError, ValueError):
    """A setting that cannot work; the message names it."""

BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
INTEGER = re.compile(r"^[+-]?\d+$")


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        node = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _scalar(value: str, kind):
    kinds = kind if isinstance(kind, list) else [kind]
    if "boolean" in kinds and value.lower() in BOOLEANS:
        return BOOLEANS[value.lower()]
    if "integer" in kinds and INTEGER.match(value):
        return int(value)
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            pass
    return value


def coerce(value, schema: dict, root: dict | None = None):
    """`value` with the strings that the schema types as integer, number or boolean converted."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    for part in schema.get("allOf", []):
        value = coerce(value, part, root)
    if isinstance(value, str) and "type" in schema:
        return _scalar(value, schema["type"])
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key] = coerce(item, sub, root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value[:] = [coerce(item, schema["items"], root) for item in value]
    return value


def coerce_config(config: dict, schema_path: str | Path) -> dict:
    import yaml

    return coerce(config, yaml.safe_load(Path(schema_path).read_text()))


def validated(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """The config as every job sees it: typed, checked against the schema with its defaults
    filled in (Snakemake's validator), then against the rules a schema cannot express (check)."""
    from snakemake.utils import validate

    coerce_config(config, schema_path)
    validate(config, str(schema_path))
    check(config)
    return config


def check(config: dict) -> None:
    """ConfigError for the first setting that cannot work, before any job runs."""
    dataset = config["dataset"]
    shared = sorted(set(dataset["train_splits"]) & set(dataset["test_splits"]))
    if shared:
        raise ConfigError(f"dataset.train_splits {dataset['train_splits']} and test_splits {dataset['test_splits']} "
                          f"share {shared}: the same images would train and test the models")
    image_root = config.get("image_root")
    if image_root and not Path(image_root, "JPEGImages").is_dir():
        raise ConfigError(f"image_root {image_root!r} is not a SARDet-100K folder (it has no JPEGImages/ folder)")
    # With image_root set, the dataset was built elsewhere and moved: sardet_root may name a
    # folder that is gone (only a rebuild would read it, and Snakemake names what is missing).
    if config["sardet_root"] and config["download"]["source"] == "none" and not image_root \
            and not Path(config["sardet_root"], "Annotations").is_dir():
        raise ConfigError(f"sardet_root {config['sardet_root']!r} is not a SARDet-100K folder (it has no "
                          "Annotations/ folder)")
    if dataset.get("templates"):
        from sarchat_bench.core.io import InputError
        from sarchat_bench.dataset.templates import load_templates

        try:
            load_templates(dataset["templates"])
        except InputError as err:
            raise ConfigError(f"dataset.templates: {err}") from None
    models = config["models"]
    run = list(PAPER_MODELS) if config["run"] == "paper" else config["run"]
    unknown = [key for key in run if key not in models]
    if unknown:
        raise ConfigError(f"config 'run' names unknown model(s) {unknown}; known: {', '.join(models)}")
    for key in config.get("report", {}).get("baselines", []):
        if models.get(key, {}).get("mode") != "baseline":
            raise ConfigError(f"report.baselines: model {key!r} is not of mode baseline")
    for key, e in models.items():
        source = e.get("source", {})
        if "endpoint" in source and e.get("mode", "finetune") != "zero_shot":
            raise ConfigError(f"model {key!r}: a served model (source.endpoint) is evaluated as it is: give it "
                              "mode: zero_shot")
        if key in run and "local" in source and not Path(source["local"]).is_dir():
            raise ConfigError(f"model {key!r}: local source {source['local']!r} is not a folder")
        check_packing_hardware(key, e, {**config["training"], **e.get("train", {})})


FLASH_ATTENTION = ("flash_attn", "flash_attention_2", "flash_attention_3", "flash_attention_4")


def check_packing_hardware(key: str, e: dict, train: dict) -> None:
    """Packing and padding-free training run on flash attention only: on GPUs, and not with
    another attention asked for. (Whether the template supports it is checked against ms-swift
    when the training job starts, models.train.check_packing_support.)"""
    feature = next((f for f in ("packing", "padding_free") if train.get(f)), None)
    if feature is None or e.get("mode", "finetune") != "finetune":
        return
    if not train["gpus"]:
        raise ConfigError(f"model {key!r}: train.{feature} needs flash attention, which runs on GPUs only, but "
                          "it trains on the CPU (gpus: 0)")
    attention = e.get("load", {}).get("attn_impl")
    if attention and attention not in FLASH_ATTENTION:
        raise ConfigError(f"model {key!r}: train.{feature} needs flash attention, but load.attn_impl is "
                          f"{attention!r}; remove it (training then uses flash_attn) or set flash_attn")
