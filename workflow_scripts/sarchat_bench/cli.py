"""Command-line entry points; each Snakemake rule calls one of them. Every stage declares its own
commands beside its code (dataset/, models/, evaluation/, report/: commands.py); this module
assembles them.

    python -m sarchat_bench --help
    python -m sarchat_bench <command> --help
"""

from __future__ import annotations

import argparse
import logging
import sys

from sarchat_bench.core.errors import InputError, SarchatError
from sarchat_bench.dataset.commands import COMMANDS as DATASET
from sarchat_bench.evaluation.commands import COMMANDS as EVALUATION
from sarchat_bench.models.commands import COMMANDS as MODELS
from sarchat_bench.report.commands import COMMANDS as REPORT

log = logging.getLogger("sarchat_bench")
STAGES = {"dataset": DATASET, "models": MODELS, "evaluation": EVALUATION, "report": REPORT}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sarchat_bench", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for commands in STAGES.values():
        for c in commands:
            p = sub.add_parser(c.name, help=c.help, description=c.help,
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
            for flags, options in c.arguments:
                p.add_argument(*flags, **options)
            p.set_defaults(func=c.handler)
    return parser


def die_with_parent() -> None:
    """Be killed when the process that started this one dies (Linux): a job whose shell was
    killed must not go on and rename its outputs into place after Snakemake saw it fail
    (tests/core/test_io.py::test_a_job_dies_with_its_shell). prctl has no binding in os."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the job's own process group handling applies
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    die_with_parent()
    # Our own handler: ms-swift and transformers reconfigure the root logger when imported.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(args.log_level)
    log.propagate = False
    log.disabled = False
    try:
        args.func(args)
    except SarchatError as err:  # our own failures get one line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, InputError) else 1
    return 0
