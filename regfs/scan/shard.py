"""Sharding a scan over forked processes: the tasks, and their results as plain tuples.

The work is small system calls and parsing, which threads cannot run in parallel under the
GIL; :func:`regfs.parallel.pool.run_tasks` runs the tasks here and in forked helpers, and
:mod:`regfs.scan.codec` carries the results back. How the work is cut and how many processes
share it is the caller's :class:`~regfs.parallel.tuning.Tuning`.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from typing import Any

from regfs.model.snapshot import ScanMode
from regfs.parallel import pool
from regfs.parallel.tuning import Tuning
from regfs.scan import codec
from regfs.scan.blobs import scan_blob_prefix
from regfs.scan.interpret import Shard
from regfs.scan.loader import ChunkReader, Progress, Read
from regfs.scan.out import Out
from regfs.scan.repository import scan_repository
from regfs.storage.base import Storage

RepoNames = list[tuple[str, set[str]]]
Prefixes = list[tuple[str, str]]
Task = tuple[RepoNames, Prefixes]


def shard_results(
    storage: Storage,
    repo_names: RepoNames,
    prefixes: Prefixes,
    mode: ScanMode,
    tick: Callable[[], None] | None = None,
) -> Shard:
    """Scan these repositories, then these blob prefixes, in this process."""
    repos = []
    for n, f in repo_names:
        repos.append(scan_repository(storage, n, f, mode))
        if tick:
            tick()
    blob_parts = []
    for a, p in prefixes:
        blob_parts.append(scan_blob_prefix(storage, a, p, mode))
        if tick:
            tick()
    return Shard(repos, blob_parts)


def tasks_of(repo_names: RepoNames, prefixes: Prefixes, tuning: Tuning) -> list[Task]:
    """Repositories, then blob prefixes, in chunks small enough to balance the processes and
    large enough that each result is worth a message."""
    per = tuning.scan_tasks_per_process * tuning.processes
    size = max(tuning.scan_min_repos, -(-len(repo_names) // per))
    tasks: list[Task] = [(repo_names[k : k + size], []) for k in range(0, len(repo_names), size)]
    step = tuning.scan_prefixes
    tasks += [([], prefixes[k : k + step]) for k in range(0, len(prefixes), step)]
    return tasks


def run_shards(
    storage: Storage,
    repo_names: RepoNames,
    prefixes: Prefixes,
    tuning: Tuning,
    mode: ScanMode,
    progress: Progress | None,
    total: int,
) -> list[Shard]:
    """Scan in this process and forked helpers sharing one task list (see
    :mod:`regfs.parallel.pool`)."""
    tasks = tasks_of(repo_names, prefixes, tuning)
    done = [0]

    def on_result(i: int) -> None:
        done[0] += len(tasks[i][0]) + len(tasks[i][1])
        if progress:
            progress("scan", done[0], total)

    return pool.run_tasks(
        tasks,
        lambda t: shard_results(storage, t[0], t[1], mode),
        pack=pack_shard,
        unpack=unpack_shard,
        processes=tuning.processes,
        on_result=on_result,
    )


def forked_reader(processes: int) -> ChunkReader:
    """Read manifest chunks here and in forked helpers (see :mod:`regfs.parallel.pool`)."""

    def read_chunks(
        read: Callable[[list[str]], Read], chunks: list[list[str]], on_chunk: Callable[[int], None]
    ) -> list[Read]:
        return pool.run_tasks(
            chunks,
            read,
            pack=pack_read,
            unpack=unpack_read,
            processes=processes,
            on_result=on_chunk,
        )

    return read_chunks


def pack_shard(shard: Shard) -> bytes:
    """A shard as bytes a helper sends back."""
    packed = (
        [(codec.pack_repo(r), _pack_out(o)) for r, o in shard.repos],
        [(codec.pack_blobs(b), sorted(m), _pack_out(o), c) for b, m, o, c in shard.blobs],
    )
    return pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_shard(raw: bytes) -> Shard:
    """The inverse of :func:`pack_shard`."""
    repos, blob_parts = pickle.loads(raw)
    return Shard(
        [(codec.unpack_repo(r), _unpack_out(o)) for r, o in repos],
        [(codec.unpack_blobs(b), set(m), _unpack_out(o), c) for b, m, o, c in blob_parts],
    )


def pack_read(results: Read) -> bytes:
    """A chunk of manifest results as bytes a helper sends back."""
    packed = [(d, codec.pack_manifest(m), linked) for d, m, linked in results]
    return pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_read(raw: bytes) -> Read:
    """The inverse of :func:`pack_read`."""
    return [(sys.intern(d), codec.unpack_manifest(m), lk) for d, m, lk in pickle.loads(raw)]


def _pack_out(o: Out) -> tuple[list[tuple[Any, ...]], list[str]]:
    return codec.pack_findings(o.findings), o.empty


def _unpack_out(t: tuple[list[tuple[Any, ...]], list[str]]) -> Out:
    o = Out()
    o.findings = codec.unpack_findings(t[0])
    o.empty = t[1]
    return o
