"""A real browser for the report's tests: Playwright (envs/default.txt) drives Debian's
`chromium` through `report.html` as a reader clicks through it.

`python tests/browser.py results/report.html docs/` takes the README's two screenshots of an
existing report (after `make demo`) the same way."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Without the background-networking flags Chromium keeps calling hosts a closed network refuses.
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def chromium() -> str | None:
    """Debian's chromium, installed with apt-get when missing (as root), as the SLURM tests do."""
    found = shutil.which("chromium")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env,
                       capture_output=True)
        found = shutil.which("chromium")
    return found


WHY_NOT = "no chromium: install Debian's `chromium` package (apt-get install chromium) to run this check"


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 900):
    """A page of headless Chromium, or None where there is no chromium (WHY_NOT says why)."""
    from playwright.sync_api import sync_playwright

    path = chromium()
    if path is None:
        yield None
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def row_in_report(page, report: Path, menu: list[str], row: str):
    """Open `report` afresh and click through `menu` under Results, as a reader does; the table
    row whose first cell reads `row`."""
    page.goto(report.as_uri())
    for entry in menu:
        page.get_by_text(entry, exact=True).click()
    return page.locator("tr").filter(has=page.get_by_role("cell", name=row, exact=True))


def open_in_report(page, report: Path, menu: list[str], row: str):
    """The frame in which the report shows the file of that row, after a click on its eye."""
    row_in_report(page, report, menu, row).locator("a[iconname=eye]").click()
    frame = page.locator("iframe").element_handle().content_frame()
    frame.wait_for_load_state()
    return frame


def caption_in_report(page, report: Path, menu: list[str], row: str) -> str:
    """The text the report shows for the file of that row after a click on its information
    button (its caption among it)."""
    row_in_report(page, report, menu, row).locator("a[iconname=information-circle]").click()
    page.get_by_text("Description", exact=True).wait_for()
    return page.inner_text("body")


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


def column(frame, index: int) -> list[str]:
    """The texts of a column of the frame's table body."""
    return [t.strip() for t in frame.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()]


def images_loaded(frame) -> list[bool]:
    return frame.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")


def pixels_near(image, colour, tolerance=40) -> int:
    """How many pixels of a PIL image are within `tolerance` of `colour` in every channel."""
    return sum(1 for p in image.convert("RGB").get_flattened_data()
               if all(abs(a - b) <= tolerance for a, b in zip(p, colour)))


def take_readme_screenshots(report: Path, out: Path, model: str = "majority-answer") -> None:
    """The README's two screenshots, of the report of a finished run, as the tests take them."""
    with browser_page(height=720) as page:
        if page is None:
            sys.exit(WHY_NOT)
        table3_in_report(page, report, out / "report_table3.png")
        answers_in_report(page, report, model, "refer_multi", out / "answer_browser.png")


if __name__ == "__main__":
    take_readme_screenshots(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
