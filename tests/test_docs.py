"""The manual is true to the code: the layout page names every module of the package, and every
file, test and module the README and docs/ name exists."""

import re

import pytest
from support import REPO

PACKAGE = REPO / "workflow_scripts" / "sarchat_bench"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A file of the repository, and a test function in it: tests/x/test_y.py::test_z
PATH = r"((?:tests|workflow_scripts|benchmarks|rules|envs|docs)/[\w./-]+\.(?:py|smk|yaml|txt|md|sh))(?:::(test_\w+))?"


def test_the_layout_page_names_every_module():
    layout = (REPO / "docs" / "layout.md").read_text()
    files = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*") if p.suffix in (".py", ".yaml")
                   and "__pycache__" not in p.parts and p.name != "__init__.py" or p == PACKAGE / "__init__.py")
    generators = PACKAGE / "dataset" / "generators"
    named = {f for f in files if f"`{f}`" in layout}
    named |= {str(p.relative_to(PACKAGE)) for p in generators.glob("*.py") if f"`{p.name}`" in layout}
    assert set(files) - named == set()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_a_page_names_exists(page):
    text = page.read_text()
    missing = []
    for path, test in re.findall(PATH, text):
        if not (REPO / path).exists():
            missing.append(path)
        elif test and f"def {test}" not in (REPO / path).read_text():
            missing.append(f"{path}::{test}")
    assert not missing, missing


def test_the_readme_names_the_version_it_describes():
    """README's version line is `sarchat_bench.__version__`, whatever that is now."""
    from sarchat_bench import __version__

    readme = " ".join((REPO / "README.md").read_text().split())
    (named,) = re.findall(r"The version \(`sarchat_bench.__version__`, now ([^;]+);", readme)
    assert named == __version__
