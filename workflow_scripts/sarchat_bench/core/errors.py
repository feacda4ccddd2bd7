"""The errors a job reports as one line ("error: ..."), not as a traceback: bad input, bad
settings, and failures of the tools it runs, each saying what to do."""

from __future__ import annotations

import os


class SarchatError(Exception):
    """A failure the user can act on: `python -m sarchat_bench` prints its message on one line."""


class InputError(SarchatError, ValueError):
    """Bad input data: the message names the file, the record and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str, record: str | None = None):
        self.path = str(path)
        self.record = record
        self.reason = reason
        where = f"{self.path}" + (f", record {record}" if record is not None else "")
        super().__init__(f"{where}: {reason}")
