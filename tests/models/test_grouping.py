"""Grouped training (sarchat_bench.models.grouping): an image's samples as multi-turn
conversations that fit max_length as the model's own ms-swift template counts them, the loss on
every assistant turn, the same bytes for the same inputs and seed, and the arithmetic of what it
saves (epoch_tokens, which the cost plan calls)."""

import copy
import json
from collections import Counter

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import write_jsonl
from sarchat_bench.models.grouping import (
    SAFETY_TOKENS,
    EpochTokens,
    GroupedMix,
    ImageSamples,
    Sample,
    build_grouped_mix,
    conversation_sizes,
    epoch_tokens,
    grouped_mix,
    grouped_mixes,
    grouped_records,
    image_sizes,
    load_template,
    reordered,
    turn_passes,
)
from support import CONFIG
from support.commands import run_cli

pytestmark = pytest.mark.swift
MAX_PIXELS = {"MAX_PIXELS": "12544"}  # the tiny Qwen2-VL's image settings (tests/support/jobs.py)


@given(st.lists(st.integers(1, 120), max_size=40), st.integers(0, 100), st.integers(50, 400))
def test_conversations_take_every_turn_in_order_within_the_budget(turns, shared, budget):
    sizes = conversation_sizes(turns, shared, budget)
    assert sum(sizes) == len(turns) and all(sizes)
    start = 0
    for size in sizes:
        part = turns[start:start + size]
        assert size == 1 or shared + sum(part) <= budget  # a turn too long alone stays alone
        if start + size < len(turns):  # cut only where the next turn would not fit
            assert shared + sum(part) + turns[start + size] > budget
        start += size


def test_an_epoch_encodes_each_image_once_per_conversation():
    # Two images of 100 tokens (image and prefix), with 3 identification turns of 30 tokens and
    # one counting turn of 40; max_length leaves 70 tokens of turns beside the image.
    images = [ImageSamples(100, [("identify", 30), ("count", 40), ("identify", 30), ("identify", 30)])] * 2
    budget = 100 + 70 + SAFETY_TOKENS
    assert epoch_tokens(images, "none", budget) == EpochTokens(8, 8 * 100 + 2 * 130, 8)
    # all: [30, 40] [30, 30] per image; identify: [30, 30] [30] and the count alone
    assert epoch_tokens(images, "all", budget) == EpochTokens(4, 4 * 100 + 2 * 130, 4)
    assert epoch_tokens(images, "identify", budget) == EpochTokens(6, 6 * 100 + 2 * 130, 6)
    with pytest.raises(ValueError, match="grouping must be one of none, identify, all"):
        epoch_tokens(images, "pairs", budget)


def test_hyperparameter_variants_of_a_model_share_one_grouped_file():
    from sarchat_bench.core.configuration import validated

    config = validated(copy.deepcopy(CONFIG))
    base = config["models"]["qwen2-vl-2b"]
    for key, train in {"lr": {"grouping": "all", "learning_rate": 2e-4}, "rank": {"grouping": "all", "lora_rank": 16},
                       "long": {"grouping": "all", "max_length": 4096}, "identify": {"grouping": "identify"}}.items():
        config["models"][key] = {**base, "train": train}
    config["run"] = ["rank", "lr"]
    mixes = grouped_mixes(config, lambda model: "results/sarchat/train.jsonl")
    name = {key: grouped_mix(config, key, "results/sarchat/train.jsonl").name for key in ("lr", "rank", "long",
                                                                                         "identify")}
    assert name["lr"] == name["rank"] and len({name["lr"], name["long"], name["identify"]}) == 3
    assert set(mixes) == set(name.values()) and mixes[name["lr"]][1] == "rank"  # run's first model reads it
    assert name["long"].startswith("qwen2_vl-all-4096-")
    assert grouped_mix(config, "qwen2-vl-2b", "results/sarchat/train.jsonl") is None  # the paper's recipe


def samples(n_images=3, per_image=5):
    tasks = ("identify", "count", "identify", "classify", "identify")
    return [Sample(f"s{i}-{k}", tasks[k % 5], f"q{k}", f"a{k}", f"img{i}.jpg")
            for k in range(per_image) for i in range(n_images)]


def grouped(items, grouping="all", seed=0, budget=1000):
    return [record for record, _, _ in grouped_records(items, grouping, turn_tokens=[10] * len(items),
                                                       shared_of=lambda image: 20, seed=seed, budget=budget)]


