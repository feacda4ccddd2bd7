"""Templates are data with the paper's counts, and every template is reachable."""

import re

import pytest
import yaml
from sarchat_bench.core.errors import InputError
from sarchat_bench.dataset.annotations import Image, Instance
from sarchat_bench.dataset.generators import GENERATORS
from sarchat_bench.dataset.generators.common import Context
from sarchat_bench.dataset.templates import DEFAULT_PATH, GROUPS, load_templates, template_count

PAPER_COUNTS = {"classify": 40, "describe": 40, "count": 15, "grounding": 15, "identify": 40, "refer": 30}


def test_published_counts():
    t = load_templates()
    assert len(t["classify"]["questions"]) == 20 and len(t["classify"]["answers"]) == 20
    assert len(t["describe"]["questions"]) + len(t["describe"]["first"]) + len(t["describe"]["more"]) == 40
    assert len(t["count"]["questions"]) == 15
    assert len(t["grounding"]["questions"]) == 15
    assert len(t["identify"]["pairs"]) == 20
    assert len(t["refer"]["single"]) + len(t["refer"]["multi"]) == 30
    assert {task: template_count(t, task) for task in PAPER_COUNTS} == PAPER_COUNTS


def _broken(tmp_path, mutate):
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    mutate(data)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["count"]["questions"].pop(), "14 templates, the paper has 15"),
    (lambda d: d["count"]["questions"].__setitem__(0, "How many {colour}?"), "unknown placeholder"),
    (lambda d: d["identify"][0].__setitem__("question", "What is here?"), "missing placeholder"),
    (lambda d: d["grounding"]["questions"].__setitem__(1, d["grounding"]["questions"][0]), "duplicated template"),
    (lambda d: d["classify"]["answers"].__setitem__(0, "It is {categories"), "bad format string"),
])
def test_broken_template_file_names_the_template(tmp_path, mutate, message):
    path = _broken(tmp_path, mutate)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        load_templates(path)
    assert str(path) in str(err.value)


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.S)


def _images(n):
    cats = ["ship", "aircraft", "car", "tank", "bridge", "harbor"]
    out = []
    for i in range(n):
        insts = [Instance(10 * i + k, cats[(i + k // 2) % 6], (20 + 60 * k, 30, 70 + 60 * k, 90))
                 for k in range(1 + i % 3)]
        out.append(Image(i, "train", f"{i}.jpg", 400, 300, insts))
    return out


def test_every_template_is_used():
    templates = load_templates()
    texts = []
    for task, gen in GENERATORS.items():
        categories = ("ship", "aircraft", "car", "tank", "bridge", "harbor")
        ctx = Context(templates, seed=3, stream=task, categories=categories)
        for rec in gen(_images(400), ctx):
            texts.append(rec["messages"][0]["content"] + "\n" + rec["messages"][1]["content"])
    blob = "\n".join(texts)
    unused = []
    for (task, group) in GROUPS:
        for template in templates[task][group]:
            if not _pattern(template).search(blob):
                unused.append(f"{task}.{group}: {template}")
    assert unused == []
