"""The model families researchers fine-tune now, through the whole workflow on the CPU: a tiny
random-weight model of each (built locally, no download), trained with real `swift sft` LoRA,
predicting test files with ms-swift and scored. Three test files per family, one of each kind of
answer (categories, a number, a box): the other six go through the same inference and scoring
code, which the demo test runs on all nine."""

import orjson
import pytest
from sarchat_bench.models.registry import entry, scorer_coords
from support import CONFIG, REPO
from support.workflow import snakemake

pytestmark = [pytest.mark.swift, pytest.mark.workflow]
FAMILIES = ["tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-internvl3.5", "tiny-gemma3", "tiny-idefics3",
            "tiny-llava-onevision"]
FAMILY_CELLS = ["classify", "count", "refer_single"]


def test_each_family_trains_predicts_and_is_scored(tmp_path):
    extra = "demo: {seed: 9, images: {train: 8, test: 4}}\nrun: [" + ", ".join(FAMILIES) + "]\n"
    snakemake(tmp_path, *(f"results/scores/{model}/{cell}.json" for model in FAMILIES for cell in FAMILY_CELLS),
              extra_config=extra)
    results = tmp_path / "results"
    seconds = {}
    for model in FAMILIES:
        adapter = orjson.loads((results / "models" / model / "adapter.json").read_bytes())
        assert adapter["global_step"] == 6, model
        for cell in FAMILY_CELLS:
            score = orjson.loads((results / "scores" / model / f"{cell}.json").read_bytes())
            test = (results / "sarchat" / "test" / f"{cell}.jsonl").read_bytes().count(b"\n")
            assert score["n_samples"] == test, (model, cell)
        bench = [results / "benchmarks" / "train" / f"{model}.tsv",
                 *(results / "benchmarks" / "infer" / model).glob("*.tsv")]
        rows = [p.read_text().splitlines()[1].split("\t") for p in bench]
        seconds[model] = {"wall": round(sum(float(r[0]) for r in rows)), "cpu": round(sum(float(r[-1]) for r in rows))}
    print(f"Job seconds per family (training + {len(FAMILY_CELLS)} inference jobs):", seconds)


def test_beyond_the_paper_entries_name_their_box_convention():
    """Zero-shot rows are scored in each family's own convention; fine-tuned ones in the dataset's."""
    models = CONFIG["models"]
    for key in ("qwen2.5-vl-7b", "qwen3-vl-8b", "internvl3.5-8b", "gemma-3-12b", "idefics3-8b", "llava-onevision-7b"):
        assert "Beyond the paper" in models[key]["note"] and "paper_row" not in models[key]
        assert scorer_coords(entry(CONFIG, key)) == "pixel"  # fine-tuned: our format
        zero_shot = entry({**CONFIG, "models": {**models, key: {**models[key], "mode": "zero_shot"}}}, key)
        assert scorer_coords(zero_shot) == ("resized:28:3136:12845056" if key == "qwen2.5-vl-7b" else "norm1000")
    assert (REPO / "config.yaml").read_text().count("Beyond the paper") >= 6
