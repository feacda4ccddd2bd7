"""Each task generator on hand-made images, checked against the paper's surface format."""

import pytest
from sarchat_bench.dataset.annotations import Image, Instance
from sarchat_bench.dataset.generators import GENERATORS
from sarchat_bench.dataset.generators.common import Context
from sarchat_bench.dataset.templates import load_templates
from sarchat_bench.dataset.validate import check_record
from sarchat_bench.paper.records import truth_of

CATS = ("ship", "aircraft", "car", "tank", "bridge", "harbor")


def ctx(settings=None, seed=0, stream="t"):
    return Context(load_templates(), seed=seed, stream=stream, categories=CATS, settings=settings or {})


def figure6_image():
    """The four ships of Figure 6's ground truth, on a 512x512 image."""
    boxes = [(294, 358, 329, 427), (61, 448, 122, 503), (27, 199, 78, 261), (193, 157, 245, 306)]
    return Image(7, "test", "img.jpg", 512, 512, [Instance(i, "ship", b) for i, b in enumerate(boxes)])


def mixed_image():
    return Image(8, "test", "img2.jpg", 400, 400, [
        Instance(1, "ship", (10, 10, 40, 30)), Instance(2, "harbor", (300, 300, 390, 390)),
        Instance(3, "ship", (50, 10, 80, 30))])


def gen(task, images, variant=None, **kw):
    records = list(GENERATORS[task](images, ctx(**kw), variant))
    for rec in records:
        assert check_record(rec) == [], rec
    return records


def test_classify_lists_candidates_and_categories():
    [rec] = gen("classify", [mixed_image()])
    assert "aircraft, bridge, car, harbor, ship, tank" in rec["messages"][0]["content"]
    assert "harbor and ship" in rec["messages"][1]["content"]
    assert truth_of(rec)["categories"] == ["harbor", "ship"]
    assert rec["images"] == ["img2.jpg"] and rec["messages"][0]["content"].startswith("<image>")


def test_count_answer_matches_figure6():
    [rec] = gen("count", [figure6_image()])
    assert rec["messages"][1]["content"] == (
        "There are 4 instances. {<294><358><329><427>}{<61><448><122><503>}{<27><199><78><261>}{<193><157><245><306>}")
    assert rec["messages"][0]["content"].startswith("<image>[count] ")
    assert truth_of(rec)["count"] == 4


def test_count_single_instance_is_grammatical():
    image = Image(1, "t", "a.jpg", 100, 100, [Instance(1, "tank", (10, 10, 20, 20))])
    [rec] = gen("count", [image])
    assert rec["messages"][1]["content"] == "There is 1 instance. {<10><10><20><20>}"


def test_count_one_sample_per_category():
    recs = gen("count", [mixed_image()])
    assert sorted(truth_of(r)["category"] for r in recs) == ["harbor", "ship"]


def test_grounding_matches_figure6_phrasing():
    [rec] = gen("grounding", [figure6_image()])
    assert rec["messages"][1]["content"] == (
        "In this SAR image, I can identify several objects and their locations: There are 4 ships: "
        "one in the bottom center portion {<294><358><329><427>}, "
        "one in the bottom left portion {<61><448><122><503>}, "
        "one in the middle left portion {<27><199><78><261>}, one in the middle center portion {<193><157><245><306>}.")
    assert rec["cell"] == "grounding_multi" and truth_of(rec)["relations"] == []


def test_grounding_relations_between_categories():
    [rec] = gen("grounding", [mixed_image()])
    answer = rec["messages"][1]["content"]
    assert "There are 2 ships: one in the top left portion {<10><10><40><30>}" in answer
    assert "There is a harbor in the bottom right portion {<300><300><390><390>}." in answer
    # Ship centroid (45, 20), harbor (345, 345): distance 442 > (400 + 400) / 8.
    assert answer.endswith("The ship is far from the harbor, to the upper left of it.")
    assert truth_of(rec)["relations"] == [
        {"subject": "ship", "object": "harbor", "distance": "far from", "direction": "to the upper left of"}]


def test_grounding_variants():
    single = Image(1, "t", "a.jpg", 100, 100, [Instance(1, "car", (10, 10, 20, 20))])
    assert [r["cell"] for r in gen("grounding", [single, mixed_image()], "single")] == ["grounding_single"]
    assert [r["cell"] for r in gen("grounding", [single, mixed_image()], "multi")] == ["grounding_multi"]
    [rec] = gen("grounding", [single])
    assert "There is a car in the top left portion {<10><10><20><20>}." in rec["messages"][1]["content"]


