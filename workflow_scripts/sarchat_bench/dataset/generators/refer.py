"""Task 6, referring (§3.2(6), Figure 6): given a category, return every box of it with its
grid position: "{<294><358><329><427>} (bottom center){<61><448><122><503>} (bottom left)".
One sample per (image, category); single/multi: the category has one instance, or several.
"""

from __future__ import annotations

from sarchat_bench.dataset.generators.common import Context, group_by_category, image_key, plural, with_article
from sarchat_bench.paper.geometry import format_box, grid_position
from sarchat_bench.paper.records import record
from sarchat_bench.paper.tasks import TAGS


def generate(images, ctx: Context, variant=None):
    t = ctx.templates["refer"]
    for image in images:
        for category, insts in group_by_category(image).items():
            kind = "single" if len(insts) == 1 else "multi"
            if variant is not None and kind != variant:
                continue
            positions = [grid_position(inst.box, image.width, image.height) for inst in insts]
            answer = "".join(f"{format_box(inst.box)} ({pos})" for inst, pos in zip(insts, positions))
            question = TAGS["refer"] + ctx.choice(t[kind]).format(
                category=category, a_category=with_article(category), plural=plural(category), count=len(insts))
            yield record(f"refer-{image_key(image)}-{category}", "refer", f"refer_{kind}", question, answer, image,
                         {"category": category, "boxes": [list(i.box) for i in insts], "positions": positions})
