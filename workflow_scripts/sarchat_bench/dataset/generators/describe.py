"""Task 2, fine-grained description (§3.2(2)) with its quality filters.

Images smaller than `min_image_side` on either side are not described; targets whose area
ratio is below `min_area_ratio` or whose aspect ratio exceeds `max_aspect_ratio`:1 either way
are left out of the description. An image with no target left yields no sample (counted).
"""

from __future__ import annotations

from sarchat_bench.dataset.generators.common import Context, image_key
from sarchat_bench.paper.geometry import area_ratio, aspect_ratio, describe_size, grid_position
from sarchat_bench.paper.records import record

DEFAULTS = {"min_image_side": 224, "min_area_ratio": 0.01, "max_aspect_ratio": 10.0}


def describable(image, settings: dict) -> list[tuple]:
    """The targets §3.2(2) keeps for the description of `image`, each with its area ratio
    (the image's own size filter is the caller's: it counts that skip apart)."""
    w, h = image.width, image.height
    min_ratio, max_ar = settings["min_area_ratio"], settings["max_aspect_ratio"]
    kept = []
    for inst in image.instances:
        ratio = area_ratio(inst.box, w, h)
        ar = aspect_ratio(inst.box)
        if ratio >= min_ratio and 1.0 / max_ar <= ar <= max_ar:
            kept.append((inst, ratio))
    return kept


def generate(images, ctx: Context, variant=None):
    settings = {**DEFAULTS, **ctx.settings}
    t = ctx.templates["describe"]
    for image in images:
        if min(image.width, image.height) < settings["min_image_side"]:
            ctx.skip("image_below_min_side")
            continue
        targets = describable(image, settings)
        if not targets:
            ctx.skip("no_target_passes_filters")
            continue
        phrases, truth_targets = [], []
        for i, (inst, ratio) in enumerate(targets):
            size = describe_size(ratio)
            position = grid_position(inst.box, image.width, image.height)
            template = ctx.choice(t["first"] if i == 0 else t["more"])
            phrases.append(template.format(size=size, category=inst.category, position=position))
            truth_targets.append({"category": inst.category, "position": position, "size": size,
                                  "box": list(inst.box)})
        answer = t["intro"] + ". ".join(phrases) + "."
        yield record(f"describe-{image_key(image)}", "describe", "describe", ctx.choice(t["questions"]),
                     answer, image, {"targets": truth_targets})
