"""Share a list of tasks between this process and forked helpers; results come back in order.

The scan's work is many small system calls and parsing, which threads cannot overlap under the
GIL, so it is spread over processes. Tasks are claimed one at a time from a shared counter,
so whoever is free takes the next one and nobody waits on a slow partner. This process runs
its tasks directly; a helper runs a task, packs the result into bytes and sends it over a
pipe, and this process unpacks it between tasks of its own, so unpacking overlaps the
helpers' work instead of following it.

Results are returned in task order, whoever ran them, so callers see the same result as a
serial run. A helper that dies (killed, out of memory, a bug) costs nothing but time: every
task whose result never arrived is run again here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_HEADER = 8  # a result message starts with its task index, little-endian


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _Counter:
    """The next unclaimed task index, shared with forked helpers."""

    def __init__(self, ctx: Any) -> None:
        self.value = ctx.Value("q", 0)

    def claim(self, n: int) -> int | None:
        with self.value.get_lock():
            i = int(self.value.value)
            if i >= n:
                return None
            self.value.value = i + 1
        return i


class _Run(Generic[T, R]):
    def __init__(
        self,
        tasks: Sequence[T],
        run: Callable[[T], R],
        unpack: Callable[[bytes], R],
        on_result: Callable[[int], None] | None,
    ) -> None:
        self.tasks = tasks
        self.run = run
        self.unpack = unpack
        self.on_result = on_result
        self.results: dict[int, R] = {}

    def store(self, i: int, result: R) -> None:
        self.results[i] = result
        if self.on_result is not None:
            self.on_result(i)

    def receive(self, conns: list[Connection], timeout: float | None) -> None:
        """Unpack what the helpers have sent; drop a pipe once its helper has closed it."""
        for conn in wait(conns, timeout):
            assert isinstance(conn, Connection)
            try:
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                conns.remove(conn)
                conn.close()
                continue
            i = int.from_bytes(msg[:_HEADER], "little")
            self.store(i, self.unpack(msg[_HEADER:]))


def _helper(
    conn: Connection,
    counter: _Counter,
    tasks: Sequence[Any],
    run: Callable[[Any], Any],
    pack: Callable[[Any], bytes],
) -> None:
    """A forked helper's whole life: claim, run, pack, send, until no task is left."""
    code = 0
    try:
        while (i := counter.claim(len(tasks))) is not None:
            conn.send_bytes(i.to_bytes(_HEADER, "little") + pack(run(tasks[i])))
    except BaseException:
        code = 1
    finally:
        conn.close()
    os._exit(code)  # nothing of the parent's (atexit, buffers) may run twice


def run_tasks(
    tasks: Sequence[T],
    run: Callable[[T], R],
    *,
    pack: Callable[[R], bytes],
    unpack: Callable[[bytes], R],
    processes: int,
    on_result: Callable[[int], None] | None = None,
) -> list[R]:
    """Run every task and return the results in task order.

    ``run`` must depend only on its task and on state present before the call (helpers are
    forked copies of this process); ``unpack(pack(r))`` must give a result equal to ``r``.
    ``on_result(i)`` is called in this process as each result becomes available here.
    With ``processes <= 1``, fewer than two tasks or no ``fork``, everything runs here.
    """
    state: _Run[T, R] = _Run(tasks, run, unpack, on_result)
    n = len(tasks)
    if processes > 1 and n > 1 and can_fork():
        ctx = multiprocessing.get_context("fork")
        counter = _Counter(ctx)
        conns: list[Connection] = []
        procs = []
        try:
            for _ in range(min(processes, n) - 1):
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_helper, args=(writer, counter, tasks, run, pack), daemon=True
                )
                proc.start()
                writer.close()
                conns.append(reader)
                procs.append(proc)
            while (i := counter.claim(n)) is not None:
                state.store(i, run(tasks[i]))
                if conns:
                    state.receive(conns, 0)
            while conns:
                state.receive(conns, None)
        finally:
            for conn in conns:
                conn.close()
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join()
    for i in range(n):
        if i not in state.results:  # never claimed, or its helper died with it
            state.store(i, run(tasks[i]))
    return [state.results[i] for i in range(n)]
