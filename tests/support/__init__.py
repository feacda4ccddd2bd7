"""What the tests share: the repository's paths, and helpers to make data, run the commands and
the workflow, and drive a browser (the modules beside this one)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "workflow_scripts"
# config.yaml as the workflow reads it, before validation fills in the schema's defaults.
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
