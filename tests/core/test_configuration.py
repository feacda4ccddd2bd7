"""Whether a config is valid is decided in one place (the schema and core.configuration), and
config values from the command line reach the schema typed (Snakemake hands nested --config
values over as strings)."""

import copy

import pytest
from sarchat_bench.core.configuration import SCHEMA, ConfigError, coerce, coerce_config, validated
from sarchat_bench.models.registry import run_models
from sarchat_bench.paper.printed import PAPER_MODELS
from support import CONFIG


def config(**changes) -> dict:
    c = copy.deepcopy(CONFIG)
    for key, value in changes.items():
        c[key] = value
    return c


def test_the_shipped_config_is_valid_and_paper_runs_the_papers_models():
    assert validated(config())["dataset"]["max_image_file_loss"] == 0.1  # a default the schema fills in
    assert run_models(validated(config(run="paper"))) == list(PAPER_MODELS)


@pytest.mark.parametrize("change,message", [
    ({"run": ["nope"]}, r"config 'run' names unknown model\(s\) \['nope'\]; known: tiny-qwen2-vl"),
    ({"report": {"baselines": ["tiny-qwen2-vl"]}}, "report.baselines: model 'tiny-qwen2-vl' is not of mode baseline"),
    ({"sardet_root": "/no/such/SARDet_100K"}, "'/no/such/SARDet_100K' is not a SARDet-100K folder"),
    ({"image_root": "/no/such/SARDet_100K"}, "image_root '/no/such/SARDet_100K' is not a SARDet-100K folder "
                                             r"\(it has no JPEGImages/ folder\)"),
])
def test_settings_that_cannot_work_are_refused_with_one_line(change, message):
    with pytest.raises(ConfigError, match=message):
        validated(config(**change))


def model_with(train: dict, load: dict | None = None) -> dict:
    c = config()
    c["models"]["qwen2-vl-2b"]["train"] = train
    if load:
        c["models"]["qwen2-vl-2b"]["load"] = load
    return c


@pytest.mark.parametrize("train,load,message", [
    ({"packing": True, "gpus": 0}, None,
     "model 'qwen2-vl-2b': train.packing needs flash attention, which runs on GPUs only, but it trains on the CPU"),
    ({"padding_free": True}, {"attn_impl": "eager"},
     "model 'qwen2-vl-2b': train.padding_free needs flash attention, but load.attn_impl is 'eager'"),
])
def test_packing_without_flash_attention_is_refused_before_any_job(train, load, message):
    with pytest.raises(ConfigError, match=message):
        validated(model_with(train, load))


def test_the_cheaper_recipes_are_options_of_a_model_and_checked_by_the_schema():
    from snakemake.exceptions import WorkflowError

    assert validated(model_with({"grouping": "identify", "packing": True}, {"attn_impl": "flash_attn"}))
    assert "grouping" not in validated(config())["training"]  # the paper's recipe is the default
    with pytest.raises(WorkflowError, match="'pairs' is not one of"):
        validated(model_with({"grouping": "pairs"}))


def test_splits_that_overlap_are_refused():
    c = config()
    c["dataset"]["test_splits"] = ["test", "train"]
    with pytest.raises(ConfigError, match=r"share \['train'\]: the same images would train and test"):
        validated(c)


def test_a_served_model_must_be_zero_shot_and_a_local_one_a_folder(tmp_path):
    c = config(run=["mine"])
    c["models"]["mine"] = {"family": "F", "params_b": 1, "source": {"endpoint": {"base_url": "http://127.0.0.1:1/v1",
                                                                               "model": "m"}}}
    with pytest.raises(ConfigError, match="model 'mine': a served model .* give it mode: zero_shot"):
        validated(c)
    c["models"]["mine"] = {**CONFIG["models"]["qwen2-vl-2b"], "source": {"local": str(tmp_path / "absent")}}
    with pytest.raises(ConfigError, match="model 'mine': local source .*absent.* is not a folder"):
        validated(c)


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


def test_a_moved_dataset_needs_only_its_image_root(tmp_path):
    """Built from a folder that was moved since: sardet_root names where it was (gone), and
    image_root where its images are now (docs/dataset.md, "Moving a built dataset")."""
    (tmp_path / "JPEGImages").mkdir()
    moved = validated(config(sardet_root="/no/such/SARDet_100K", image_root=str(tmp_path)))
    assert moved["image_root"] == str(tmp_path)
    assert validated(config())["image_root"] == ""  # the default: the folder the dataset is built from
