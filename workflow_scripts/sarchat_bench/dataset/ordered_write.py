"""One file written by several processes, in order.

The work is a sequence of parts. Each worker process takes the next part, produces its bytes
and writes them itself, with `pwrite`, at the offset where the previous part's bytes end. No
process copies another's output, and the file is byte-identical to a serial run whatever the
number of workers or their timing. The file is written through `atomic_output`, so a failed or
killed run leaves nothing that looks complete.

A worker whose part is not next yet keeps its bytes and goes on with the next part; it places
them once the parts before them are placed (at the latest when no part is left to take).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import traceback
from typing import Any, Callable

from sarchat_bench.core.io import atomic_output

log = logging.getLogger(__name__)

# Slots of the shared state: the next part to take, the next part to place, where it goes.
_TAKE, _PLACE, _OFFSET = range(3)
PROGRESS_SECONDS = 10.0

Produce = Callable[[int], "tuple[bytes | bytearray, Any]"]


def write_in_order(path: str | os.PathLike, n_parts: int, produce: Produce, *, workers: int = 1,
                   progress_seconds: float = PROGRESS_SECONDS) -> list:
    """Write `produce(0)[0]`, `produce(1)[0]`, ... to `path` in that order; return the
    `produce(i)[1]` results in part order.

    With `workers` > 1, that many forked processes share the parts: `produce` and what it
    reads are inherited, never pickled, and only its small results travel back."""
    workers = max(1, min(workers, n_parts))
    with atomic_output(path) as out:
        if workers == 1:
            results = []
            for i in range(n_parts):
                data, result = produce(i)
                out.write(data)
                results.append(result)
            return results
        return _write_parallel(out.fileno(), str(path), n_parts, produce, workers, progress_seconds)


def _write_parallel(fd: int, name: str, n_parts: int, produce: Produce, workers: int,
                    progress_seconds: float) -> list:
    # fork: the workers inherit the parent's loaded data (the images) instead of reloading it.
    ctx = multiprocessing.get_context("fork")
    lock = ctx.Condition()
    state = ctx.RawArray("q", 3)
    results: dict[int, Any] = {}
    procs, readers = [], []
    try:
        for _ in range(workers):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(fd, n_parts, produce, lock, state, writer, os.getpid()),
                               daemon=True)
            proc.start()
            writer.close()
            procs.append(proc)
            readers.append(reader)
        pending = dict(zip(readers, procs))
        while pending:
            ready = multiprocessing.connection.wait(list(pending), timeout=progress_seconds)
            if not ready:
                log.info("%s: %d of %d parts written (%.0f MB)", name, state[_PLACE], n_parts, state[_OFFSET] / 1e6)
            for reader in ready:
                proc = pending.pop(reader)
                try:
                    status, payload = reader.recv()
                except EOFError:
                    proc.join()
                    raise RuntimeError(f"{name}: a writer process died (exit code {proc.exitcode})") from None
                if status != "ok":
                    raise RuntimeError(f"{name}: a writer process failed:\n{payload}")
                results.update(payload)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
    size = os.fstat(fd).st_size
    if len(results) != n_parts or state[_PLACE] != n_parts or size != state[_OFFSET]:
        raise RuntimeError(f"{name}: {state[_PLACE]} of {n_parts} parts placed, {size} of {state[_OFFSET]} bytes")
    return [results[i] for i in range(n_parts)]


def _worker(fd, n_parts, produce, lock, state, conn, parent_pid) -> None:
    try:
        results, held = {}, {}
        while True:
            with lock:
                i = state[_TAKE]
                state[_TAKE] += 1
            if i >= n_parts:
                break
            held[i], results[i] = produce(i)
            _place(fd, held, lock, state, parent_pid, wait=False)
        _place(fd, held, lock, state, parent_pid, wait=True)
        conn.send(("ok", results))
    except BaseException:  # whatever it is, the parent reports it and stops the other workers
        conn.send(("error", traceback.format_exc()))


def _place(fd, held: dict, lock, state, parent_pid: int, *, wait: bool) -> None:
    """Write the held parts whose turn has come; with `wait`, until none is held."""
    while held:
        first = min(held)
        with lock:
            while state[_PLACE] != first:
                if not wait:
                    return
                lock.wait(timeout=1.0)
                if os.getppid() != parent_pid:
                    raise RuntimeError("the parent process is gone")
            offset = state[_OFFSET]
            data = memoryview(held.pop(first))
            state[_OFFSET] += len(data)
            state[_PLACE] += 1
            lock.notify_all()
        while data:  # outside the lock: the next part's writer need not wait for this one
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written
