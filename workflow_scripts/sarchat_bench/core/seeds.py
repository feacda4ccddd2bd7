"""Seeds of independent random streams, derived from one seed and a stream's name."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *parts: str) -> int:
    """A stable per-stream seed (Python's hash() is salted per process, so not usable)."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big")
