"""The report in a real browser, used as a reader uses it: Playwright drives headless Chromium
(Debian's `chromium`) through `results/report.html`, the app `snakemake --report` writes: it
clicks Results > Benchmark > table3.html and Results > Answers > the model > each test file's
page, and checks what the report shows in its viewer. The model is a predictions-mode one whose
answers are the references with every box moved 12 pixels, so that both colours of boxes must be
on the screen. (`test_workflow.py::test_demo_runs_the_whole_chain` opens the demo's report too.)
Screenshots are kept under results/screenshots/ of the test's working directory."""

import re

import orjson
import pytest
from PIL import Image
from sarchat_bench.paper.tasks import CELLS
from sarchat_bench.report.answers import MODEL_COLOUR, TRUE_COLOUR
from support.browser import (
    WHY_NOT,
    answers_in_report,
    browser_page,
    caption_in_report,
    chromium,
    column,
    images_loaded,
    pixels_near,
    table3_in_report,
)
from support.workflow import snakemake

pytestmark = pytest.mark.workflow

MODELS = """
demo: {seed: 5, images: {train: 4, val: 2, test: 6}}
run: [moved-boxes]
models: {moved-boxes: {family: Reference answers with moved boxes, params_b: 1, mode: predictions}}
report: {answers_per_cell: 2}
"""
# The cells whose answers are boxes: the answer browser draws the model's boxes there.
BOX_CELLS = ("count", "grounding_single", "grounding_multi", "refer_single", "refer_multi")


def moved(answer: str) -> str:
    return re.sub(r"\{<(\d+)><(\d+)><(\d+)><(\d+)>\}",
                  lambda m: "{" + "".join(f"<{int(v) + 12}>" for v in m.groups()) + "}", answer)


def test_table3_and_the_answer_browser_in_the_report_in_chromium(tmp_path):
    if chromium() is None:
        pytest.skip(WHY_NOT)
    results = tmp_path / "results"
    snakemake(tmp_path, *(f"results/sarchat/test/{c}.jsonl" for c in CELLS), extra_config=MODELS)
    for cell in CELLS:
        out = results / "predictions" / "moved-boxes" / f"{cell}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        records = map(orjson.loads, (results / "sarchat" / "test" / f"{cell}.jsonl").read_bytes().splitlines())
        out.write_bytes(b"".join(orjson.dumps({"id": r["id"], "response": moved(r["messages"][1]["content"])}) + b"\n"
                                 for r in records))
    snakemake(tmp_path, extra_config=MODELS)  # everything: with this model, no training or inference
    report = results / "report.html"
    snakemake(tmp_path, "--report", str(report), extra_config=MODELS)
    shots = results / "screenshots"
    shots.mkdir()

    with browser_page() as page:
        frame = table3_in_report(page, report, shots / "report_table3.png")
        headers = [t.strip() for t in frame.locator("thead th").all_inner_texts()]
        assert headers[:4] == ["Model", "Family", "Param (B)", "Avg score"] and len(headers) == 4 + 14, headers
        # The model's row, then the no-model baseline's (report.baselines); the table is on screen.
        assert column(frame, 0) == ["moved-boxes", "majority-answer"]
        box = frame.locator("table").bounding_box()
        assert box["width"] > 500 and box["y"] < 900 and re.fullmatch(r"\d+\.\d\d", column(frame, 4)[0])
        # Sorting by a column, then the other way; a missing value stays last both ways.
        only_count = frame.locator("thead th", has_text="Only count")
        only_count.click()
        ascending = [float(v) for v in column(frame, headers.index("Only count"))]
        only_count.click()
        descending = [float(v) for v in column(frame, headers.index("Only count"))]
        assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
        assert ascending != descending
        frame.locator("thead th", has_text="Param (B)").click()
        assert column(frame, 2)[-1] == "\u2013" and column(frame, 0)[-1] == "majority-answer"

        for cell in CELLS:
            frame = answers_in_report(page, report, "moved-boxes", cell, shots / f"report_answers_{cell}.png")
            n = len((results / "sarchat" / "test" / f"{cell}.jsonl").read_text().splitlines())
            assert frame.locator("h1").inner_text().endswith(f": {cell}"), cell
            assert f"{n} samples:" in frame.inner_text("body"), cell
            images = frame.locator("img")
            assert images.count() == min(2, n), cell
            assert all(images_loaded(frame)), cell
            if cell in BOX_CELLS and n:
                drawn = shots / f"report_answers_{cell}_image.png"
                images.first.screenshot(path=drawn)
                # The reference boxes (green) and the model's moved boxes (red), as the browser drew them.
                assert pixels_near(Image.open(drawn), TRUE_COLOUR) > 50, cell
                assert pixels_near(Image.open(drawn), MODEL_COLOUR) > 50, cell
        # Each answer page has its own caption, naming its model and test file.
        caption = caption_in_report(page, report, ["Answers", "moved-boxes"], "refer_multi")
        assert "The answers of moved-boxes on the test file refer_multi: up to 2 samples" in caption
    screen = Image.open(shots / "report_table3.png")
    assert len(set(screen.convert("L").get_flattened_data())) > 10  # text drawn, not a blank page
