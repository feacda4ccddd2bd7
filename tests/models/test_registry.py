"""The model registry: the paper's 16 models checked against the installed ms-swift."""

import pytest
from sarchat_bench.models.registry import check_against_swift, entry, model_path, run_models
from sarchat_bench.paper.printed import PAPER_MODELS
from support import CONFIG


def test_paper_has_sixteen_models_all_in_config():
    assert len(PAPER_MODELS) == 16 and set(PAPER_MODELS) <= set(CONFIG["models"])
    assert run_models({**CONFIG, "run": "paper"}) == list(PAPER_MODELS)


@pytest.mark.parametrize("key", [k for k, e in CONFIG["models"].items()
                                 if e.get("mode") not in ("predictions", "baseline")])
def test_entry_is_known_to_ms_swift(key):
    e = entry(CONFIG, key)
    problems = [p for p in check_against_swift(key, e) if not p.startswith("warning:")]
    assert problems == []
    if key in PAPER_MODELS:
        assert "/" in e["source"]["hub"] and e["source"]["revision"]
        assert e["family"] and e["params_b"] > 0


def test_unknown_hub_id_without_note_is_reported():
    e = entry(CONFIG, "qwen2-vl-7b")
    e["source"] = {"hub": "someone/unknown-model", "revision": "a" * 40}
    assert any("not registered" in p for p in check_against_swift("x", e))
    e["model_type"] = "no_such_type"
    assert any("model_type 'no_such_type'" in p for p in check_against_swift("x", e))


def test_packing_a_template_ms_swift_cannot_pack_is_reported():
    llava = {**entry(CONFIG, "llava1.5-7b"), "train": {"packing": True}}
    qwen = {**entry(CONFIG, "qwen2-vl-2b"), "train": {"packing": True}}
    assert "llava: ms-swift's template 'llava1_5_hf' does not support packing or padding-free training; remove " \
           "train.packing / padding_free for this model" in check_against_swift("llava", llava)
    assert not [p for p in check_against_swift("qwen", qwen) if not p.startswith("warning:")]


def test_paper_hyperparameters_are_the_defaults():
    t = entry(CONFIG, "qwen2-vl-7b")["train"]
    assert (t["tuner_type"], t["lora_rank"], t["lora_alpha"], t["target_modules"]) == ("lora", 8, 32, "all-linear")
    assert (t["learning_rate"], t["warmup_ratio"], t["num_train_epochs"]) == (1e-4, 0.1, 1)
    assert (t["per_device_train_batch_size"], t["gradient_accumulation_steps"], t["torch_dtype"]) == (4, 4, "bfloat16")
    assert t["gradient_checkpointing"] is True and t["max_length"] == 2048


def test_per_model_overrides_merge_over_defaults():
    e = entry(CONFIG, "tiny-qwen2-vl")
    assert e["train"]["max_steps"] == 6 and e["train"]["lora_rank"] == 8
    assert model_path(e) == "results/models/tiny/default/qwen2_vl"


def test_the_packable_templates_are_those_ms_swift_packs():
    from sarchat_bench.models.registry import PACKABLE_TEMPLATES, packing_problem

    entries = [entry(CONFIG, k) for k, e in CONFIG["models"].items() if e.get("mode") not in ("predictions", "baseline")
               and "template" in e]
    assert {e["template"] for e in entries if packing_problem(e["template"], e["model_type"]) is None} \
        == PACKABLE_TEMPLATES & {e["template"] for e in entries}
