"""`python -m sarchat_bench` commands run as the rules run them, in a process of their own."""

import os
import subprocess
import sys

from support import SCRIPTS


def run_cli(*args, cwd=None, check=False) -> subprocess.CompletedProcess:
    """Run a command to its end; its output captured."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    return subprocess.run([sys.executable, "-m", "sarchat_bench", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, check=check)


def cli(*args, env=None, **kw):
    """Start a command (offline), its output and errors in one pipe."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "sarchat_bench", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
