"""The report in a real browser, used as a reader uses it: Playwright drives headless Chromium
(Debian's `chromium`) through `results/report.html`, the app `snakemake --report` writes: it
clicks Results > Benchmark > table3.html and Results > Answers > the model > each test file's
page, and checks what the report shows in its viewer. The model is a predictions-mode one whose answers are the
references with every box moved 12 pixels, so that both colours of boxes must be on the screen.
Screenshots are kept under results/screenshots/ of the test's working directory.

`python tests/test_report_browser.py results/report.html docs/` takes the README's two
screenshots of an existing report (after `make demo`) the same way."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))
from sarchat_bench.answer_browser import MODEL_COLOUR, TRUE_COLOUR  # noqa: E402
from sarchat_bench.tasks import CELLS  # noqa: E402
from test_workflow import snakemake  # noqa: E402

pytestmark = pytest.mark.workflow

MODELS = """
demo: {seed: 5, images: {train: 4, val: 2, test: 6}}
run: [moved-boxes]
models: {moved-boxes: {family: Reference answers with moved boxes, params_b: 1, mode: predictions}}
report: {answers_per_cell: 2}
"""
# The cells whose answers are boxes: the answer browser draws the model's boxes there.
BOX_CELLS = ("count", "grounding_single", "grounding_multi", "refer_single", "refer_multi")
# Without the background-networking flags Chromium keeps calling hosts a closed network refuses.
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (as root), as the SLURM tests do."""
    found = shutil.which("chromium")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env,
                       capture_output=True)
        found = shutil.which("chromium")
    if not found:
        pytest.skip("no chromium: install Debian's `chromium` package (apt-get install chromium) to run this test")
    return found


def open_in_report(page, report: Path, menu: list[str], row: str):
    """Open `report` afresh, click through `menu` under Results, then the eye of the row whose
    first cell reads `row`, as a reader does; the frame in which the report shows that file."""
    page.goto(report.as_uri())
    for entry in menu:
        page.get_by_text(entry, exact=True).click()
    first_cell = page.get_by_role("cell", name=row, exact=True)
    page.locator("tr").filter(has=first_cell).locator("a[iconname=eye]").click()
    frame = page.locator("iframe").element_handle().content_frame()
    frame.wait_for_load_state()
    return frame


def table3_in_report(page, report: Path, screenshot: Path):
    frame = open_in_report(page, report, ["Benchmark"], "results/tables/table3.html")
    frame.locator("table").wait_for(state="visible")
    page.screenshot(path=screenshot)
    return frame


def answers_in_report(page, report: Path, model: str, cell: str, screenshot: Path):
    frame = open_in_report(page, report, ["Answers", model], cell)
    frame.locator("h1").wait_for(state="visible")
    page.screenshot(path=screenshot)
    return frame


def moved(answer: str) -> str:
    return re.sub(r"\{<(\d+)><(\d+)><(\d+)><(\d+)>\}",
                  lambda m: "{" + "".join(f"<{int(v) + 12}>" for v in m.groups()) + "}", answer)


def pixels_near(image: Image.Image, colour, tolerance=40) -> int:
    return sum(1 for p in image.convert("RGB").get_flattened_data()
               if all(abs(a - b) <= tolerance for a, b in zip(p, colour)))


def column(frame, index: int) -> list[str]:
    return [t.strip() for t in frame.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()]


def test_table3_and_the_answer_browser_in_the_report_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in envs/default.txt: `make setup`")
    browser_path = chromium()
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

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

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
            assert all(images.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")), cell
            if cell in BOX_CELLS and n:
                drawn = shots / f"report_answers_{cell}_image.png"
                images.first.screenshot(path=drawn)
                # The reference boxes (green) and the model's moved boxes (red), as the browser drew them.
                assert pixels_near(Image.open(drawn), TRUE_COLOUR) > 50, cell
                assert pixels_near(Image.open(drawn), MODEL_COLOUR) > 50, cell
        browser.close()
    screen = Image.open(shots / "report_table3.png")
    assert len(set(screen.convert("L").get_flattened_data())) > 10  # text drawn, not a blank page


def take_readme_screenshots(report: Path, out: Path, model: str = "majority-answer") -> None:
    """The README's two screenshots, of the report of a finished run, as the test takes them."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        table3_in_report(page, report, out / "report_table3.png")
        answers_in_report(page, report, model, "refer_multi", out / "answer_browser.png")
        browser.close()


if __name__ == "__main__":
    take_readme_screenshots(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
