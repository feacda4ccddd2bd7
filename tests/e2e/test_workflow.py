"""The real Snakemake workflow on generated data, in a scratch working directory."""

import importlib.metadata
import re
import subprocess
import warnings
from collections import Counter

import orjson
import pandas as pd
import pytest
from PIL import Image
from sarchat_bench.paper.tasks import CELLS, TASKS
from sarchat_bench.report.answers import MODEL_COLOUR, REPORT_PAGE_LIMIT, TRUE_COLOUR
from support import REPO
from support.browser import (
    WHY_NOT,
    answers_in_report,
    browser_page,
    column,
    images_loaded,
    pixels_near,
    table3_in_report,
)
from support.workflow import SNAKEMAKE, assert_logs_are_clean, planned_rules, snakemake

pytestmark = pytest.mark.workflow
@pytest.fixture(scope="module")
def sardet_flat(tmp_path_factory):
    """A SARDet-100K-layout folder with images directly under JPEGImages/."""
    from sarchat_bench.dataset.demo_data import generate

    root = tmp_path_factory.mktemp("flat") / "SARDet_100K"
    generate(root, seed=11, images_per_split={"train": 20, "val": 3, "test": 12}, flat=True)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory, sardet_flat):
    workdir = tmp_path_factory.mktemp("wd")
    snakemake(workdir, "build_dataset", "validate_dataset", "--config", f"sardet_root={sardet_flat}")
    return workdir


def test_build_dataset_on_a_sardet_layout_folder(built, sardet_flat):
    sarchat = built / "results" / "sarchat"
    for cell in CELLS:
        assert (sarchat / "test" / f"{cell}.jsonl").stat().st_size > 0, cell
    mix = [orjson.loads(line) for line in (sarchat / "train.jsonl").read_bytes().splitlines()]
    assert {r["task"] for r in mix} == set(TASKS)
    # Decision D1: SARDet-100K's train split builds the mix, its test split the test files.
    assert all("-train-" in r["id"] for r in mix)
    # Image paths are relative to the dataset folder (D20): the build works wherever it is mounted.
    assert all(p.startswith("JPEGImages/") and (sardet_flat / p).is_file() for r in mix for p in r["images"])
    for cell in CELLS:
        lines = (sarchat / "test" / f"{cell}.jsonl").read_bytes().splitlines()
        assert all("-test-" in orjson.loads(line)["id"] for line in lines)
    for report in (sarchat / "validation").rglob("*.json"):
        for path, result in orjson.loads(report.read_bytes()).items():
            assert result["invalid"] == 0 and result["records"] > 0, path
    for name in ("table1_categories.md", "table2_aspect_ratio.csv", "table4_aspect_ratio_by_category.md",
                 "table5_tasks.md", "filter_report.md", "categories.png", "tasks.png"):
        assert (sarchat / "stats" / name).stat().st_size > 0
    assert "paper" in (sarchat / "stats" / "table1_categories.md").read_text()
    # Table 1 counts the annotation reports: they must match the box tables themselves.
    from sarchat_bench.dataset.annotations import read_boxes

    table1 = pd.read_csv(sarchat / "stats" / "table1_categories.csv").set_index("category")
    kept = Counter(inst.category for im in read_boxes([sarchat / "annotations" / "train.boxes.json"])
                   for inst in im.instances)
    assert table1["train_boxes"].to_dict() == {c: kept.get(c, 0) for c in table1.index} and sum(kept.values())
    # Table 5 is counted from the generator jobs' summaries: it must match the files themselves.
    table5 = pd.read_csv(sarchat / "stats" / "table5_tasks.csv").set_index("task")
    assert table5["train"].to_dict() == Counter(r["task"] for r in mix)
    test_counts = Counter(orjson.loads(line)["task"] for cell in CELLS
                          for line in (sarchat / "test" / f"{cell}.jsonl").read_bytes().splitlines())
    assert table5["test"].to_dict() == test_counts
    generation = pd.read_csv(sarchat / "stats" / "generation_report.csv")
    assert set(generation.task) == set(TASKS) and generation.records.sum() == len(mix) + sum(test_counts.values())
    # One description per image, unless the §3.2(2) filters skip it: every image is accounted for.
    describe = generation[generation.task == "describe"]
    assert (describe.images == describe.records + describe.images_skipped).all()
    assert describe.images_skipped.sum() > 0 and describe.skip_reasons.str.contains("image_below_min_side").any()
    for rule_dir in ("logs", "benchmarks"):
        assert (built / "results" / rule_dir / "annotations").is_dir()


