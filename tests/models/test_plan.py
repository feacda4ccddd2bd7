"""The plan before launch (models/plan.py): its arithmetic, its estimate against an exact count of
the records it stands for, and `snakemake plan` writing it (in `all`, and in the job's log)."""

import csv
import itertools
import math

import pytest
from sarchat_bench.core.io import write_json
from sarchat_bench.dataset.build import build_test_cells, build_train_mix, size_sample
from sarchat_bench.models.plan import (
    COLUMNS,
    Lengths,
    Recipe,
    SampledSet,
    cheapest_recipe,
    epochs_run,
    gpu_hours,
    model_lengths,
    optimizer_steps,
    summary_records,
)
from sarchat_bench.models.tokens import Conversations, TextTokens
from sarchat_bench.models.train import record_shapes
from sarchat_bench.paper.tasks import CELLS
from support.workflow import planned_rules, snakemake

PAPER = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4, "gpus": 2, "num_train_epochs": 1,
         "gradient_checkpointing": True, "max_length": 2048}
A100 = {"gpu": "A100", "gpu_tflops": 312, "mfu": 0.3}


def test_padding_is_the_expected_longest_of_a_random_micro_batch():
    lengths = Lengths([10, 20, 30], [1.0, 1.0, 2.0])
    draws = [10, 20, 30, 30]  # the same distribution, one draw per unit of weight
    brute = sum(max(pair) for pair in itertools.product(draws, repeat=2)) / len(draws) ** 2
    assert lengths.expected_longest(2) == pytest.approx(brute)
    assert lengths.expected_longest(1) == pytest.approx(lengths.mean()) and lengths.over(20) == 2.0


def test_gpu_hours_steps_and_the_cheapest_recipe():
    recipe = Recipe("paper recipe", 1e9, 6)
    assert gpu_hours(recipe, 2, 1.0, A100) == pytest.approx(6 * 2e9 * 1e9 / (312e12 * 0.3) / 3600)
    assert optimizer_steps(1000, PAPER) == math.ceil(1000 / 32)
    assert optimizer_steps(1000, {**PAPER, "max_steps": 7}) == 7
    # max_steps overrides the epochs, fewer or more, as the trainer does
    assert epochs_run(1000, PAPER) == 1.0 and epochs_run(1000, {**PAPER, "max_steps": 7}) == 7 * 32 / 1000
    assert epochs_run(1000, {**PAPER, "max_steps": 100}) == 3.2
    lengths = Lengths([100, 300], [1.0, 1.0])
    cheapest = cheapest_recipe({"single-turn": lengths}, PAPER, packable=False)
    assert cheapest.flops_per_token_n == 4  # gradient checkpointing costs a forward more
    assert cheapest.tokens_per_epoch == pytest.approx(2 * (100 / 16 + 300 * 15 / 16))  # padded to the longest of 4
    assert cheapest.name == "single-turn, no gradient checkpointing"
    # Where the template packs, no token is padding; fewer, longer sequences (grouping) win.
    packed = cheapest_recipe({"single-turn": lengths}, PAPER, packable=True)
    assert packed.tokens_per_epoch == 400 and packed.name == "single-turn, packing, no gradient checkpointing"
    grouped = cheapest_recipe({"single-turn": lengths, "grouping: all": Lengths([350], [1.0])}, PAPER, packable=False)
    assert grouped.name == "grouping: all, no gradient checkpointing" and grouped.tokens_per_epoch == 350


def test_grouped_lengths_are_the_grouping_jobs_cut(built):
    """The plan's grouped sequences come from the grouping module's own cut (one image's samples
    into conversations within max_length), on the same sampled images as the single-turn ones."""
    from sarchat_bench.models.grouping import SAFETY_TOKENS
    from sarchat_bench.models.plan import grouped_lengths

    text = TextTokens()
    side = SampledSet(size_sample([built["tables"]["train"]], seed=0, per_size=8),
                      summary_records([built["train_summary"]]))
    single, _ = model_lengths(side, "qwen2_vl", {}, {}, text, None)
    grouped = grouped_lengths(side, "qwen2_vl", {}, {}, text, None, "all", 2048)
    images = sum(s["images"] for s in side.sample.values())
    assert images <= grouped.samples < single.samples / 3  # one conversation or a few per image
    assert max(grouped.lengths) <= 2048 - SAFETY_TOKENS
    identify = grouped_lengths(side, "qwen2_vl", {}, {}, text, None, "identify", 2048)
    assert grouped.samples < identify.samples < single.samples and grouped.tokens < identify.tokens


