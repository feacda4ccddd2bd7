"""What the paper printed: its tables (printed_tables.yaml, typos that the paper itself disproves
corrected: docs/decisions.md) and its 16 models."""

from __future__ import annotations

from pathlib import Path

import yaml

from sarchat_bench.core.io import YAML_LOADER

PAPER = yaml.load((Path(__file__).with_name("printed_tables.yaml")).read_text(), Loader=YAML_LOADER)

# The paper's 16 models (§5.2 and the authors' repository), in the order of Table 3.
PAPER_MODELS = ("internvl2.5-8b", "internvl2.5-4b", "internvl2.5-2b", "internvl2.5-1b", "deepseek-vl-7b",
                "deepseek-vl-1.3b", "phi3.5-vision", "glm-edge-v-2b", "glm-edge-v-5b", "mplug-owl3-7b",
                "mplug-owl3-2b", "mplug-owl3-1b", "qwen2-vl-7b", "qwen2-vl-2b", "llava1.5-7b", "yi-vl-6b")
