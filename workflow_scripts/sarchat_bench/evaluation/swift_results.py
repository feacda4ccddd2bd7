"""Result files of ms-swift's `swift infer`, scored as they are (a model of `mode: predictions`).

`swift infer --val_dataset results/sarchat/test/<cell>.jsonl --result_path F ...` writes one line
per test record, in the test file's order, but its loader keeps only a record's `messages` and
`images`, so no line has the record's `id`. A line, as ms-swift 4.6 writes it:

    {"response": "...", "labels": "<the reference answer>", "logprobs": null,
     "messages": [{"role": "user", "content": "<image>..."}, {"role": "assistant", "content": "..."}],
     "images": [{"bytes": null, "path": "/.../JPEGImages/test/x.jpg"}], "dataset": "..."}

Its lines are matched to the test file's records by order, and each is checked against its
record: the same question (the first user message) and the same image paths. A line that does
not fit, or more or fewer lines than the test file has records (ms-swift APPENDS to
--result_path: a second run doubles the file), stops scoring with one line naming the file, the
line and the reason.
"""

from __future__ import annotations

from pathlib import PurePath

import orjson

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import read_jsonl


def is_result_file(path) -> bool:
    """Whether a predictions file is a `swift infer` result file: its first line has a response
    and the messages, and no id."""
    with open(path, "rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        record = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(record, dict) and "id" not in record and "response" in record and "messages" in record


def _question(messages) -> str | None:
    """The first user message's text (ms-swift may add a system message before it)."""
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                return message.get("content")
    return None


def _image_paths(images) -> list | None:
    """ms-swift writes each image as {"bytes": null, "path": ...}; a plain path is taken too."""
    if not isinstance(images, list):
        return None
    return [image.get("path") if isinstance(image, dict) else image for image in images]


def same_image(written, recorded) -> bool:
    """Whether two paths name the same image file: equal, or one the end of the other
    (`/data/SARDet_100K/JPEGImages/test/x.jpg` and `JPEGImages/test/x.jpg`: a record may name
    its image relative to the dataset root, which ms-swift is given resolved)."""
    if not isinstance(written, str) or not isinstance(recorded, str):
        return False
    a, b = PurePath(written).parts, PurePath(recorded).parts
    shorter, longer = sorted((a, b), key=len)
    return bool(shorter) and longer[len(longer) - len(shorter):] == shorter


def read_result_file(path, test_path, *, bad_responses: str = "error") -> list[tuple[str, object]]:
    """(id, response) of each line of a `swift infer` result file, the id its test record's, by
    order. A response that is not text is an error naming the line, unless `bad_responses` is
    "failure" (it is then kept, and counted as a parse failure by the scorer)."""
    lines = read_jsonl(path)
    records = read_jsonl(test_path, ("id", "messages", "images"))
    if len(lines) != len(records):
        why = ("ms-swift appends to --result_path, so a second run doubles the file: delete it before running "
               "`swift infer` again" if len(lines) > len(records) else
               "a run that stopped early, or records ms-swift could not load (each line must answer one test record, "
               "in order)")
        raise InputError(path, f"a `swift infer` result file with {len(lines)} lines for the {len(records)} records "
                               f"of {test_path}: {why}")
    pairs = []
    for line_no, (line, (rid, messages, images)) in enumerate(zip(lines, records, strict=True), start=1):
        where = f"line {line_no} (test record {rid})"
        if "response" not in line or "id" in line:
            raise InputError(path, "not a `swift infer` result line (it needs a response and messages, and no id; "
                                   f"keys: {', '.join(sorted(line)) or 'none'})", record=where)
        if _question(line.get("messages")) != _question(messages):
            raise InputError(path, f"its question is not that of the test file's line {line_no}: the lines must "
                                   f"answer {test_path} in its order (was another file, or a shuffled one, given "
                                   "to swift infer?)", record=where)
        written, recorded = _image_paths(line.get("images")) or [], images or []
        if len(written) != len(recorded) or not all(map(same_image, written, recorded)):
            raise InputError(path, f"its images {written} are not those of the test file's line {line_no} "
                                   f"({recorded})", record=where)
        if not isinstance(line["response"], str) and bad_responses != "failure":
            raise InputError(path, f"response is {type(line['response']).__name__}, not text "
                                   "(scoring.bad_responses: failure scores such lines as parse failures)", record=where)
        pairs.append((rid, line["response"]))
    return pairs
