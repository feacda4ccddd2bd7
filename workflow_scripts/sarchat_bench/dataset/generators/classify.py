"""Task 1, classification (§3.2(1)): one sample per image; question and answer templates
are drawn independently ("random template combinations"). Several categories are listed in
the candidate order, joined with "and" (the paper's "standardized notation")."""

from __future__ import annotations

from sarchat_bench.dataset.generators.common import Context, image_key, join_words
from sarchat_bench.paper.records import record


def generate(images, ctx: Context, variant=None):
    questions = ctx.templates["classify"]["questions"]
    answers = ctx.templates["classify"]["answers"]
    ordered = sorted(ctx.categories)
    candidates = ", ".join(ordered)
    for image in images:
        present = {inst.category for inst in image.instances}
        cats = [c for c in ordered if c in present]
        question = ctx.choice(questions).format(candidates=candidates)
        answer = ctx.choice(answers).format(categories=join_words(cats))
        yield record(f"classify-{image_key(image)}", "classify", "classify", question, answer, image,
                     {"categories": cats})
