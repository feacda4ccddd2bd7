#!/usr/bin/env python3
"""A stand-in for one SLURM command (named by argv[0]) for the profile tests: it records its
arguments to $SLURM_STANDIN_LOG and answers as the real command would, with every job FAILED
so that a run ends without executing anything."""
import json
import os
import sys
from pathlib import Path

name = Path(sys.argv[0]).name
log = Path(os.environ["SLURM_STANDIN_LOG"])
with log.open("a") as out:
    out.write(json.dumps([name, *sys.argv[1:]]) + "\n")
if name == "sbatch":
    submitted = sum(1 for line in log.read_text().splitlines() if json.loads(line)[0] == "sbatch")
    print(1000 + submitted)
elif name == "sacct":
    submitted = sum(1 for line in log.read_text().splitlines() if json.loads(line)[0] == "sbatch")
    for i in range(1, submitted + 1):
        print(f"{1000 + i}|FAILED")
elif name in ("sacctmgr", "sshare"):
    print("sarchat")
elif name == "scontrol":
    print("MinJobAge               = 300 sec")
elif name == "sinfo":
    print("gpu*")
