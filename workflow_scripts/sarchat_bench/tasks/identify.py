"""Task 5, cross-modal identification (§3.2(5)): given a box, name the category, its grid
position, one of five size levels and one of three shapes. Each instance yields
`samples_per_instance` samples, each with a different template pair (Table 5: about 7.2
samples per box). Single/multi: the image holds one object, or several (Appendix 2).
"""

from __future__ import annotations

from ..geometry import area_ratio, aspect_ratio, format_box, grid_position, identify_size, shape
from .common import TAGS, Context, image_key, record

DEFAULTS = {"samples_per_instance": 7}


def generate(images, ctx: Context, variant=None):
    pairs = ctx.templates["identify"]["pairs"]
    n = {**DEFAULTS, **ctx.settings}["samples_per_instance"]
    tag = TAGS["identify"]
    rng = ctx.rng
    indices = range(len(pairs))
    for image in images:
        kind = "single" if len(image.instances) == 1 else "multi"
        if variant is not None and kind != variant:
            continue
        cell = f"identify_{kind}"
        key = image_key(image)
        w, h = image.width, image.height
        for inst in image.instances:
            box = inst.box
            attrs = {
                "category": inst.category,
                "position": grid_position(box, w, h),
                "size": identify_size(area_ratio(box, w, h)),
                "shape": shape(aspect_ratio(box)),
            }
            box_text = format_box(box)
            # Distinct templates per instance while there are enough of them.
            chosen = rng.sample(indices, n) if n <= len(pairs) else [rng.randrange(len(pairs)) for _ in range(n)]
            for k, t in enumerate(chosen):
                question, answer = pairs[t]
                yield record(f"identify-{key}-{inst.ann_id}-{k}", "identify", cell,
                             tag + question.format(box=box_text), answer.format(**attrs), image,
                             {**attrs, "box": list(box)})