@pytest.fixture(scope="module")
def built(demo_tables, tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    train_summary = root / "train.json"
    write_json(train_summary, {"files": build_train_mix([demo_tables["train"]], root / "train.jsonl", seed=0)})
    test_summary = root / "test.json"
    outputs = {cell: root / f"{cell}.jsonl" for cell in CELLS}
    write_json(test_summary, {"files": build_test_cells(outputs, [demo_tables["test"]], seed=0)})
    return {"root": root, "train": root / "train.jsonl", "train_summary": train_summary,
            "test_summary": test_summary, "tables": demo_tables}


@pytest.mark.parametrize("template,env", [("qwen2_vl", {}), ("internvl2_5", {}), ("llava1_5_hf", {})])
def test_the_estimate_is_close_to_an_exact_count_of_the_mix(built, template, env):
    """The plan counts a sample of each image size's records; the training job counts every
    record. Same tokens (the estimate's text count here), so only the sampling differs."""
    text = TextTokens()
    side = SampledSet(size_sample([built["tables"]["train"]], seed=0, per_size=8),
                      summary_records([built["train_summary"]]))
    planned, _ = model_lengths(side, template, env, {}, text, None)
    exact = Conversations(template, text, env).lengths(record_shapes(built["train"]))
    assert planned.samples == pytest.approx(len(exact))
    assert planned.tokens == pytest.approx(sum(exact), rel=0.03)
    cut = sorted(exact)[len(exact) // 2]
    assert planned.over(cut) == pytest.approx(sum(n > cut for n in exact), rel=0.25)


@pytest.mark.workflow
def test_snakemake_plan_writes_the_plan_and_all_depends_on_it(tmp_path):
    run = "run=[tiny-qwen2-vl,qwen2-vl-2b,internvl2.5-1b,llava1.5-7b]"
    result = snakemake(tmp_path, "plan", "--config", run)
    rows = {r["model"]: r for r in csv.DictReader((tmp_path / "results/plan/plan.csv").open())}
    assert list(rows) == ["tiny-qwen2-vl", "qwen2-vl-2b", "internvl2.5-1b", "llava1.5-7b"]
    assert tuple(next(iter(rows.values()))) == COLUMNS
    tiny, qwen, internvl, llava = rows.values()
    # The tiny model counts with its own tokenizer and MAX_PIXELS (12544: 16 + 2 tokens at most).
    assert tiny["text tokens counted with"] == "own tokenizer" and float(tiny["image tokens per image (mean)"]) <= 18
    assert qwen["text tokens counted with"] == "estimate" and float(llava["image tokens per image (mean)"]) == 577
    assert int(qwen["training samples"]) == sum(summary_records(
        [tmp_path / "results/sarchat/summaries/train.json"]).values())
    # Same tokens, 2B against 1B parameters; InternVL's 448-px tiles are more tokens than LLaVA's 576.
    assert float(internvl["GPU-hours (paper recipe)"]) > float(llava["GPU-hours (paper recipe)"]) / 7
    assert float(qwen["GPU-hours (without gradient checkpointing)"]) == pytest.approx(
        float(qwen["GPU-hours (paper recipe)"]) * 4 / 6, rel=0.02)
    assert int(qwen["inference prefill tokens with prefix caching"]) < int(qwen["inference prefill tokens"])
    log = (tmp_path / "results/logs/plan.log").read_text()
    assert "GPU-hours (paper recipe)" in log and "internvl2.5-1b" in log, result.stderr[-2000:]
    assert "<h1>Plan" in (tmp_path / "results/plan/plan.html").read_text()
    # How jobs run (checkpoint cadence, batch sizes, the cache's place) leaves the plan as it is;
    # what it assumes (the MFU) reruns it.
    same = "models: {qwen2-vl-2b: {train: {save_steps: 7}, infer: {batch_size: 3}}}\ncache_dir: elsewhere\n"
    assert planned_rules(tmp_path, "plan", "--config", run, extra_config=same) == {}
    assert planned_rules(tmp_path, "plan", "--config", run, extra_config="plan: {mfu: 0.5}\n") == {"plan": 1}
    (tmp_path / "fresh").mkdir()
    assert "plan" in planned_rules(tmp_path / "fresh", "all", "--config", run)


# SARDet-100K's training images per size (the full-scale plan run of docs/cost.md).
SARDET_TRAIN_IMAGES = {(256, 256): 71_646, (512, 512): 17_113, (800, 800): 3_748, (500, 350): 942, (224, 224): 773,
                       (1000, 1000): 271}


def test_the_papers_recipe_runs_for_every_paper_model_on_sardets_image_sizes():
    """An image's samples are over max_length when the image alone nearly fills it: for each of
    the paper's 16 models, the share of SARDet-100K's training images that leave fewer than 100
    tokens of max_length for the chat turn and the texts is within what its entry accepts
    (training.max_overlong_fraction, or the entry's own: InternVL2.5's 1000x1000 images, D21),
    so no training job of `run: paper` stops at its over-long check."""
    from sarchat_bench.models.jobs import ModelJob
    from sarchat_bench.models.registry import run_models
    from sarchat_bench.models.tokens import image_tokens
    from sarchat_bench.models.train import DEFAULT_MAX_OVERLONG_FRACTION
    from support import CONFIG

    total = sum(SARDET_TRAIN_IMAGES.values())
    shares = {}
    for model in run_models({**CONFIG, "run": "paper"}):
        job = ModelJob.of(CONFIG, model, "train")
        budget = job.spec.settings["max_length"] - 100
        over = sum(n for (w, h), n in SARDET_TRAIN_IMAGES.items()
                   if image_tokens(job.spec.template, w, h, job.spec.env) > budget)
        shares[model] = over / total
        assert shares[model] <= job.run.options.get("max_overlong_fraction", DEFAULT_MAX_OVERLONG_FRACTION), model
    assert len(shares) == 16
    # InternVL2.5's 1000x1000 images (12 tiles and a thumbnail) are the only ones over.
    assert {m for m, share in shares.items() if share} == {f"internvl2.5-{s}b" for s in (1, 2, 4, 8)}
    assert all(0.001 < share < 0.005 for share in shares.values() if share)