def test_rerun_is_a_no_op_and_only_changed_tasks_rerun(built, sardet_flat):
    config = ["--config", f"sardet_root={sardet_flat}"]
    assert planned_rules(built, "build_dataset", *config) == {}
    changed = planned_rules(built, "build_dataset", *config,
                            extra_config="dataset: {tasks: {identify: {samples_per_instance: 3}}}")
    # A params change of identify reruns identify's test file, the training mix (every model
    # trains on all of it) and what reads them; no other test file.
    assert changed.get("train_mix") == 1 and changed.get("test_identify") == 1
    assert "annotations" not in changed and "test_count" not in changed


def test_another_sardet_root_rebuilds(built, sardet_flat, tmp_path):
    """The dataset folder is what the build depends on: another one reruns it."""
    import shutil

    other = tmp_path / "SARDet_100K"
    shutil.copytree(sardet_flat, other)
    changed = planned_rules(built, "build_dataset", "--config", f"sardet_root={other}")
    assert changed.get("annotations") == 2 and changed.get("train_mix") == 1


def test_editing_one_tasks_templates_reruns_only_its_files(tmp_path, sardet_flat):
    from sarchat_bench.dataset.templates import DEFAULT_PATH

    templates = tmp_path / "my_templates.yaml"
    templates.write_text(DEFAULT_PATH.read_text())
    config = ["--config", f"sardet_root={sardet_flat}"]
    extra = f"dataset: {{templates: {templates}}}"
    snakemake(tmp_path, "build_dataset", *config, extra_config=extra)
    assert planned_rules(tmp_path, "build_dataset", *config, extra_config=extra) == {}
    text = templates.read_text()
    question = "How many {plural} are there in the image?"
    assert question in text
    templates.write_text(text.replace(question, "How many {plural} can you count here?"))
    changed = planned_rules(tmp_path, "build_dataset", *config, extra_config=extra)
    assert changed.get("test_count") == 1 and changed.get("train_mix") == 1
    assert not {"test_refer", "test_identify", "annotations"} & set(changed)
    # A broken template file stops the workflow before any job, naming the file and template.
    templates.write_text(text.replace(question, "How many {plurals} are there?"))
    result = snakemake(tmp_path, "build_dataset", *config, "--dry-run", check=False, extra_config=extra)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and f"{templates}, record count.questions[0]: unknown placeholder" in message


def test_one_cell_rebuilds_alone(built, sardet_flat):
    target = built / "results" / "sarchat" / "test" / "refer_multi.jsonl"
    before = target.read_bytes()
    target.unlink()
    snakemake(built, str(target.relative_to(built)), "--config", f"sardet_root={sardet_flat}")
    assert target.read_bytes() == before


