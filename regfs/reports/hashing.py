"""Hash blob data files fast: the first read of ``regfs check --verify-digests``.

Blobs are mostly small, so the cost is per file, not per byte, and threads convoy on the GIL
between the tiny system calls. The blobs are dealt out in chunks to forked worker processes
(one per core), which take chunk numbers from a shared pipe until it is empty. Each file costs
an ``open`` (through the storage: locally relative to the algorithm's folder, no symbolic
link followed), one ``read`` sized
from the scan's known size (plus one byte, to notice growth), and a ``close``; larger files are
read in pieces. Workers send back, per chunk, only the bytes they hashed and the *suspects*:
blobs whose data did not hash to their digest, or could not be read. The caller reads those
again carefully before calling them corrupt.

Without ``fork`` (or for a handful of blobs) the same code runs in this process. Workers
never outlive it (see :func:`regfs.forkpool.become_helper`).
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import select
import selectors
import signal
import struct
from collections.abc import Callable, Sequence
from typing import Any

from regfs import forkpool
from regfs.storage.base import Storage, Stream

# (digest, size the scan saw); a negative size means unknown.
Item = tuple[str, int]
# (digest, "<alg>:<hex>" the data hashed to, or None when it could not be read)
Suspect = tuple[str, str | None]
# accept(data, digest): true when data that does not hash to digest is still right
# (a signed schema1 manifest, whose digest is that of its canonical payload).
Accept = Callable[[bytes, str], bool]
OnBytes = Callable[[int], None]

# Files up to this size are read with one system call and can be handed to ``accept``.
WHOLE = 16 << 20
# Larger files are read (and their progress reported) in pieces of this size.
PIECE = 1 << 20
# Below both of these, forking costs more than it saves.
FORK_MIN_BLOBS = 256
FORK_MIN_BYTES = 64 << 20
# A chunk closes at this many files or bytes (raised for huge stores, to keep the number of
# chunks under _MAX_CHUNKS: their numbers must fit the work pipe before any worker starts).
CHUNK_FILES = 64
CHUNK_BYTES = 16 << 20
_MAX_CHUNKS = 2000
_INDEX = struct.Struct("<H")  # 2 bytes per chunk number: 2000 of them fit any pipe
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)
_FRAME = struct.Struct("<I")

_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def cpus() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    return hasattr(os, "fork")


def hash_blobs(
    storage: Storage,
    items: Sequence[Item],
    *,
    processes: int,
    on_bytes: OnBytes | None = None,
    accept: Accept | None = None,
) -> list[Suspect]:
    """Hash ``blobs/<alg>/<xx>/<hex>/data`` of every item in ``storage``; return the
    suspects, sorted.

    ``on_bytes(n)`` is called in this process as data is hashed (per finished chunk, and per
    piece of a large file). ``processes > 1`` forks that many workers when the job is worth it.
    """
    total = sum(max(0, size) for _, size in items)
    chunks = plan_chunks(items, total)
    worth = len(items) >= FORK_MIN_BLOBS or total >= FORK_MIN_BYTES
    # The chunk numbers are written to the work pipe in one atomic write, before any reader.
    fits = len(chunks) * _INDEX.size <= _PIPE_BUF
    if processes > 1 and can_fork() and worth and fits:
        suspects = _run_forked(storage, chunks, min(processes, len(chunks)), on_bytes, accept)
    else:
        suspects = _run_here(storage, chunks, range(len(chunks)), on_bytes, accept)
    suspects.sort()
    return suspects


def plan_chunks(items: Sequence[Item], total: int) -> list[list[Item]]:
    """Large files first (so that none finishes alone at the end), then the rest in the given
    order (folder order: neighbours on disk stay together), cut into chunks."""
    files = max(CHUNK_FILES, -(-len(items) // (_MAX_CHUNKS // 2)))
    limit = max(CHUNK_BYTES, -(-total // (_MAX_CHUNKS // 2)))
    large = sorted((it for it in items if it[1] > WHOLE), key=lambda it: (-it[1], it[0]))
    ordered = large + [it for it in items if it[1] <= WHOLE] if large else list(items)
    chunks: list[list[Item]] = []
    cur: list[Item] = []
    size = 0
    for it in ordered:
        cur.append(it)
        size += max(0, it[1])
        if len(cur) >= files or size >= limit:
            chunks.append(cur)
            cur, size = [], 0
    if cur:
        chunks.append(cur)
    return chunks


# --- the work ------------------------------------------------------------------------------


class _Folders:
    """Opens the data files of one worker through the storage (which keeps the
    ``blobs/<alg>`` folders open while the worker runs)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def open(self, alg: str, hx: str) -> Stream:
        return self.storage.open_stream(f"blobs/{alg}/{hx[:2]}/{hx}/data")

    def close(self) -> None:
        self.storage.close_streams()


