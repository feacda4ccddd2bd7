"""Load and validate the task templates (task_templates.yaml beside this module).

The counts are the paper's (§3.2, Figure 2); the placeholders a template may use depend on
its group. A broken template file is an InputError naming the template, found at load time
rather than half-way through a 2M-record build.
"""

from __future__ import annotations

import functools
import hashlib
import json
import string
from pathlib import Path

import yaml

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import YAML_LOADER

DEFAULT_PATH = Path(__file__).with_name("task_templates.yaml")

# (task, group): (published count, placeholders allowed, placeholders required)
GROUPS = {
    ("classify", "questions"): (20, {"candidates"}, {"candidates"}),
    ("classify", "answers"): (20, {"categories"}, {"categories"}),
    ("describe", "questions"): (20, set(), set()),
    ("describe", "first"): (10, {"size", "category", "position"}, {"size", "category", "position"}),
    ("describe", "more"): (10, {"size", "category", "position"}, {"size", "category", "position"}),
    ("count", "questions"): (15, {"category", "plural"}, set()),
    ("grounding", "questions"): (15, set(), set()),
    ("identify", "question"): (20, {"box"}, {"box"}),
    ("identify", "answer"): (20, {"size", "category", "position", "shape"}, {"size", "category", "position", "shape"}),
    ("refer", "single"): (15, {"category", "a_category"}, set()),
    ("refer", "multi"): (15, {"category", "plural", "count"}, set()),
}
INTROS = (("describe", "intro"), ("grounding", "intro"))


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _group(data: dict, task: str, group: str, path: Path) -> list[str]:
    section = data.get(task)
    if task == "identify":
        if not isinstance(section, list) or not all(isinstance(p, dict) for p in section):
            raise InputError(path, "identify must be a list of {question, answer} pairs", record=task)
        return [p.get(group) for p in section]
    if not isinstance(section, dict) or not isinstance(section.get(group), list):
        raise InputError(path, f"missing list '{task}.{group}'", record=task)
    return section[group]


@functools.lru_cache(maxsize=8)
def load_templates(path: str | Path = DEFAULT_PATH) -> dict:
    """Return {task: {group: [templates]}} (identify: {"pairs": [(question, answer)]})."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read templates ({err})") from None
    if not isinstance(data, dict):
        raise InputError(path, "top level must be a mapping of task names")
    out: dict[str, dict] = {}
    for (task, group), (count, allowed, required) in GROUPS.items():
        items = _group(data, task, group, path)
        if len(items) != count:
            raise InputError(path, f"{len(items)} templates, the paper has {count}", record=f"{task}.{group}")
        for i, text in enumerate(items):
            record = f"{task}.{group}[{i}]"
            if not isinstance(text, str) or not text.strip():
                raise InputError(path, "template must be a non-empty string", record)
            try:
                used = placeholders(text)
            except ValueError as err:
                raise InputError(path, f"bad format string ({err})", record) from None
            if used - allowed:
                raise InputError(path, f"unknown placeholder(s) {sorted(used - allowed)}", record)
            if required - used:
                raise InputError(path, f"missing placeholder(s) {sorted(required - used)}", record)
        if len(set(items)) != len(items):
            raise InputError(path, "duplicated template", record=f"{task}.{group}")
        out.setdefault(task, {})[group] = tuple(items)
    for task, key in INTROS:
        intro = data.get(task, {}).get(key)
        if not isinstance(intro, str):
            raise InputError(path, f"missing string '{task}.{key}'", record=task)
        out[task][key] = intro
    out["identify"]["pairs"] = tuple(zip(out["identify"]["question"], out["identify"]["answer"]))
    return out


def template_count(templates: dict, task: str) -> int:
    """Total templates of a task, as the paper counts them."""
    return sum(len(templates[t][g]) for (t, g) in GROUPS if t == task)


def templates_digest(templates: dict, tasks) -> str:
    """A short digest of the templates `tasks` use: a job's params carry it, so that editing one
    task's templates reruns that task's files and nothing else."""
    used = {task: templates[task] for task in tasks}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()[:16]
