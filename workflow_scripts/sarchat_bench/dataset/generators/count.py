"""Task 3, instance counting (§3.2(3)): one sample per (image, category); the answer gives
the count and every box (Appendix 1.4, Figure 6: "There are 4 instances. {..}{..}{..}{..}")."""

from __future__ import annotations

from sarchat_bench.dataset.generators.common import Context, boxes_text, group_by_category, image_key, plural
from sarchat_bench.paper.records import record
from sarchat_bench.paper.tasks import TAGS


def answer_text(boxes) -> str:
    n = len(boxes)
    head = "There is 1 instance." if n == 1 else f"There are {n} instances."
    return f"{head} {boxes_text(boxes)}"


def generate(images, ctx: Context, variant=None):
    questions = ctx.templates["count"]["questions"]
    for image in images:
        for category, insts in group_by_category(image).items():
            boxes = [inst.box for inst in insts]
            question = TAGS["count"] + ctx.choice(questions).format(category=category, plural=plural(category))
            yield record(f"count-{image_key(image)}-{category}", "count", "count", question, answer_text(boxes),
                         image, {"category": category, "count": len(boxes), "boxes": [list(b) for b in boxes]})
