"""Config values from the command line reach the schema typed (Snakemake hands nested
--config values over as strings)."""

import pytest
from conftest import REPO
from sarchat_bench.configuration import coerce, coerce_config

SCHEMA = REPO / "workflow_scripts" / "sarchat_bench" / "schemas" / "config.schema.yaml"


def test_strings_become_what_the_schema_asks_for():
    config = {"dataset": {"check_image_files": "false", "seed": "7", "bbox_tolerance": "1.5", "templates": "7"},
              "inference": {"samples_per_shard": "5000", "backend": "vllm"},
              "models": {"m": {"params_b": "2", "infer": {"batch_size": "3"},
                               "train": {"gradient_checkpointing": "no"}}}}
    coerce_config(config, SCHEMA)
    assert config["dataset"] == {"check_image_files": False, "seed": 7, "bbox_tolerance": 1.5, "templates": "7"}
    assert config["inference"] == {"samples_per_shard": 5000, "backend": "vllm"}
    assert config["models"]["m"] == {"params_b": 2.0, "infer": {"batch_size": 3},
                                     "train": {"gradient_checkpointing": False}}


@pytest.mark.parametrize("value", ["two", "1.5", ""])
def test_what_does_not_spell_the_type_is_left_for_the_validator(value):
    assert coerce({"n": value}, {"properties": {"n": {"type": "integer"}}}) == {"n": value}