def test_identify_words_and_distinct_templates():
    recs = gen("identify", [figure6_image()], settings={"samples_per_instance": 7})
    assert len(recs) == 28
    first = [r for r in recs if truth_of(r)["box"] == [294, 358, 329, 427]]
    assert len({r["messages"][0]["content"] for r in first}) == 7
    assert {(truth_of(r)["position"], truth_of(r)["size"], truth_of(r)["shape"]) for r in first} == {
        ("bottom center", "very small", "tall")}  # Figure 6: "bottom center ... a very small ship"
    assert all("{<294><358><329><427>}" in r["messages"][0]["content"] for r in first)
    assert all(r["messages"][0]["content"].startswith("<image>[identify] ") for r in recs)
    assert len({r["id"] for r in recs}) == 28


def test_identify_more_samples_than_templates():
    recs = gen("identify", [figure6_image()], settings={"samples_per_instance": 25})
    assert len(recs) == 100


def test_identify_variants():
    single = Image(1, "t", "a.jpg", 100, 100, [Instance(1, "car", (10, 10, 20, 20))])
    records = gen("identify", [single, figure6_image()], "single", settings={"samples_per_instance": 1})
    cells = {r["cell"] for r in records}
    assert cells == {"identify_single"}


def test_refer_matches_figure6():
    [rec] = gen("refer", [figure6_image()])
    assert rec["messages"][1]["content"] == (
        "{<294><358><329><427>} (bottom center){<61><448><122><503>} (bottom left)"
        "{<27><199><78><261>} (middle left){<193><157><245><306>} (middle center)")
    assert rec["cell"] == "refer_multi" and rec["messages"][0]["content"].startswith("<image>[refer] ")


def test_refer_single_and_multi_per_category():
    recs = gen("refer", [mixed_image()])
    assert {truth_of(r)["category"]: r["cell"] for r in recs} == {"ship": "refer_multi", "harbor": "refer_single"}
    answer = gen("refer", [mixed_image()], "single")[0]["messages"][1]["content"]
    assert answer == "{<300><300><390><390>} (bottom right)"


def test_describe_filters():
    settings = {"min_image_side": 224, "min_area_ratio": 0.01, "max_aspect_ratio": 10.0}
    small_image = Image(1, "t", "a.jpg", 200, 300, [Instance(1, "ship", (0, 0, 100, 100))])
    image = Image(2, "t", "b.jpg", 300, 300, [
        Instance(1, "ship", (0, 0, 20, 20)),       # 400 / 90000 < 1 %: not described
        Instance(2, "bridge", (0, 100, 250, 120)),  # 12.5:1: not described
        Instance(3, "tank", (150, 150, 200, 200)),  # 2.8 %: small, middle center
        Instance(4, "harbor", (0, 200, 90, 300)),   # 10 %: medium, bottom left
    ])
    context = ctx(settings=settings)
    recs = list(GENERATORS["describe"]([small_image, image], context))
    assert len(recs) == 1 and context.skipped == {"image_below_min_side": 1}
    rec = recs[0]
    assert check_record(rec, settings) == []
    assert [(t["category"], t["size"], t["position"]) for t in truth_of(rec)["targets"]] == [
        ("tank", "small", "middle center"), ("harbor", "medium", "bottom left")]
    answer = rec["messages"][1]["content"]
    assert answer.startswith("In this satellite image, we can observe the following: ")
    assert "small tank" in answer and "medium harbor" in answer and "ship" not in answer and "bridge" not in answer


def test_describe_skips_image_without_describable_target():
    image = Image(2, "t", "b.jpg", 300, 300, [Instance(1, "ship", (0, 0, 20, 20))])
    context = ctx()
    assert list(GENERATORS["describe"]([image], context)) == []
    assert context.skipped == {"no_target_passes_filters": 1}


@pytest.mark.parametrize("task", list(GENERATORS))
def test_ids_unique_and_truth_present(task, demo_tables):
    from sarchat_bench.dataset.annotations import read_boxes

    records = gen(task, read_boxes([demo_tables["train"]]))
    assert records, task
    assert len({r["id"] for r in records}) == len(records)
    assert all("objects" not in r and "truth" in r for r in records)


def test_training_mix_loads_with_hf_datasets_across_blocks(demo_tables, tmp_path):
    """ms-swift reads training files with Hugging Face `datasets`, which infers a schema per
    block of a JSON Lines file; the full mix spans hundreds of blocks of different tasks. A small
    chunk size reproduces that with the demo data: every block must share one schema."""
    import datasets
    from sarchat_bench.dataset.build import build_train_mix

    build_train_mix([demo_tables["train"]], tmp_path / "mix.jsonl", seed=0)
    n = (tmp_path / "mix.jsonl").read_bytes().count(b"\n")
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "mix.jsonl"), split="train", chunksize=16 << 10,
                               cache_dir=str(tmp_path / "cache"))
    assert len(ds) == n and set(ds["task"]) == set(GENERATORS)
    assert truth_of(ds[0])["categories"]  # the first record is a classification
