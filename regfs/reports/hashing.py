"""Hash blob data files fast: the first read of ``regfs check --verify-digests``.

Blobs are mostly small, so the cost is per file, not per byte, and threads convoy on the GIL
between the tiny system calls. The blobs are dealt out in chunks to the fork pool
(:mod:`regfs.parallel.pool`: this process and forked helpers, as many as the
:class:`~regfs.parallel.tuning.Tuning` says), each taking the next chunk when it is free.
Each file costs an ``open`` (through the storage: locally relative to the algorithm's folder,
no symbolic link followed), one ``read`` sized from the scan's known size (plus one byte, to
notice growth), and a ``close``; larger files are read in pieces. A chunk's result is only the
bytes it hashed and its *suspects*: blobs whose data did not hash to their digest, or could
not be read. The caller reads those again carefully before calling them corrupt.

For a handful of blobs (or ``processes == 1``, or no ``fork``) the same code runs in this
process; the pool hashes here again the chunks of a helper that died.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from regfs.layout import blob_data
from regfs.parallel import pool
from regfs.parallel.tuning import SERIAL, Tuning
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
# Chunks are raised in size for huge stores, to stay under this many.
MAX_CHUNKS = 2000

_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def hash_blobs(
    storage: Storage,
    items: Sequence[Item],
    *,
    tuning: Tuning = SERIAL,
    on_bytes: OnBytes | None = None,
    accept: Accept | None = None,
) -> list[Suspect]:
    """Hash ``blobs/<alg>/<xx>/<hex>/data`` of every item in ``storage``; return the
    suspects, sorted.

    ``on_bytes(n)`` is called in this process as data is hashed (per file here, per finished
    chunk or piece of a large file in a helper). The chunks are shared with forked helpers
    when ``tuning`` allows more than one process and the job is worth it
    (``tuning.hash_min_blobs`` blobs or ``tuning.hash_min_bytes`` bytes). A store that
    prefers listing (S3) streams and hashes in ``tuning.threads`` threads instead: every blob
    is a request, the waits overlap in threads (hashlib releases the GIL on large updates), and
    nothing forks a process holding a client's connections.
    """
    if storage.prefers_listing:
        found = _run_threads(storage, items, tuning.threads, on_bytes, accept)
        return sorted(found)
    total = sum(max(0, size) for _, size in items)
    chunks = plan_chunks(items, total, tuning)
    worth = len(items) >= tuning.hash_min_blobs or total >= tuning.hash_min_bytes
    processes = tuning.processes if worth else 1
    here = processes <= 1 or len(chunks) <= 1 or not pool.fork_safe()

    def run(chunk: list[Item], note: pool.Note) -> list[Suspect]:
        # Here file by file: reporting costs no more than a call; in a helper per chunk.
        items = [[it] for it in chunk] if here else [chunk]
        folders = _Folders(storage)
        suspects: list[Suspect] = []
        try:
            for part in items:
                found, done = hash_chunk(folders, part, note, accept)
                suspects.extend(found)
                if done:
                    note(done)
        finally:
            folders.close()
        return suspects

    results = pool.run_noting(
        chunks,
        run,
        pack=_pack,
        unpack=_unpack,
        processes=processes,
        on_note=on_bytes,
    )
    suspects = [s for found in results for s in found]
    suspects.sort()
    return suspects


def _run_threads(
    storage: Storage,
    items: Sequence[Item],
    threads: int,
    on_bytes: OnBytes | None,
    accept: Accept | None,
) -> list[Suspect]:
    """Hash every item in ``threads`` threads, a blob a task (each a streamed GET);
    ``on_bytes`` is called under a lock."""
    lock = threading.Lock()

    def counted(n: int) -> None:
        if on_bytes is not None:
            with lock:
                on_bytes(n)

    folders = _Folders(storage)

    def one(item: Item) -> list[Suspect]:
        found, done = hash_chunk(folders, (item,), counted, accept)
        if done:
            counted(done)
        return found

    suspects: list[Suspect] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(items)))) as workers:
            for found in workers.map(one, items):
                suspects.extend(found)
    finally:
        folders.close()
    return suspects


def plan_chunks(items: Sequence[Item], total: int, tuning: Tuning = SERIAL) -> list[list[Item]]:
    """Large files first (so that none finishes alone at the end), then the rest in the given
    order (folder order: neighbours on disk stay together), cut into chunks of
    ``tuning.hash_chunk_files`` files or ``tuning.hash_chunk_bytes`` bytes (more for huge
    stores: never more than :data:`MAX_CHUNKS` chunks)."""
    files = max(tuning.hash_chunk_files, -(-len(items) // (MAX_CHUNKS // 2)))
    limit = max(tuning.hash_chunk_bytes, -(-total // (MAX_CHUNKS // 2)))
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


class _Folders:
    """Opens the data files of one chunk through the storage (which keeps the
    ``blobs/<alg>`` folders open until :meth:`close`)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def open(self, digest: str) -> Stream:
        return self.storage.open_stream(blob_data(digest))

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
            with folders.open(digest) as f:
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


def _pack(suspects: list[Suspect]) -> bytes:
    return pickle.dumps(suspects, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(raw: bytes) -> list[Suspect]:
    suspects: list[Suspect] = pickle.loads(raw)
    return suspects
