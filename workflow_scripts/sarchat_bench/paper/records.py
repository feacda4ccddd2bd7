"""The record contract: what every stage reads of a SARChat record.

A record is an ms-swift record (`messages`, `images`) plus our metadata: `id`, `task`, `cell`
and `truth`, the structured ground truth as JSON text. The dataset stage writes records; the
evaluation and report stages read them through this module only.

A record names its images relative to the SARDet-100K root (`JPEGImages/test/0000001.jpg`), so
that a built dataset works wherever that root is mounted: every reader resolves them against
the image root it is given (`image_file`), ms-swift against `ROOT_IMAGE_DIR` (docs/decisions.md,
D20). Datasets built by 0.7.0 or earlier name them by absolute path, which resolve to themselves.
"""

from __future__ import annotations

import os

import orjson

from sarchat_bench.core.errors import InputError

# ms-swift resolves a relative image path against this environment variable; our readers take
# the same variable as the default of their --image-root, so that one setting serves both.
IMAGE_ROOT_ENV = "ROOT_IMAGE_DIR"


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


def written_size(rec: dict) -> tuple[int, int] | None:
    """The image size the dataset build writes into a one-image record's truth; None where the
    record has no such size (another tool's file, several images)."""
    truth = rec.get("truth")
    if len(rec.get("images") or ()) != 1 or not truth:
        return None
    truth = parse_truth(truth) if isinstance(truth, str) else truth
    return (int(truth["width"]), int(truth["height"])) if "width" in truth and "height" in truth else None


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


def image_file(name: str, image_root: str | os.PathLike | None, source: str | os.PathLike = "",
               record_id: str | None = None) -> str:
    """The file a record's image `name` is: below `image_root` (the SARDet-100K root the records
    are resolved against; without one, $ROOT_IMAGE_DIR, as ms-swift reads it) when the name is
    relative, the name itself when it is absolute. A relative name without either is an
    InputError naming `source` and the record."""
    if os.path.isabs(name):
        return name
    image_root = image_root or os.environ.get(IMAGE_ROOT_ENV)
    if not image_root:
        raise InputError(source, f"image {name!r} is relative to the SARDet-100K root, but no image root was given "
                                 f"(config image_root, --image-root or ${IMAGE_ROOT_ENV})", record_id)
    return os.path.join(image_root, name)


def with_image_files(records: list[dict], image_root: str | os.PathLike | None,
                     source: str | os.PathLike = "") -> list[dict]:
    """The records with their `images` resolved to files (image_file); the records are not changed."""
    return [{**rec, "images": [image_file(name, image_root, source, rec.get("id")) for name in rec["images"]]}
            for rec in records]
