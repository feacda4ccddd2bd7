"""The real Snakemake workflow, run in a scratch working directory as a user runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

from support import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir, *args, check=True, extra_config: str | None = None, env: dict | None = None):
    """Run Snakemake on the repo's workflow in `workdir`; `extra_config` is YAML merged over config.yaml."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    configs = [str(REPO / "config.yaml")]
    if extra_config:
        extra = Path(workdir) / "extra_config.yaml"
        extra.write_text(extra_config)
        configs.append(str(extra))
    cmd = [*SNAKEMAKE, *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", *configs]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def assert_logs_are_clean(logs):
    """No job's log holds a logging error or a traceback: a malformed log call ("--- Logging error
    ---") or an exception that escaped the one-line error rule fails the suite."""
    for log in logs.rglob("*.log"):
        text = log.read_text(errors="replace")
        assert "--- Logging error ---" not in text and "Traceback (most recent call last)" not in text, \
            f"{log}:\n{text[-3000:]}"


def planned_rules(workdir, *args, **kw):
    """Rules a dry run would execute, with their job counts."""
    out = snakemake(workdir, *args, "--dry-run", **kw).stdout
    table = re.search(r"Job stats:\n(.*?)\n\n", out, re.S)
    if table is None:
        return {}
    rows = [line.split() for line in table.group(1).splitlines()[2:]]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[0] != "total"}