@pytest.mark.swift
def test_a_moved_build_trains_predicts_and_scores_with_one_setting(tmp_path):
    """Built in one working directory, then results/sarchat/ and the SARDet-100K folder moved to
    other paths: `image_root` alone lets training, inference and the answer browser find the
    images, nothing of the build reruns, and another image root reruns nothing (D20)."""
    import shutil

    from sarchat_bench.dataset.demo_data import generate

    source = tmp_path / "built_from" / "SARDet_100K"
    generate(source, seed=6, images_per_split={"train": 6, "test": 4})
    first, second = tmp_path / "first", tmp_path / "second"
    config = f"sardet_root: {source}\nrun: [tiny-llava1.5]\n"
    first.mkdir()
    snakemake(first, "results/sarchat/train.jsonl", "results/sarchat/test/count.jsonl", extra_config=config)
    (second / "results").mkdir(parents=True)
    shutil.move(first / "results" / "sarchat", second / "results" / "sarchat")
    mounted = tmp_path / "mounted" / "SARDet_100K"
    mounted.parent.mkdir()
    shutil.move(source, mounted)
    targets = ["results/scores/tiny-llava1.5/count.json", "results/answers/tiny-llava1.5/count.html"]
    moved = config + f"image_root: {mounted}\n"
    assert set(planned_rules(second, *targets, extra_config=moved)) == {
        "tiny_model", "train_model", "infer_shard", "merge_predictions", "score_cell", "answer_browser"}
    snakemake(second, *targets, extra_config=moved)
    results = second / "results"
    assert_logs_are_clean(results / "logs")
    train_log = (results / "logs" / "train" / "tiny-llava1.5.log").read_text()
    assert f"(images resolved against ROOT_IMAGE_DIR={mounted})" in train_log  # swift sft fails on unread images
    assert orjson.loads((results / "models" / "tiny-llava1.5" / "adapter.json").read_bytes())["global_step"] == 6
    assert "cannot read image" not in (results / "logs" / "infer" / "tiny-llava1.5" / "count.1-of-1.log").read_text()
    test = [orjson.loads(line) for line in (results / "sarchat" / "test" / "count.jsonl").read_bytes().splitlines()]
    page = (results / "answers" / "tiny-llava1.5" / "count.html").read_text()
    assert page.count('<img src="data:image/jpeg;base64,') == len(test) > 0
    # Where the images are is not what the results are made from: another root reruns nothing.
    (tmp_path / "elsewhere" / "JPEGImages").mkdir(parents=True)
    assert planned_rules(second, *targets, extra_config=config + f"image_root: {tmp_path / 'elsewhere'}\n") == {}


def readme_demo_numbers() -> dict:
    """The demo's numbers as the README states them (README, "What the demo's numbers mean")."""
    readme = " ".join((REPO / "README.md").read_text().split())
    tuned = re.search(r"`tiny-llava1\.5-wide`\) .*? scores ([\d.]+) on identification and ([\d.]+) on "
                      r"classification, average ([\d.]+) \(Eq\. 4\)", readme)
    baseline = re.search(r"`majority-answer`, which .*? scores ([\d.]+) \(", readme)
    return {("tiny-llava1.5-wide", "Cross-Modal Identification"): float(tuned[1]),
            ("tiny-llava1.5-wide", "Classification"): float(tuned[2]),
            ("tiny-llava1.5-wide", "Avg score (Eq. 4)"): float(tuned[3]),
            ("majority-answer", "Avg score (Eq. 4)"): float(baseline[1])}