def test_turn_order_is_seeded_per_image_and_every_sample_appears_once():
    items = samples()
    first, again, other = grouped(items), grouped(items), grouped(items, seed=1)
    assert first == again and first != other
    assert [r["images"] for r in first] == [r["images"] for r in other]  # only the order of turns moves
    assert [sorted(r["ids"]) for r in first] == [sorted(r["ids"]) for r in other]
    assert sorted(i for r in first for i in r["ids"]) == sorted(s.id for s in items)
    # An image's turns do not depend on what else the file holds.
    alone = grouped([s for s in items if s.image == "img1.jpg"])
    assert [r for r in first if r["images"] == ["img1.jpg"]] == alone
    # The image tag in the first question only.
    messages = first[0]["messages"]
    assert messages[0]["content"].startswith("<image>") and all("<image>" not in m["content"] for m in messages[1:])


def test_each_pass_of_a_longer_run_has_every_conversations_turns_in_an_order_of_its_own(tmp_path):
    records = grouped(samples(), "identify", budget=20 + 2 * 10)
    write_jsonl(tmp_path / "grouped.jsonl", records)
    passes = list(turn_passes(tmp_path / "grouped.jsonl", 40))
    assert passes == list(turn_passes(tmp_path / "grouped.jsonl", 40)) and len(passes) == 40 * len(records)
    assert passes[:len(records)] == records  # the first pass is the grouped file as written
    blocks = [passes[k * len(records):(k + 1) * len(records)] for k in range(40)]
    turns = [(m["content"].removeprefix("<image>"), a["content"]) for r in records
             for m, a in zip(r["messages"][::2], r["messages"][1::2])]
    openers = set()
    for block in blocks:
        for record, written in zip(block, records):
            assert record["images"] == written["images"] and sorted(record["ids"]) == sorted(written["ids"])
            assert record["id"] == (record["ids"][0] if len(record["ids"]) == 1
                                    else f"{record['ids'][0]}+{len(record['ids']) - 1}")
            messages = record["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"] * len(record["ids"])
            assert messages[0]["content"].startswith("<image>")
            assert all("<image>" not in m["content"] for m in messages[1:])
            if len(record["ids"]) == 1:
                assert record == written  # single-turn records stay as they are
            openers.add(record["ids"][0])
        # A question keeps its answer: the pass holds the same turns, in other orders.
        assert sorted((m["content"].removeprefix("<image>"), a["content"]) for r in block
                      for m, a in zip(r["messages"][::2], r["messages"][1::2])) == sorted(turns)
    assert openers == {i for r in records for i in r["ids"]}  # over the passes, every question opens one
    assert reordered(records[0], 0) is records[0]
    # A record whose messages are not one question and one answer per sample is left as it is.
    odd = next({**r, "messages": r["messages"][:2]} for r in records if len(r["ids"]) > 1)
    assert reordered(odd, 3) is odd


def test_identify_grouping_leaves_the_other_tasks_single_turn():
    records = grouped(samples(), "identify")
    single = [r for r in records if len(r["ids"]) == 1]
    assert {r["task"] for r in single} == {"count", "classify"} and len(single) == 6
    assert {r["task"] for r in records if len(r["ids"]) > 1} == {"identify"}
    assert len(grouped(samples(), "identify", budget=20 + 2 * 10)) == 6 + 3 * 2  # 3 turns: [2, 1] per image


@pytest.fixture(scope="module")
def train_mix(demo_tables, tmp_path_factory):
    from sarchat_bench.dataset.build import build_train_mix

    path = tmp_path_factory.mktemp("grouping") / "train.jsonl"
    build_train_mix([demo_tables["train"]], path, seed=0)
    return path


def mix_of(tiny, arch, dataset, grouping, max_length, **changes):
    return GroupedMix(dataset=str(dataset), grouping=grouping, max_length=max_length, seed=0,
                      model_path=str(tiny[arch]), model_type=arch, template=arch, source={"tiny": arch},
                      environment="default", env=MAX_PIXELS if arch == "qwen2_vl" else {}, **changes)


def label_spans(labels):
    spans, start = [], None
    for i, label in enumerate([*labels, -100]):
        if label != -100 and start is None:
            start = i
        elif label == -100 and start is not None:
            spans.append((start, i))
            start = None
    return spans