def hash_chunk(
    folders: _Folders, chunk: Sequence[Item], on_bytes: OnBytes | None, accept: Accept | None
) -> tuple[list[Suspect], int]:
    """Hash the chunk's files; (suspects, bytes hashed but not yet passed to ``on_bytes``)."""
    suspects: list[Suspect] = []
    done = 0
    for digest, size in chunk:
        alg, _, hx = digest.partition(":")
        new = _CONSTRUCTORS.get(alg)
        try:
            if new is None:
                raise ValueError(alg)
            with folders.open(alg, hx) as f:
                data: bytes | None = None
                if 0 <= size <= WHOLE:
                    data = f.read(size + 1)
                    if len(data) > size:  # it grew since the scan
                        data += f.read()
                    actual = new(data).hexdigest()
                    done += len(data)
                else:
                    h = new()
                    while piece := f.read(PIECE):
                        h.update(piece)
                        if on_bytes is not None:
                            on_bytes(len(piece))
                    actual = h.hexdigest()
        except (OSError, ValueError):
            suspects.append((digest, None))
            continue
        if actual != hx and not (data is not None and accept is not None and accept(data, digest)):
            suspects.append((digest, f"{alg}:{actual}"))
    return suspects, done


def _run_here(
    storage: Storage,
    chunks: Sequence[Sequence[Item]],
    which: Sequence[int],
    on_bytes: OnBytes | None,
    accept: Accept | None,
) -> list[Suspect]:
    folders = _Folders(storage)
    suspects: list[Suspect] = []
    try:
        for k in which:
            # File by file: here, reporting costs no more than a call.
            for item in chunks[k]:
                found, done = hash_chunk(folders, (item,), on_bytes, accept)
                suspects.extend(found)
                if on_bytes is not None and done:
                    on_bytes(done)
    finally:
        folders.close()
    return suspects


# --- worker processes ----------------------------------------------------------------------


def _run_forked(
    storage: Storage,
    chunks: Sequence[Sequence[Item]],
    processes: int,
    on_bytes: OnBytes | None,
    accept: Accept | None,
) -> list[Suspect]:
    """Fork ``processes`` workers that take chunk numbers from a pipe filled beforehand.

    Chunks that no worker reported as done (one died) are hashed here afterwards.
    """
    work_r, work_w = os.pipe()
    try:
        os.write(work_w, b"".join(_INDEX.pack(k) for k in range(len(chunks))))
    finally:
        os.close(work_w)
    results: dict[int, int] = {}  # result pipe -> worker pid
    suspects: list[Suspect] = []
    finished: set[int] = set()
    complete = False
    parent = os.getpid()
    forkpool.prepare_helpers()
    try:
        for _ in range(processes):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                code = 1
                try:
                    # Dies with the parent, holds no read end of any result pipe (a write to
                    # a pipe nobody reads then fails with EPIPE), works from "/".
                    forkpool.become_helper(parent, [r, *results])
                    _worker(storage, chunks, work_r, w, accept)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            results[r] = pid
        os.close(work_r)
        work_r = -1
        _collect(results, suspects, finished, on_bytes)
        complete = True
    finally:
        if work_r >= 0:
            os.close(work_r)
        for r, pid in results.items():
            _reap(pid, kill=not complete)
            os.close(r)
    missing = [k for k in range(len(chunks)) if k not in finished]
    if missing:
        suspects.extend(_run_here(storage, chunks, missing, on_bytes, accept))
    return suspects


def _worker(
    storage: Storage, chunks: Sequence[Sequence[Item]], work: int, out: int, accept: Accept | None
) -> None:
    # The parent's objects are shared copy-on-write: a collection here would touch (and so
    # copy) all of them, for nothing.
    gc.disable()

    def send(msg: object) -> None:
        raw = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_FRAME.pack(len(raw)) + raw)
        while view:
            view = view[os.write(out, view) :]

    folders = _Folders(storage)
    try:
        while len(raw := os.read(work, _INDEX.size)) == _INDEX.size:
            (k,) = _INDEX.unpack(raw)
            found, done = hash_chunk(folders, chunks[k], lambda n: send(("b", n)), accept)
            send(("c", k, done, found))
    finally:
        folders.close()
        os.close(out)


def _collect(
    results: dict[int, int],
    suspects: list[Suspect],
    finished: set[int],
    on_bytes: OnBytes | None,
) -> None:
    """Read the workers' frames until every result pipe is at its end."""
    buffers = {r: b"" for r in results}
    with selectors.DefaultSelector() as sel:
        for r in results:
            sel.register(r, selectors.EVENT_READ)
        while buffers:
            for key, _ in sel.select():
                r = int(key.fd)
                raw = os.read(r, 1 << 16)
                if not raw:
                    sel.unregister(r)
                    del buffers[r]
                    continue
                buf = buffers[r] + raw
                while len(buf) >= _FRAME.size:
                    (n,) = _FRAME.unpack_from(buf)
                    if len(buf) < _FRAME.size + n:
                        break
                    msg = pickle.loads(buf[_FRAME.size : _FRAME.size + n])
                    buf = buf[_FRAME.size + n :]
                    if msg[0] == "c":
                        _, k, done, found = msg
                        finished.add(k)
                        suspects.extend(found)
                    else:
                        done = msg[1]
                    if on_bytes is not None and done:
                        on_bytes(done)
                buffers[r] = buf


def _reap(pid: int, *, kill: bool) -> None:
    """Wait for a worker; when bailing out (``kill``), one still running is killed first."""
    try:
        if kill and os.waitpid(pid, os.WNOHANG)[0] == 0:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
