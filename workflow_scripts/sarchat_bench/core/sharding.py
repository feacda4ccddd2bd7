"""Shards: the i-th of n contiguous parts of a sequence (training images, test records).
The parts, concatenated in order, give back the whole sequence once."""

from __future__ import annotations

import functools
import math
import os


def shard_range(total: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Contiguous slice [start, stop) of `total` items for shard (index, count), index from 1."""
    index, count = shard
    if not 1 <= index <= count:
        raise ValueError(f"shard {index} of {count} does not exist")
    return (index - 1) * total // count, index * total // count


def shard_range_by_group(keys: list, shard: tuple[int, int]) -> tuple[int, int]:
    """Like shard_range, but a run of equal adjacent keys (one image's records) is never cut:
    each boundary moves forward to where the key changes. The shards still cover the items once."""
    total = len(keys)
    start, stop = shard_range(total, shard)

    def at_group_start(i: int) -> int:
        while 0 < i < total and keys[i] == keys[i - 1]:
            i += 1
        return i

    return at_group_start(start), at_group_start(stop)


def shard_labels(count: int) -> list[str]:
    """The names of `count` shards, as parse_shard reads them: "1-of-2", "2-of-2"."""
    return [f"{i}-of-{count}" for i in range(1, count + 1)]


def parse_shard(text: str) -> tuple[int, int]:
    """"2-of-4" -> (2, 4)."""
    index, sep, count = text.partition("-of-")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise ValueError(f"expected I-of-N with 1 <= I <= N, got {text!r}")
    return int(index), int(count)


def shard_count(total: int, per_shard: int) -> int:
    """How many shards of at most `per_shard` items hold `total` items (at least one)."""
    return max(1, math.ceil(total / per_shard))


def record_count(path: str | os.PathLike) -> int:
    """Records (lines) of a JSON Lines file, counted once per version of the file."""
    stat = os.stat(path)
    return _count_lines(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _count_lines(path: str, size: int, mtime_ns: int) -> int:
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            count += block.count(b"\n")
    return count
