"""The report's pages in a real browser: headless Chromium (Debian's `chromium`) renders the Table
3 page and the answer browser that the workflow wrote, and the screenshots show the table and
the boxes. The model is a predictions-mode one whose answers are the references with every box
moved 12 pixels, so that both colours of boxes must be on the page. Screenshots are kept under
results/screenshots/ of the test's working directory."""

import os
import re
import shutil
import subprocess

import orjson
import pytest
from PIL import Image
from sarchat_bench.answer_browser import MODEL_COLOUR, TRUE_COLOUR
from sarchat_bench.tasks import CELLS
from test_workflow import snakemake

pytestmark = pytest.mark.workflow

MODELS = """
demo: {seed: 5, images: {train: 4, val: 2, test: 6}}
run: [moved-boxes]
models: {moved-boxes: {family: Reference answers with moved boxes, params_b: 1, mode: predictions}}
report: {answers_per_cell: 2}
"""


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


def render(browser: str, page, screenshot, size=(1280, 1600)) -> str:
    """The page's DOM after its scripts ran, and a screenshot of it."""
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={size[0]},"
             f"{size[1]}", "--allow-file-access-from-files"]
    subprocess.run([*flags, f"--screenshot={screenshot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120)
    return dom.stdout


def moved(answer: str) -> str:
    return re.sub(r"\{<(\d+)><(\d+)><(\d+)><(\d+)>\}",
                  lambda m: "{" + "".join(f"<{int(v) + 12}>" for v in m.groups()) + "}", answer)


def pixels_near(image: Image.Image, colour, tolerance=40) -> int:
    return sum(1 for p in image.convert("RGB").get_flattened_data()
               if all(abs(a - b) <= tolerance for a, b in zip(p, colour)))


def test_table3_and_the_answer_browser_render_in_chromium(tmp_path):
    browser = chromium()
    results = tmp_path / "results"
    snakemake(tmp_path, *(f"results/sarchat/test/{c}.jsonl" for c in CELLS), extra_config=MODELS)
    for cell in CELLS:
        out = results / "predictions" / "moved-boxes" / f"{cell}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        records = map(orjson.loads, (results / "sarchat" / "test" / f"{cell}.jsonl").read_bytes().splitlines())
        out.write_bytes(b"".join(orjson.dumps({"id": r["id"], "response": moved(r["messages"][1]["content"])}) + b"\n"
                                 for r in records))
    snakemake(tmp_path, extra_config=MODELS)  # everything: with this model, no training or inference
    snakemake(tmp_path, "--report", str(results / "report.html"), extra_config=MODELS)
    shots = results / "screenshots"
    shots.mkdir()

    dom = render(browser, results / "tables" / "table3.html", shots / "table3.png")
    rows = re.findall(r"<tr>(.*?)</tr>", dom, re.S)
    # The model's row, then the no-model baseline's (report.baselines).
    assert "<table" in dom and len(rows) == 3 and "moved-boxes" in rows[1] and "majority-answer" in rows[2], dom
    assert len(re.findall(r"<th", rows[0])) == 4 + 14 and re.search(r">\d+\.\d\d<", rows[1])
    table = Image.open(shots / "table3.png")
    assert len(set(table.convert("L").get_flattened_data())) > 10  # text drawn, not a blank page

    dom = render(browser, results / "answers" / "moved-boxes.html", shots / "answers.png", size=(1280, 4000))
    cells_with_samples = sum(1 for c in CELLS if (results / "sarchat" / "test" / f"{c}.jsonl").stat().st_size)
    assert dom.count("<img ") == 2 * cells_with_samples and "Model answer" in dom
    assert all(f'id="{c}"' in dom for c in CELLS)
    page = Image.open(shots / "answers.png")
    page = page.crop((0, 250, page.width, page.height))  # below the legend, which has both colours
    # Both the reference boxes (green) and the model's moved boxes (red) are on the screen.
    assert pixels_near(page, TRUE_COLOUR) > 200 and pixels_near(page, MODEL_COLOUR) > 200

    report = (results / "report.html").read_text()
    assert "table3.html" in report and "moved-boxes.html" in report
