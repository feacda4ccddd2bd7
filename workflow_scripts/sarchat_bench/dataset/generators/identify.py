"""Task 5, cross-modal identification (§3.2(5)): given a box, name the category, its grid
position, one of five size levels and one of three shapes. Each instance yields
`samples_per_instance` samples, each with a different template pair (Table 5: about 7.2
samples per box). Single/multi: the image holds one object, or several (Appendix 2).
"""

from __future__ import annotations

from sarchat_bench.dataset.generators.common import Context, image_key
from sarchat_bench.paper.geometry import area_ratio, aspect_ratio, format_box, grid_position, identify_size, shape
from sarchat_bench.paper.records import record, truth_text
from sarchat_bench.paper.tasks import TAGS

DEFAULTS = {"samples_per_instance": 7}
ATTRIBUTES = ("category", "position", "size", "shape")


def generate(images, ctx: Context, variant=None):
    pairs = ctx.templates["identify"]["pairs"]
    n = {**DEFAULTS, **ctx.settings}["samples_per_instance"]
    # Questions split around their one {box}: 1.6M records concatenate rather than format.
    questions = [tuple(TAGS["identify"] + part if i == 0 else part for i, part in enumerate(q.split("{box}", 1)))
                 for q, _ in pairs]
    # An answer depends only on the template and four words (at most 6 x 9 x 5 x 3 word sets),
    # so each set's answers are formatted once and reused.
    answers: dict[tuple, list[str]] = {}
    images = [im for im in images if variant is None or _variant(im) == variant]
    choices = iter(_template_choices(ctx, sum(len(im.instances) for im in images), len(pairs), n))
    for image in images:
        kind = _variant(image)
        cell = f"identify_{kind}"
        key = image_key(image)
        w, h = image.width, image.height
        images_field = [image.path]
        for inst in image.instances:
            box = inst.box
            words = (inst.category, grid_position(box, w, h), identify_size(area_ratio(box, w, h)),
                     shape(aspect_ratio(box)))
            attrs = dict(zip(ATTRIBUTES, words))
            texts = answers.get(words)
            if texts is None:
                texts = answers[words] = [answer.format_map(attrs) for _, answer in pairs]
            truth = truth_text({**attrs, "box": list(box)}, image)
            box_text = format_box(box)
            prefix = f"identify-{key}-{inst.ann_id}-"
            for k, t in enumerate(next(choices)):
                before, after = questions[t]
                yield record(f"{prefix}{k}", "identify", cell, before + box_text + after, texts[t], image, truth,
                             images_field)


def _variant(image) -> str:
    return "single" if len(image.instances) == 1 else "multi"


def _template_choices(ctx: Context, instances: int, templates: int, per_instance: int) -> list[list[int]]:
    """Template indices for every instance, drawn in one go (a per-instance random.sample
    costs more than the rest of the record). Distinct within an instance while there are
    enough templates."""
    import numpy as np  # here, not at the top: the other generator jobs do without it (35 ms each)

    rng = np.random.default_rng(ctx.rng.getrandbits(64))
    if per_instance <= templates:
        return np.argsort(rng.random((instances, templates)), axis=1)[:, :per_instance].tolist()
    return rng.integers(0, templates, size=(instances, per_instance)).tolist()
