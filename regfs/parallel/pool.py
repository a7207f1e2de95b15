"""The one fork pool: a list of tasks shared between this process and forked helpers; results
come back in order. The scan's shards and manifest chunks and the digest verification's
hashing all run here (sized by a :class:`~regfs.parallel.tuning.Tuning`).

The scan's work is many small system calls and parsing, which threads cannot overlap under the
GIL, so it is spread over processes. Tasks are claimed one at a time from a shared counter,
so whoever is free takes the next one and nobody waits on a slow partner. This process runs
its tasks directly; a helper runs a task, packs the result into bytes and sends it over a
pipe, and this process unpacks it between tasks of its own, so unpacking overlaps the
helpers' work instead of following it.

Results are returned in task order, whoever ran them, so callers see the same result as a
serial run. A helper that dies (killed, out of memory, a bug) costs nothing but time: every
task whose result never arrived is run again here.

Helpers never outlive this process (:func:`become_helper`): on Linux the kernel kills them
when it dies (parent-death signal), and everywhere a helper writing to a pipe nobody reads any
more gets EPIPE and exits, because a helper holds no read end of any result pipe. Helpers work
from ``/``, so none keeps a folder busy (callers pass absolute paths).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_HEADER = 8  # a result message starts with its task index, little-endian
_NOTE = (1 << 64) - 1  # ... or with this, for a note: an 8-byte amount follows

# note(n): progress of the task running (bytes hashed, ...), passed to ``on_note``.
Note = Callable[[int], None]


def can_fork() -> bool:
    """Whether this platform can fork helpers at all."""
    return "fork" in multiprocessing.get_all_start_methods()


def fork_safe() -> bool:
    """Whether forking now is safe: the platform forks, and no other thread runs."""
    return can_fork() and threading.active_count() == 1


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_prctl: Callable[..., int] | None = None


def prepare_helpers() -> None:
    """Look up ``prctl`` here, before forking, so that helpers do not each load ``ctypes``."""
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        import ctypes

        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            _prctl = None


def become_helper(parent: int, close: Iterable[int] = ()) -> None:
    """First thing a forked helper does: tie its life to ``parent`` and let go of its files.

    On Linux the kernel sends SIGKILL to the helper when the parent dies
    (``PR_SET_PDEATHSIG``); a parent that died before that was set up shows as a changed
    ``getppid()``, and the helper exits at once. ``close`` are descriptors the helper must
    not hold, above all the read ends of result pipes: while a helper holds one, a helper
    writing to that pipe blocks forever instead of getting EPIPE once the parent is gone.
    The working directory moves to ``/`` so that a helper never keeps the store busy.

    The kernel sends the signal when the *thread* that forked the helper ends: callers wait
    for their helpers in the thread that forked them.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    for fd in close:
        with contextlib.suppress(OSError):
            os.close(fd)
    os.chdir("/")


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
        unpack: Callable[[bytes], R],
        on_result: Callable[[int], None] | None,
        on_note: Note | None,
    ) -> None:
        self.tasks = tasks
        self.unpack = unpack
        self.on_result = on_result
        self.on_note = on_note
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
            if i == _NOTE:
                if self.on_note is not None:
                    self.on_note(int.from_bytes(msg[_HEADER:], "little"))
                continue
            self.store(i, self.unpack(msg[_HEADER:]))


def _helper(
    conn: Connection,
    counter: _Counter,
    tasks: Sequence[Any],
    run: Callable[[Any, Note], Any],
    pack: Callable[[Any], bytes],
    parent: int,
    readers: list[Connection],
) -> None:
    """A forked helper's whole life: claim, run, pack, send, until no task is left (or the
    parent is gone: killed with it, or EPIPE on the send)."""
    code = 0
    try:
        become_helper(parent)
        for r in readers:  # through the object, which would otherwise close it again later
            r.close()

        def note(n: int) -> None:
            conn.send_bytes(_NOTE.to_bytes(_HEADER, "little") + n.to_bytes(8, "little"))

        while (i := counter.claim(len(tasks))) is not None:
            conn.send_bytes(i.to_bytes(_HEADER, "little") + pack(run(tasks[i], note)))
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
    With ``processes <= 1``, fewer than two tasks, no ``fork`` or another thread running,
    everything runs here.
    """
    return run_noting(
        tasks,
        lambda task, _note: run(task),
        pack=pack,
        unpack=unpack,
        processes=processes,
        on_result=on_result,
    )


def run_noting(
    tasks: Sequence[T],
    run: Callable[[T, Note], R],
    *,
    pack: Callable[[R], bytes],
    unpack: Callable[[bytes], R],
    processes: int,
    on_result: Callable[[int], None] | None = None,
    on_note: Note | None = None,
) -> list[R]:
    """:func:`run_tasks` for tasks that report progress: ``run(task, note)`` calls
    ``note(n)`` on the way, and ``on_note(n)`` is called in this process for each (at once
    for a task run here; between this process's own tasks for a helper's).

    A helper that dies after some notes has its task run again here, which notes again:
    the total noted can then exceed the work (callers clamp).
    """
    state: _Run[T, R] = _Run(tasks, unpack, on_result, on_note)
    here: Note = on_note if on_note is not None else _ignore
    n = len(tasks)
    if processes > 1 and n > 1 and fork_safe():
        ctx = multiprocessing.get_context("fork")
        counter = _Counter(ctx)
        conns: list[Connection] = []
        procs = []
        prepare_helpers()
        try:
            for _ in range(min(processes, n) - 1):
                reader, writer = ctx.Pipe(duplex=False)
                # The helper closes every read end it inherits, its own included.
                readers = [*conns, reader]
                proc = ctx.Process(
                    target=_helper,
                    args=(writer, counter, tasks, run, pack, os.getpid(), readers),
                    daemon=True,
                )
                proc.start()
                writer.close()
                conns.append(reader)
                procs.append(proc)
            while (i := counter.claim(n)) is not None:
                state.store(i, run(tasks[i], here))
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
            state.store(i, run(tasks[i], here))
    return [state.results[i] for i in range(n)]


def _ignore(_n: int) -> None:
    return None
