"""The paper's tasks, test cells and categories (§3.1.2, §3.2, Appendix 2): names every stage
uses, defined once."""

from __future__ import annotations

# The six tasks, in the order of Table 5.
TASKS = ("classify", "describe", "count", "grounding", "identify", "refer")
# SARDet-100K's categories (Table 1).
CATEGORIES = ("ship", "aircraft", "car", "tank", "bridge", "harbor")
# The tag a task's questions start with (Figure 6).
TAGS = {"count": "[count] ", "grounding": "[grounding] ", "identify": "[identify] ", "refer": "[refer] "}

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
