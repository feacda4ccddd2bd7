"""What every task generator shares: the context (templates, seeded choices, skip counts) and
word helpers. The record layout is paper.records'."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sarchat_bench.core.seeds import derive_seed
from sarchat_bench.paper.geometry import format_box

# Irregular plurals; the rest take an "s". "aircraft" is its own plural.
_PLURALS = {"aircraft": "aircraft"}


def plural(category: str) -> str:
    return _PLURALS.get(category, category + "s")


def with_article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def join_words(words: list[str]) -> str:
    """"ship", "ship and tank", "aircraft, ship and tank"."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


@dataclass
class Context:
    """Per-job state: templates, settings, the RNG for template choice, and skip counters."""

    templates: dict
    seed: int
    stream: str
    categories: tuple[str, ...]
    settings: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(derive_seed(self.seed, self.stream))

    def choice(self, options):
        # random() rather than randrange(): a fifth of the cost, for a bias below 2**-47.
        return options[int(self.rng.random() * len(options))]

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def boxes_text(boxes) -> str:
    return "".join(format_box(b) for b in boxes)


def image_key(image) -> str:
    return f"{image.split}-{image.image_id}"


def group_by_category(image) -> dict[str, list]:
    """Instances per category, categories in order of first appearance."""
    groups: dict[str, list] = {}
    for inst in image.instances:
        groups.setdefault(inst.category, []).append(inst)
    return groups
