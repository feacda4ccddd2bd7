"""The record contract: what every stage reads of a SARChat record.

A record is an ms-swift record (`messages`, `images`) plus our metadata: `id`, `task`, `cell`
and `truth`, the structured ground truth as JSON text. The dataset stage writes records; the
evaluation and report stages read them through this module only.
"""

from __future__ import annotations

import orjson


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
