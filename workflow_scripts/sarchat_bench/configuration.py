"""Config values given on the command line, typed as the schema says before it validates them.

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
