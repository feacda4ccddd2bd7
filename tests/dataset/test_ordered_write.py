"""One file written by several processes in order (sarchat_bench.dataset.ordered_write)."""

import os
import random
import time

import pytest
from sarchat_bench.dataset.ordered_write import write_in_order


def part_bytes(i: int) -> bytes:
    # Parts of very different sizes, so that a late small part can finish before an early one.
    return b"".join(b"%d:%d\n" % (i, k) for k in range((i * 7919) % 500))


def produce(i: int):
    time.sleep(random.Random(i).random() / 200)  # finish out of order
    return part_bytes(i), {"part": i, "pid": os.getpid()}


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_parts_land_in_order_whatever_the_writers(tmp_path, workers):
    out = tmp_path / "out.bin"
    results = write_in_order(out, 60, produce, workers=workers)
    assert out.read_bytes() == b"".join(part_bytes(i) for i in range(60))
    assert [r["part"] for r in results] == list(range(60))
    pids = {r["pid"] for r in results}
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids and len(pids) > 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_no_parts_write_an_empty_file(tmp_path):
    assert write_in_order(tmp_path / "empty", 0, produce, workers=3) == []
    assert (tmp_path / "empty").read_bytes() == b""


def failing(i: int):
    if i == 7:
        raise ValueError("part 7 is broken")
    return produce(i)


def dying(i: int):
    if i == 5:
        os._exit(3)  # a worker killed outright (out of memory, say)
    return produce(i)


@pytest.mark.parametrize("workers", [1, 3])
def test_a_failing_part_fails_the_file_and_leaves_nothing(tmp_path, workers):
    out = tmp_path / "out.bin"
    out.write_bytes(b"earlier complete file\n")
    with pytest.raises((ValueError, RuntimeError), match="part 7 is broken"):
        write_in_order(out, 20, failing, workers=workers)
    assert out.read_bytes() == b"earlier complete file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_dead_writer_fails_the_file_without_hanging(tmp_path):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="died"):
        write_in_order(tmp_path / "out.bin", 20, dying, workers=3)
    assert time.monotonic() - start < 30
    assert list(tmp_path.iterdir()) == []
