"""What every task generator shares: the context, the record layout and word helpers."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import orjson

from ..geometry import format_box

# Irregular plurals; the rest take an "s". "aircraft" is its own plural.
_PLURALS = {"aircraft": "aircraft"}
TAGS = {"count": "[count] ", "grounding": "[grounding] ", "identify": "[identify] ", "refer": "[refer] "}


def plural(category: str) -> str:
    return _PLURALS.get(category, category + "s")


def with_article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def join_words(words: list[str]) -> str:
    """"ship", "ship and tank", "aircraft, ship and tank"."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def derive_seed(seed: int, *parts: str) -> int:
    """A stable per-stream seed (Python's hash() is salted per process, so not usable)."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big")


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


def truth_text(truth: dict, image) -> str:
    """The ground truth as JSON text, with the image size.

    It is stored as a string because its shape differs per task. Hugging Face `datasets`,
    which ms-swift loads training files with, infers one schema per block of a file and
    cannot cast between different structs. A string column keeps one schema for the whole
    training mix. Read it back with `truth_of`.
    """
    truth["width"] = image.width
    truth["height"] = image.height
    return orjson.dumps(truth).decode()


def truth_of(rec: dict) -> dict:
    """The structured ground truth of a dataset record."""
    return parse_truth(rec["truth"])


def parse_truth(text: str) -> dict:
    """The structured ground truth of a record's `truth` text."""
    return orjson.loads(text)


def record(rid: str, task: str, cell: str, question: str, answer: str, image, truth: dict | str,
           images: list | None = None) -> dict:
    """One ms-swift record plus our metadata. Ground truth lives in `truth` (never `objects`,
    which ms-swift would treat as grounding data and rescale); pass it as a dict, or as the
    text of `truth_text` when several records share it. Records may share `images` lists."""
    return {
        "id": rid,
        "task": task,
        "cell": cell,
        "messages": [
            {"role": "user", "content": "<image>" + question},
            {"role": "assistant", "content": answer},
        ],
        "images": images or [image.path],
        "truth": truth if isinstance(truth, str) else truth_text(truth, image),
    }


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
