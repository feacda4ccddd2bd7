"""Task 4, spatial grounding (§3.2(4), Appendix 1.4, Figure 6).

Objects are grouped per category (in order of first appearance): "There is a ship in the top
right portion {..}." or "There are 4 ships: one in the bottom center portion {..}, one in ...".
With two or more categories, each pair of groups gets a relation sentence from the groups'
centroids: distance ("near" within (W+H)/8, else "far from") and one of eight directions,
e.g. "The ship is far from the harbor, to the upper left of it." Single/multi (Appendix 2):
an image with exactly one object is "single", otherwise "multi".
"""

from __future__ import annotations

from itertools import combinations

from sarchat_bench.dataset.generators.common import Context, group_by_category, image_key, plural, with_article
from sarchat_bench.paper.geometry import centroid, direction_word, distance_word, format_box, grid_position
from sarchat_bench.paper.records import record
from sarchat_bench.paper.tasks import TAGS


def variant_of(image) -> str:
    return "single" if len(image.instances) == 1 else "multi"


def describe_groups(image):
    """Answer body and structured truth for an image's objects and relations."""
    groups = group_by_category(image)
    sentences, instances = [], []
    for category, insts in groups.items():
        parts = []
        for inst in insts:
            position = grid_position(inst.box, image.width, image.height)
            instances.append({"category": category, "box": list(inst.box), "position": position})
            parts.append((position, format_box(inst.box)))
        if len(parts) == 1:
            position, box = parts[0]
            sentences.append(f"There is {with_article(category)} in the {position} portion {box}.")
        else:
            listed = ", ".join(f"one in the {position} portion {box}" for position, box in parts)
            sentences.append(f"There are {len(parts)} {plural(category)}: {listed}.")
    relations = []
    # Most images hold one category: centroids only where there is a pair to relate.
    centers = {c: centroid([inst.box for inst in insts]) for c, insts in groups.items()} if len(groups) > 1 else {}
    for subject, obj in combinations(groups, 2):
        distance = distance_word(centers[subject], centers[obj], image.width, image.height)
        direction = direction_word(centers[subject], centers[obj])
        relations.append({"subject": subject, "object": obj, "distance": distance, "direction": direction})
        sentences.append(f"The {subject} is {distance} the {obj}, {direction} it.")
    return " ".join(sentences), {"instances": instances, "relations": relations}


def generate(images, ctx: Context, variant=None):
    questions = ctx.templates["grounding"]["questions"]
    intro = ctx.templates["grounding"]["intro"]
    for image in images:
        kind = variant_of(image)
        if variant is not None and kind != variant:
            continue
        body, truth = describe_groups(image)
        question = TAGS["grounding"] + ctx.choice(questions)
        yield record(f"grounding-{image_key(image)}", "grounding", f"grounding_{kind}", question, intro + body,
                     image, truth)