@pytest.mark.parametrize("arch", ["llava1_5_hf", "qwen2_vl"])  # a fixed image size, and one that varies
def test_conversations_fit_max_length_as_the_template_encodes_them_with_loss_on_every_answer(
        arch, tiny, train_mix, tmp_path, monkeypatch):
    for key, value in (MAX_PIXELS if arch == "qwen2_vl" else {}).items():
        monkeypatch.setenv(key, value)
    max_length = 320  # splits the demo images' ~27 samples into several conversations
    mix = mix_of(tiny, arch, train_mix, "all", max_length)
    out = tmp_path / "grouped.jsonl"
    info = build_grouped_mix(mix, out=out, summary=tmp_path / "summary.json", model_folder=str(tiny[arch]),
                             image_root=tiny["image_root"])
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    source_ids = [orjson.loads(line)["id"] for line in train_mix.read_bytes().splitlines()]
    assert Counter(i for r in records for i in r["ids"]) == Counter(source_ids)
    assert info["conversations"] > len({r["images"][0] for r in records})  # some images needed several
    template = load_template(mix, str(tiny[arch]), {})
    tokenizer = template.tokenizer
    # A later pass of a longer run reorders each conversation's turns: the same fit and labels.
    for record in [*records, *(reordered(r, 1) for r in records if len(r["ids"]) > 1)]:
        encoded = template.encode({"messages": record["messages"],
                                   "images": [str(tiny["image_root"] / name) for name in record["images"]]})
        assert len(encoded["input_ids"]) <= max_length, record["id"]
        answers = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        spans = label_spans(encoded["labels"])
        # ms-swift's default loss_scale: every assistant turn, and nothing else, is learnt.
        assert len(spans) == len(answers), record["id"]
        for (a, b), answer in zip(spans, answers):
            said = tokenizer.decode(encoded["input_ids"][a:b], skip_special_tokens=True)
            assert " ".join(said.split()) == " ".join(answer.split()), record["id"]
    checked = info["checked_longest"]
    assert checked and all(c["encoded"] <= c["estimate"] <= max_length - SAFETY_TOKENS for c in checked)
    tokens = info["epoch_tokens"]
    assert tokens["all"]["tokens"] < tokens["none"]["tokens"] and tokens["all"]["sequences"] == len(records)


def test_the_grouping_job_writes_the_same_bytes_for_the_same_inputs_and_seed(tiny, train_mix, tmp_path):
    mix = mix_of(tiny, "llava1_5_hf", train_mix, "identify", 2048)
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run / "grouped.jsonl"
        result = run_cli("group-conversations", "--spec", json.dumps(mix.as_dict()), "--cache-dir", tmp_path / "cache",
                         "--image-root", tiny["image_root"], "--out", out,
                         "--summary", out.with_suffix(".summary.json"))
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append((out.read_bytes(), out.with_suffix(".summary.json").read_bytes()))
    assert outputs[0] == outputs[1]
    records = [orjson.loads(line) for line in outputs[0][0].splitlines()]
    assert {r["task"] for r in records if len(r["ids"]) > 1} == {"identify"}
    assert any(len(r["ids"]) > 1 for r in records) and any(r["task"] == "count" for r in records)


def test_a_file_with_nothing_to_group_is_one_line(tiny, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"id": "x", "messages": [{"role": "user", "content": "hi"},
                                                        {"role": "assistant", "content": "hello"}]}) + "\n")
    mix = mix_of(tiny, "llava1_5_hf", data, "all", 2048)
    result = run_cli("group-conversations", "--spec", json.dumps(mix.as_dict()), "--cache-dir", tmp_path / "cache",
                     "--out", tmp_path / "out.jsonl", "--summary", tmp_path / "out.json")
    assert result.returncode == 2  # bad input
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {data}: no record for grouping 'all' (single-turn, one image)")


def test_image_sizes_come_from_the_truth_else_from_the_file_below_the_image_root(tmp_path):
    """Records name images relative to the dataset root (D20): a record without its size in the
    truth is sized from the file below the image root; a missing file is one line naming it."""
    from PIL import Image

    (tmp_path / "root" / "JPEGImages").mkdir(parents=True)
    Image.new("RGB", (300, 200)).save(tmp_path / "root" / "JPEGImages" / "a.jpg")
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"id": "x-1", "messages": [], "images": ["JPEGImages/b.jpg"],
                                "truth": json.dumps({"width": 512, "height": 512})}) + "\n"
                    + json.dumps({"id": "x-2", "messages": [], "images": ["JPEGImages/a.jpg"]}) + "\n")
    sizes = image_sizes(data, {"JPEGImages/a.jpg", "JPEGImages/b.jpg"}, tmp_path / "root")
    assert sizes == {"JPEGImages/b.jpg": (512, 512), "JPEGImages/a.jpg": (300, 200)}
    with pytest.raises(InputError, match=r"train\.jsonl.*cannot read the size of image .*root/JPEGImages/c\.jpg"):
        image_sizes(data, {"JPEGImages/c.jpg"}, tmp_path / "root")
