"""The package mirrors the workflow's stages, and the stages meet only where the paper and the
record contract say: evaluation and the report never import the dataset stage's internals, and
the paper's definitions and the shared core import no stage."""

import ast

import pytest
from support import SCRIPTS

PACKAGE = SCRIPTS / "sarchat_bench"
STAGES = ("dataset", "models", "evaluation", "report")
# What each part may import of the package (besides itself and the package's version).
ALLOWED = {
    "core": {"core", "paper"},
    "paper": {"core", "paper"},
    "dataset": {"core", "paper", "dataset"},
    "models": {"core", "paper", "models"},
    "evaluation": {"core", "paper", "evaluation"},
    "report": {"core", "paper", "evaluation", "report"},
}
# Deciding whether a config is valid reads the task templates a config names: the one place
# where core looks into a stage (core/configuration.py, inside the check).
# The plan before launch reads what the dataset stage makes (box tables) and runs its generators
# on a sample of each image size (models/plan.py, inside write_plan).
EXCEPTIONS = {("core/configuration.py", "dataset"), ("models/plan.py", "dataset")}


def imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sarchat_bench."):
            yield node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sarchat_bench."):
                    yield alias.name.split(".")[1]


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_what_it_may(part):
    wrong = []
    for path in sorted((PACKAGE / part).rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        for target in imports(path):
            if target not in ALLOWED[part] and (name, target) not in EXCEPTIONS:
                wrong.append(f"{name} imports sarchat_bench.{target}")
    assert not wrong, wrong


def test_every_module_belongs_to_a_part():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py"]
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)
