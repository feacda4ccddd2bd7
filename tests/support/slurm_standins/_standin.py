#!/usr/bin/env python3
"""A stand-in for one SLURM command (named by argv[0]), for the one profile test that the real
test cluster cannot run: the paper's 16 training jobs ask for more than its node has. It
records its arguments to $SLURM_STANDIN_LOG and answers as the real command would, with every
job FAILED so that a run ends without executing anything."""
import json
import os
import sys
from pathlib import Path

name = Path(sys.argv[0]).name
log = Path(os.environ["SLURM_STANDIN_LOG"])
with log.open("a") as out:
    out.write(json.dumps([name, *sys.argv[1:]]) + "\n")
submitted = sum(1 for line in log.read_text().splitlines()
                if json.loads(line)[0] == "sbatch" and "--test-only" not in line)
if name == "sbatch" and "--test-only" in sys.argv:
    print("sbatch: Job 1 to start at now using 16 processors on nodes gpu1 in partition gpu", file=sys.stderr)
elif name == "sbatch":
    print(1000 + submitted)
elif name == "sacct":
    for i in range(1, submitted + 1):
        print(f"{1000 + i}|FAILED")
elif name in ("sacctmgr", "sshare"):
    print("sarchat")
elif name == "scontrol":
    print("MinJobAge               = 300 sec")
elif name == "sinfo":
    print("gpu*")