@pytest.mark.swift
def test_demo_runs_the_whole_chain(tmp_path):
    """`make demo` itself (config.yaml as it is): dataset, tiny-model LoRA training with real
    swift sft, real ms-swift inference for all nine cells, scores, tables, figures, and the HTML
    report. The demo's pair shows fine-tuning at work: the fine-tuned row answers in the
    dataset's format where the same model untrained answers nothing parseable. The README's demo
    numbers and docs/dataset.md's example record are this run's."""
    demo = ""  # config.yaml as it is, nothing merged over it
    snakemake(tmp_path)
    results = tmp_path / "results"
    assert_logs_are_clean(results / "logs")

    def records(path):
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]

    assert (results / "demo" / "SARDet_100K" / "Annotations" / "train.json").is_file()
    for model, steps in (("tiny-llava1.5-wide", 300), ("tiny-llava1.5-wide-zero-shot", None)):
        if steps:
            adapter = orjson.loads((results / "models" / model / "adapter.json").read_bytes())
            assert adapter["global_step"] == steps and (results / "models" / model / "loss.png").is_file()
        for cell in CELLS:
            test_ids = [r["id"] for r in records(results / "sarchat" / "test" / f"{cell}.jsonl")]
            predictions = records(results / "predictions" / model / f"{cell}.jsonl")
            assert [p["id"] for p in predictions] == test_ids
            score = orjson.loads((results / "scores" / model / f"{cell}.json").read_bytes())
            assert score["n_samples"] == len(test_ids)
    # The numbers the README gives for the demo are the demo's (rounded as it prints them).
    tasks = pd.read_csv(results / "tables" / "task_scores.csv").set_index("Model")
    measured = {key: round(float(tasks.loc[key]), 1) for key in readme_demo_numbers()}
    assert measured == readme_demo_numbers(), "README's demo numbers are not this run's"
    # docs/dataset.md's example record is the demo's first refer_multi record, as the build writes it.
    dataset_page = (REPO / "docs" / "dataset.md").read_text()
    example = orjson.loads(re.search(r"A record:\n\n```json\n(.*?)\n```", dataset_page, re.S)[1])
    assert example == records(results / "sarchat" / "test" / "refer_multi.jsonl")[0]
    # Identification (most of the mix): few unparsed answers and many categories right after
    # fine-tuning, almost all unparsed untrained.
    tuned, untrained = (orjson.loads((results / "scores" / m / "identify_multi.json").read_bytes())
                        for m in ("tiny-llava1.5-wide", "tiny-llava1.5-wide-zero-shot"))
    n = tuned["n_samples"]
    assert tuned["parse_failures"] <= n // 10 and untrained["parse_failures"] >= n * 8 // 10, (tuned, untrained)
    assert tuned["metrics"]["category"]["value"] >= untrained["metrics"]["category"]["value"] + 30, (tuned, untrained)
    table = (results / "tables" / "table3.md").read_text()
    assert all(m in table for m in ("majority-answer", "tiny-llava1.5-wide", "tiny-llava1.5-wide-zero-shot"))
    assert "Eq. 4" in table
    assert (results / "tables" / "table3.tex").read_text().startswith("\\begin{table}")
    for figure in ("radar", "avg_vs_params", "per_category", "paper_radar", "paper_avg_vs_params"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 10_000
    pages = {cell: (results / "answers" / "tiny-llava1.5-wide" / f"{cell}.html").read_text() for cell in CELLS}
    for cell, page in pages.items():
        assert page.count("<img ") == min(20, len(records(results / "sarchat" / "test" / f"{cell}.jsonl")))
        assert len(page.encode()) < REPORT_PAGE_LIMIT, cell  # else Chromium shows it blank inside the report
    assert any('<tr class="unparsed">' in page for page in pages.values())  # its few unparsed answers, first
    # Provenance: what the inference job ran with, the run's commit and config, in the score file.
    score = orjson.loads((results / "scores" / "tiny-llava1.5-wide" / "count.json").read_bytes())
    (inference,) = score["provenance"]["predictions"]["inference"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert inference["job"]["packages"]["ms-swift"] == importlib.metadata.version("ms-swift")
    assert inference["job"]["git_commit"].startswith(head.strip()) and len(head.strip()) == 40
    assert inference["job"]["config_digest"] == score["provenance"]["scoring"]["config_digest"]
    adapter = orjson.loads((results / "models" / "tiny-llava1.5-wide" / "adapter.json").read_bytes())
    assert inference["model"]["adapter_digest"] == adapter["adapter_digest"]
    assert inference["model"]["source"] == {"tiny": "llava1_5_hf_wide"}
    provenance_table = (results / "tables" / "provenance.md").read_text()
    assert importlib.metadata.version("transformers") in provenance_table and head[:12] in provenance_table
    snakemake(tmp_path, "--report", str(tmp_path / "report.html"), extra_config=demo)
    html = (tmp_path / "report.html").read_text()
    assert "table3.md" in html and "categories.png" in html and "provenance.html" in html and len(html) > 100_000
    # The demo's report as a reader sees it in Chromium (tests/browser.py): Table 3 with the
    # demo's rows and the baseline's, answer pages of 20 samples that open (a page over 2 MiB
    # would be blank), and the baseline's boxes drawn on the demo's images in both colours.
    shots = results / "screenshots"
    with browser_page() as page:
        if page is None:
            warnings.warn(f"the demo's report was not opened in a browser: {WHY_NOT}", stacklevel=1)
        else:
            frame = table3_in_report(page, tmp_path / "report.html", shots / "table3.png")
            rows = column(frame, 0)
            assert sorted(rows[:-1]) == ["tiny-llava1.5-wide", "tiny-llava1.5-wide-zero-shot"]
            assert rows[-1] == "majority-answer"
            frame = answers_in_report(page, tmp_path / "report.html", "tiny-llava1.5-wide", "identify_multi",
                                      shots / "answers.png")
            assert len(images_loaded(frame)) == 20 and all(images_loaded(frame))
            frame = answers_in_report(page, tmp_path / "report.html", "majority-answer", "refer_multi",
                                      shots / "baseline_answers.png")
            frame.locator("img").first.screenshot(path=shots / "baseline_image.png")
            image = Image.open(shots / "baseline_image.png")
            assert pixels_near(image, TRUE_COLOUR) > 50 and pixels_near(image, MODEL_COLOUR) > 50
    # The adapter merges into full weights for backends that need them.
    snakemake(tmp_path, "results/models/tiny-llava1.5-wide/merged", extra_config=demo)
    assert (results / "models" / "tiny-llava1.5-wide" / "merged" / "config.json").is_file()
    # How a job runs (logging and saving cadence, batch size, the model cache) reruns nothing;
    # what it makes (the learning rate) retrains that model and what reads its adapter.
    entry = "models: {tiny-llava1.5-wide: {train: {%s}, infer: {%s}}}\n"  # merged over config.yaml's entry
    same = demo + f"cache_dir: {tmp_path / 'elsewhere'}\n" + entry % (
        "save_steps: 2, logging_steps: 3, save_total_limit: 1", "batch_size: 5, requests_per_call: 7")
    assert planned_rules(tmp_path, "all", extra_config=same) == {}
    changed = planned_rules(tmp_path, "all", extra_config=demo + entry % ("save_steps: 3, learning_rate: 2.0e-4", ""))
    assert changed["train_model"] == 1 and changed["infer_shard"] == 9 and "tiny_model" not in changed
    # Rescoring never reruns inference.
    (results / "scores" / "tiny-llava1.5-wide" / "count.json").unlink()
    assert planned_rules(tmp_path, "score_all", extra_config=demo) == {"score_cell": 1, "score_all": 1}


@pytest.mark.swift
def test_a_transformers4_model_trains_and_predicts_in_its_environment(built, sardet_flat):
    """The transformers-4.57 environment, built without conda (`make env ENV=transformers4`),
    for real: the workflow trains, predicts and scores a tiny model in it."""
    from sarchat_bench.models.environments import interpreter

    if not interpreter("transformers4").is_file():
        pytest.skip("the transformers4 environment is not built: `make env ENV=transformers4` (make test does)")
    config = ["--config", f"sardet_root={sardet_flat}", "run=[tiny-llava1.5-t4]"]
    cells = ("count", "refer_single")  # a number and a box; the demo test runs all nine
    snakemake(built, *(f"results/scores/tiny-llava1.5-t4/{cell}.json" for cell in cells), *config)
    results = built / "results"
    train_log = (results / "logs" / "train" / "tiny-llava1.5-t4.log").read_text()
    assert f"{interpreter('transformers4')} -m swift.cli.main sft" in train_log
    assert "runs in environment transformers4" in train_log and "transformers 4.57.6" in train_log
    assert orjson.loads((results / "models" / "tiny-llava1.5-t4" / "adapter.json").read_bytes())["global_step"] == 6
    tiny = orjson.loads((results / "models" / "tiny" / "transformers4" / "llava1_5_hf" / "config.json").read_bytes())
    assert tiny["transformers_version"] == "4.57.6"
    infer_log = (results / "logs" / "infer" / "tiny-llava1.5-t4" / "count.1-of-1.log").read_text()
    assert "runs in environment transformers4" in infer_log and "transformers 4.57.6" in infer_log
    for cell in cells:
        assert orjson.loads((results / "scores" / "tiny-llava1.5-t4" / f"{cell}.json").read_bytes())["n_samples"] > 0


def swift_result_line(record: dict, response: str, test) -> dict:
    """A line as `swift infer --val_dataset TEST --result_path F` writes it (ms-swift 4.6; pinned by
    tests/evaluation/test_swift_results.py): no id."""
    return {"response": response, "labels": record["messages"][1]["content"], "logprobs": None,
            "messages": [record["messages"][0], {"role": "assistant", "content": response}],
            "images": [{"bytes": None, "path": p} for p in record["images"]], "dataset": str(test)}


def test_predictions_only_model_is_scored_without_training(built, sardet_flat):
    """A model whose predictions come from another tool: drop the files, get the tables. Three of
    them are `swift infer` result files, dropped as ms-swift wrote them."""
    for cell in CELLS:
        test = built / "results" / "sarchat" / "test" / f"{cell}.jsonl"
        out = built / "results" / "predictions" / "elsewhere" / f"{cell}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        records = list(map(orjson.loads, test.read_bytes().splitlines()))
        if cell in ("classify", "refer_single", "grounding_multi"):
            lines = [swift_result_line(r, r["messages"][1]["content"], test) for r in records]
        else:
            lines = [{"id": r["id"], "response": r["messages"][1]["content"]} for r in records]
        out.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    extra = "run: [elsewhere]\nmodels: {elsewhere: {family: Other tool, params_b: 1, mode: predictions}}"
    # The baseline scored beside it first (done already when the tests before this one ran).
    snakemake(built, *[f"results/scores/majority-answer/{cell}.json" for cell in CELLS], "--config",
              f"sardet_root={sardet_flat}", extra_config=extra)
    plan = planned_rules(built, "report", "--config", f"sardet_root={sardet_flat}", extra_config=extra)
    assert set(plan) == {"score_cell", "report"} and plan["score_cell"] == 9
    snakemake(built, "report", "--config", f"sardet_root={sardet_flat}", extra_config=extra)
    row = next(line for line in (built / "results" / "tables" / "table3.csv").read_text().splitlines()
               if line.startswith("elsewhere"))
    values = [v for v in row.split(",")[3:] if v]
    assert values and all(float(v) == 100.0 for v in values)
    # The answer browser reads what the score job read: a swift result file's answers by order.
    snakemake(built, "results/answers/elsewhere/refer_single.html", "--config", f"sardet_root={sardet_flat}",
              extra_config=extra)
    page = (built / "results" / "answers" / "elsewhere" / "refer_single.html").read_text()
    assert "iou50 ✓" in page and "✗" not in page  # every answer read, and right


def test_export_hf_writes_a_dataset_that_loads_offline(built, sardet_flat, tmp_path, monkeypatch):
    """`snakemake export_hf`: every file of the build as a config of its own with its rows, the
    images once, decoding; the card checked offline (tests/dataset/test_export.py tests the rest)."""
    import datasets
    from sarchat_bench.dataset.export import check_card

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    snakemake(built, "export_hf", "--config", f"sardet_root={sardet_flat}")
    hf, sarchat = built / "results" / "hf", built / "results" / "sarchat"
    files = {"train": sarchat / "train.jsonl", **{cell: sarchat / "test" / f"{cell}.jsonl" for cell in CELLS}}
    for name, path in files.items():
        rows = len(path.read_bytes().splitlines())
        if rows:
            loaded = datasets.load_dataset(str(hf), name, cache_dir=str(tmp_path))
            assert loaded["train" if name == "train" else "test"].num_rows == rows, name
    images = datasets.load_dataset(str(hf), "images", split="images", cache_dir=str(tmp_path))
    lines = [line for path in files.values() for line in path.read_bytes().splitlines()]
    used = {p for line in lines for p in orjson.loads(line)["images"]}
    assert images.num_rows == len(used) and images[0]["image"].size == (images[0]["width"], images[0]["height"])
    assert set(images["key"]) == used  # keyed by the path the records name them by, below the root
    assert check_card(hf / "README.md").license == "cc-by-nc-4.0"


def test_lmms_tasks_rule_writes_the_task_folder(built, sardet_flat):
    """`snakemake lmms_tasks`: a task per test file over the build's files, images resolved against
    the build's dataset root (tests/e2e/test_lmms_eval.py runs lmms-eval on such a folder)."""
    snakemake(built, "lmms_tasks", "--config", f"sardet_root={sardet_flat}")
    tasks = built / "results" / "lmms"
    assert sorted(p.name for p in tasks.glob("sarchat_*.yaml")) == sorted(f"sarchat_{c}.yaml" for c in CELLS)
    count = (tasks / "sarchat_count.yaml").read_text()
    assert f"test: {built / 'results' / 'sarchat' / 'test' / 'count.jsonl'}" in count
    assert f"lmms_task.IMAGE_ROOT = {str(sardet_flat.resolve())!r}" in (tasks / "utils.py").read_text()


def test_download_rule_places_a_local_archive(tmp_path, sardet_flat):
    import tarfile

    archive = tmp_path / "sardet.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(sardet_flat, arcname="SARDet_100K")
    snakemake(tmp_path, "results/sarchat/test/count.jsonl",
              extra_config=f"download: {{source: archive, archive: {archive}}}")
    placed = tmp_path / "results" / "download" / "SARDet_100K"
    assert (placed / "Annotations" / "test.json").is_file()
    assert (tmp_path / "results" / "sarchat" / "test" / "count.jsonl").stat().st_size > 0


def test_the_kaggle_layout_unzipped_by_hand_builds_as_it_is(tmp_path):
    """sardet_root at the Kaggle copy unzipped by hand, whose test.json is beside Annotations/:
    the annotations job reads it there (docs/dataset.md, "Getting SARDet-100K")."""
    import zipfile

    from support import sardet_sources

    with zipfile.ZipFile(sardet_sources.kaggle_zip(tmp_path)) as zf:
        zf.extractall(tmp_path / "data")
    root = tmp_path / "data" / "SARDet_100K"
    snakemake(tmp_path, "results/sarchat/test/count.jsonl", "--config", f"sardet_root={root}")
    report = orjson.loads((tmp_path / "results" / "sarchat" / "annotations" / "test.report.json").read_bytes())
    assert report["source"] == str(root / "test.json") and report["images_out"] == sardet_sources.IMAGES["test"]
    assert (tmp_path / "results" / "sarchat" / "test" / "count.jsonl").stat().st_size > 0


def test_bad_config_is_rejected(tmp_path):
    result = snakemake(tmp_path, "-n", extra_config="dataset: {seed: x}", check=False)
    assert result.returncode != 0 and "On instance['dataset']['seed']" in result.stdout + result.stderr


def test_nested_command_line_config_is_typed(tmp_path):
    """Snakemake passes nested --config values as strings; the schema's types win."""
    result = snakemake(tmp_path, "-n", "--config", "dataset={check_image_files: false, seed: 3}",
                       "inference={samples_per_shard: 7}", check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    result = snakemake(tmp_path, "-n", "--config", "inference={samples_per_shard: seven}", check=False)
    assert result.returncode != 0 and "'seven' is not of type 'integer'" in result.stdout + result.stderr


def test_every_rule_says_what_it_does():
    result = subprocess.run([*SNAKEMAKE, "--list-rules", "-s", str(REPO / "Snakefile")], cwd=REPO,
                            capture_output=True, text=True, check=True)
    rules = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(rules) > 20 and all(re.match(r"^\w+ \(.+\)$", line) for line in rules), rules


def test_lint_is_clean(tmp_path):
    result = snakemake(REPO, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tiny_config_runs_the_whole_chain_for_one_model(tmp_path):
    """tests/configs/tiny.yaml, the config to run by hand, plans the whole chain: one tiny model
    trained, its nine test files predicted and scored beside the baseline, the report."""
    planned = planned_rules(tmp_path, extra_config=(REPO / "tests" / "configs" / "tiny.yaml").read_text())
    assert planned["train_model"] == 1 and planned["score_cell"] == 18 and planned["report"] == 1
