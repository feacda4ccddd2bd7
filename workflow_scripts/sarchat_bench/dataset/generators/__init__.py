"""The generators of the six SARChat tasks (paper.tasks names them). Each module exposes
`generate(images, ctx, variant)`.

`variant` is None for the training mix (all records) or the test cell's variant
("single"/"multi") for tasks that have them (Appendix 2).
"""

from __future__ import annotations

from sarchat_bench.dataset.generators import classify, count, describe, grounding, identify, refer
from sarchat_bench.paper.tasks import TASKS

GENERATORS = {
    "classify": classify.generate,
    "describe": describe.generate,
    "count": count.generate,
    "grounding": grounding.generate,
    "identify": identify.generate,
    "refer": refer.generate,
}
assert tuple(GENERATORS) == TASKS, "one generator per task, in the paper's order"
