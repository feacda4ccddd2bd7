"""The six SARChat tasks. Each module exposes `generate(images, ctx, variant)`.

`variant` is None for the training mix (all records) or the test cell's variant
("single"/"multi") for tasks that have them (Appendix 2).
"""

from __future__ import annotations

from . import classify, count, describe, grounding, identify, refer

GENERATORS = {
    "classify": classify.generate,
    "describe": describe.generate,
    "count": count.generate,
    "grounding": grounding.generate,
    "identify": identify.generate,
    "refer": refer.generate,
}
TASKS = tuple(GENERATORS)

# The nine test files of Table 3: cell -> (task, variant).
CELLS = {
    "classify": ("classify", None),
    "describe": ("describe", None),
    "count": ("count", None),
    "grounding_single": ("grounding", "single"),
    "grounding_multi": ("grounding", "multi"),
    "identify_single": ("identify", "single"),
    "identify_multi": ("identify", "multi"),
    "refer_single": ("refer", "single"),
    "refer_multi": ("refer", "multi"),
}
