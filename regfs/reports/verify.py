"""Digest verification for ``regfs check --verify-digests``: hash every blob once (through
:mod:`regfs.reports.hashing`, on the fork pool), then read each suspect again, carefully,
before calling it corrupt. Schema1 manifests are checked against their canonical payload
(:func:`regfs.manifests.schema1_payload`), which is what their digest names.
"""

from __future__ import annotations

import errno
import hashlib
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from regfs.layout import blob_data
from regfs.manifests import schema1_payload
from regfs.model.findings import Kind
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.reports.hashing import Item, hash_blobs
from regfs.scan import MANIFEST_READ_LIMIT
from regfs.storage.base import Storage, Stream

Progress = Callable[[str, int, int], None]

CHUNK = 1 << 20  # bytes read per system call when a suspect blob is read again
VERIFY_PHASE = "verify"


@dataclass(slots=True)
class Verified:
    """What a verification found: digest -> (kind, why) for each bad blob, and figures."""

    bad: dict[str, tuple[Kind, str]]
    blobs: int = 0
    bytes: int = 0
    seconds: float = 0.0
    # Blobs whose first read hashed wrong but whose second read was right.
    reread_ok: list[str] = field(default_factory=list)


class _Meter:
    """Thread-safe byte counter that reports progress at most every 64 MiB or 0.1 s."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.lock = threading.Lock()
        self.reported = 0
        self.last = 0.0

    def add(self, n: int) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.done += n
            now = time.monotonic()
            if self.done - self.reported >= 64 << 20 or now - self.last >= 0.1:
                self.reported, self.last = self.done, now
                self.progress(VERIFY_PHASE, min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self.progress is not None:
            with self.lock:
                self.progress(VERIFY_PHASE, self.total, self.total)


def verify(
    storage: Storage,
    items: Sequence[Item],
    *,
    tuning: Tuning = SERIAL,
    progress: Progress | None = None,
) -> Verified:
    """Re-hash every blob of ``items`` (digest, size the scan saw) in ``storage``.

    A first read hashes everything on the fork pool, as ``tuning`` says
    (:mod:`regfs.reports.hashing`); only what it finds suspect is read again here, carefully,
    before it is called corrupt."""
    total = sum(size for _, size in items)
    meter = _Meter(total, progress)
    if progress:
        progress(VERIFY_PHASE, 0, total)
    started = time.monotonic()
    suspects = hash_blobs(
        storage,
        items,
        tuning=tuning,
        on_bytes=meter.add if progress else None,
        accept=_schema1_data_matches,
    )
    done = Verified({}, blobs=len(items), bytes=total)
    for d, first in suspects:
        problem, reread = _confirm(storage, d, first)
        if problem is not None:
            done.bad[d] = problem
        elif reread:
            done.reread_ok.append(d)
    meter.finish()
    done.seconds = time.monotonic() - started
    done.reread_ok.sort()
    return done


def _confirm(
    storage: Storage, digest: str, first: str | None
) -> tuple[tuple[Kind, str] | None, bool]:
    """Read a suspect again: ((kind, why) when the blob is bad, else None; whether the data
    was read twice). ``first`` is what the first read hashed to, None when it failed: then
    this read counts as the first."""
    path = blob_data(digest)
    try:
        if first is None:
            first = _actual(storage, path, digest)
            if first is None:
                return None, False
        second = _actual(storage, path, digest)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return (Kind.SYMLINK, "blob data is a symbolic link (never followed)"), False
        return (Kind.UNREADABLE, f"cannot read blob data: {exc.strerror or exc}"), False
    if second is None:
        return None, True
    if second != first:
        why = (
            f"data hashes to {first}, then to {second} when read again: "
            "neither is its digest (unstable storage?)"
        )
    else:
        why = f"data hashes to {first}, not to its digest (read twice)"
    return (Kind.DIGEST_MISMATCH, why), True


@contextmanager
def _open(storage: Storage, path: str) -> Iterator[tuple[Stream, int]]:
    """A regular file opened for reading without following a symbolic link, with its size."""
    with storage.open_stream(path) as f:
        st = f.stat()
        if not stat_mod.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file", path)
        yield f, st.st_size


def _actual(storage: Storage, path: str, digest: str) -> str | None:
    """None when the data at ``path`` matches ``digest``; otherwise what it hashes to."""
    alg = digest.partition(":")[0]
    h = hashlib.new(alg)
    view = memoryview(bytearray(CHUNK))
    with _open(storage, path) as (f, size):
        while n := f.readinto(view):
            h.update(view[:n])
    actual = f"{alg}:{h.hexdigest()}"
    if actual == digest:
        return None
    if size <= MANIFEST_READ_LIMIT and _schema1_matches(storage, path, digest):
        return None
    return actual


def _schema1_matches(storage: Storage, path: str, digest: str) -> bool:
    with _open(storage, path) as (f, _size):
        data = f.read()
    return _schema1_data_matches(data, digest)


def _schema1_data_matches(data: bytes, digest: str) -> bool:
    """A signed schema1 manifest's digest is that of its canonical payload."""
    if len(data) > MANIFEST_READ_LIMIT:
        return False
    if data.lstrip()[:1] != b"{" or b'"schemaVersion"' not in data:
        return False
    try:
        payload = schema1_payload(data)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False
    if payload == data:
        return False
    alg = digest.partition(":")[0]
    return f"{alg}:{hashlib.new(alg, payload).hexdigest()}" == digest
