"""Check every record of a built dataset against the geometry rules (issue #2, "done when" 2).

The check re-derives each word from the ground-truth box: boxes parse and lie inside the
image, counts in answers equal the number of boxes, position/size/shape words agree with the
rules of paper.geometry, and description targets pass the §3.2(2) filters.
"""

from __future__ import annotations

import re
from collections import Counter

from sarchat_bench.dataset.generators.describe import DEFAULTS as DESCRIBE_DEFAULTS
from sarchat_bench.paper import geometry as g
from sarchat_bench.paper.records import truth_of
from sarchat_bench.paper.tasks import TAGS

BOX_RE = re.compile(r"\{<(-?\d+)><(-?\d+)><(-?\d+)><(-?\d+)>\}")


def _boxes(text: str) -> list[list[int]]:
    return [[int(v) for v in m.groups()] for m in BOX_RE.finditer(text)]


def check_record(rec: dict, describe_settings: dict | None = None) -> list[str]:
    """Return the list of problems with one record (empty when it is valid)."""
    problems = []
    truth, task = truth_of(rec), rec["task"]
    w, h = truth["width"], truth["height"]
    question = rec["messages"][0]["content"]
    answer = rec["messages"][1]["content"]
    if not question.startswith("<image>"):
        problems.append("question lacks the <image> tag")
    tag = TAGS.get(task, "").strip()
    if tag and not question[len("<image>"):].startswith(tag):
        problems.append(f"question lacks the {tag} tag")
    for box in _boxes(answer) + _boxes(question):
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            problems.append(f"box {box} is not inside the {w}x{h} image")

    def expect(word_kind, actual, expected):
        if actual != expected:
            problems.append(f"{word_kind} '{actual}' but the geometry gives '{expected}'")

    if task == "count":
        boxes = _boxes(answer)
        m = re.match(r"There (?:are|is) (\d+) instances?\.", answer)
        if not m or int(m.group(1)) != len(boxes) or len(boxes) != truth["count"] or boxes != truth["boxes"]:
            problems.append("count in the answer does not equal the number of boxes")
    elif task == "identify":
        box = _boxes(question)
        if box != [truth["box"]]:
            problems.append("question box differs from the truth box")
        b = truth["box"]
        expect("position", truth["position"], g.grid_position(b, w, h))
        expect("size", truth["size"], g.identify_size(g.area_ratio(b, w, h)))
        expect("shape", truth["shape"], g.shape(g.aspect_ratio(b)))
        for word in (truth["position"], truth["size"], truth["shape"], truth["category"]):
            if word not in answer:
                problems.append(f"answer does not mention '{word}'")
    elif task == "refer":
        if _boxes(answer) != truth["boxes"]:
            problems.append("answer boxes differ from the truth boxes")
        for b, pos in zip(truth["boxes"], truth["positions"]):
            expect("position", pos, g.grid_position(b, w, h))
    elif task == "grounding":
        boxes = [i["box"] for i in truth["instances"]]
        if sorted(_boxes(answer)) != sorted(boxes):
            problems.append("answer boxes differ from the truth boxes")
        for inst in truth["instances"]:
            expect("position", inst["position"], g.grid_position(inst["box"], w, h))
        cells = "multi" if len(boxes) > 1 else "single"
        if rec["cell"] != f"grounding_{cells}":
            problems.append(f"cell {rec['cell']} but the image has {len(boxes)} object(s)")
    elif task == "describe":
        s = {**DESCRIBE_DEFAULTS, **(describe_settings or {})}
        if min(w, h) < s["min_image_side"]:
            problems.append(f"image {w}x{h} is below the {s['min_image_side']} px filter")
        for t in truth["targets"]:
            ratio, ar = g.area_ratio(t["box"], w, h), g.aspect_ratio(t["box"])
            if ratio < s["min_area_ratio"]:
                problems.append(f"target area ratio {ratio:.4f} is below the filter")
            if ar > s["max_aspect_ratio"] or ar < 1 / s["max_aspect_ratio"]:
                problems.append(f"target aspect ratio {ar:.2f} is beyond the filter")
            expect("position", t["position"], g.grid_position(t["box"], w, h))
            expect("size", t["size"], g.describe_size(ratio))
            if f"{t['size']} {t['category']}" not in answer:
                problems.append(f"answer lacks '{t['size']} {t['category']}'")
    elif task == "classify":
        for cat in truth["categories"]:
            if cat not in answer:
                problems.append(f"answer does not name '{cat}'")
    return problems


def check_records(records, describe_settings=None, max_examples: int = 20) -> dict:
    counts, examples, n, ids = Counter(), [], 0, set()
    for rec in records:
        n += 1
        if rec["id"] in ids:
            counts["duplicated id"] += 1
            examples.append(f"{rec['id']}: duplicated id")
        ids.add(rec["id"])
        for problem in check_record(rec, describe_settings):
            counts[problem.split(" '")[0]] += 1
            if len(examples) < max_examples:
                examples.append(f"{rec['id']}: {problem}")
    return {"records": n, "invalid": sum(counts.values()), "problems": dict(counts), "examples": examples}
