"""Walk a registry's storage into a :class:`Snapshot`; every anomaly becomes a finding.

A scan is two steps. *Enumerate* walks the storage listing (:mod:`regfs.scan.walk` for the
primitives, :mod:`regfs.scan.tree` for the top, :mod:`regfs.scan.repository`,
:mod:`regfs.scan.links`, :mod:`regfs.scan.uploads` and :mod:`regfs.scan.blobs` below it) and
reads link files and manifest blobs (:mod:`regfs.scan.loader`); *interpret*
(:mod:`regfs.scan.interpret`, no I/O) turns link bodies, manifest bytes and the per-task
results into model values and one :class:`Snapshot`. How much is read is a :class:`ScanMode`,
recorded on the snapshot. Repositories, blob prefixes and manifest chunks can be sharded over
forked processes (:mod:`regfs.scan.shard`); :class:`Refresher` (:mod:`regfs.scan.refresh`)
stats what a lazy scan knows by name only. The data it produces lives in
:mod:`regfs.model.snapshot`.
"""

from __future__ import annotations

import contextlib
import time

from regfs.model.snapshot import Blob as Blob
from regfs.model.snapshot import Link as Link
from regfs.model.snapshot import Repository as Repository
from regfs.model.snapshot import ScanMode as ScanMode
from regfs.model.snapshot import Snapshot as Snapshot
from regfs.model.snapshot import Tag as Tag
from regfs.model.snapshot import Upload as Upload
from regfs.model.snapshot import iter_links as iter_links
from regfs.parallel import pool
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.scan import loader, shard
from regfs.scan.interpret import EMPTY_SHA256 as EMPTY_SHA256
from regfs.scan.interpret import LINK_READ_LIMIT as LINK_READ_LIMIT
from regfs.scan.interpret import MANIFEST_READ_LIMIT as MANIFEST_READ_LIMIT
from regfs.scan.interpret import merge, snapshot_of
from regfs.scan.listing import listed_view
from regfs.scan.loader import Mapper
from regfs.scan.loader import Progress as Progress
from regfs.scan.out import Out
from regfs.scan.refresh import Refresher as Refresher
from regfs.scan.tree import blob_prefixes, discover_repositories, top_level
from regfs.scan.uploads import parse_started_at as parse_started_at
from regfs.storage.base import Storage

# Manifests per thread task when each read is a request: small, to keep every thread busy.
REMOTE_MANIFEST_CHUNK = 4


def scan(
    storage: Storage,
    *,
    mode: ScanMode = ScanMode.FULL,
    workers: int = 4,
    progress: Progress | None = None,
    now: float | None = None,
    tuning: Tuning = SERIAL,
) -> Snapshot:
    """Scan the whole storage, reading as much as ``mode`` says.

    A filesystem is walked folder by folder: ``workers > 1`` reads manifests in that many
    threads (when not forked). With ``tuning.processes > 1`` and more than
    ``tuning.scan_min_tasks`` repositories and blob prefixes, the repositories, blob prefixes
    and manifest chunks are sharded over forked worker processes (the work is small system
    calls and parsing, which threads cannot run in parallel under the GIL); results come back
    as plain tuples. A store that prefers listing (S3: :attr:`Storage.prefers_listing`) is
    listed once in parallel shards and walked in memory (:mod:`regfs.scan.listing`); the small
    files and the manifests it reads are fetched in ``tuning.threads`` threads, each distinct
    manifest once; nothing forks. ``progress(phase, done, total)`` is called as the work
    advances.
    """
    started = time.time() if now is None else now
    chunk = loader.MANIFEST_CHUNK
    if storage.prefers_listing:
        storage = listed_view(storage, mode, threads=tuning.threads, progress=progress)
        workers, chunk = tuning.threads, REMOTE_MANIFEST_CHUNK
        tuning = tuning.with_processes(1)
    out = Out()
    if mode.thorough:
        top_level(storage, out)
    repo_names = discover_repositories(storage, out)
    prefixes = blob_prefixes(storage, out)
    blobs_complete = prefixes is not None
    prefixes = prefixes or []
    total = len(repo_names) + len(prefixes)
    forked = tuning.processes > 1 and total > tuning.scan_min_tasks and pool.can_fork()
    with contextlib.ExitStack() as stack:
        pmap: Mapper = map
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            pmap = stack.enter_context(ThreadPoolExecutor(max_workers=workers)).map
        if forked:
            shards = shard.run_shards(storage, repo_names, prefixes, tuning, mode, progress, total)
        else:
            counter = [0]

            def tick() -> None:
                counter[0] += 1
                if progress:
                    progress("scan", counter[0], total)

            shards = [shard.shard_results(storage, repo_names, prefixes, mode, tick)]
        merged = merge(shards, out, blobs_complete)
        reader = shard.forked_reader(tuning.processes) if forked else loader.mapped_reader(pmap)
        # Prefix folders not all known (blobs/ or blobs/<alg> unreadable): any blob may exist.
        unknown_area = loader.unlisted_blobs(
            out.findings, not merged.blobs_complete and not prefixes
        )
        manifests, unparseable = loader.load_manifests(
            storage,
            merged.repositories,
            merged.blobs,
            merged.no_data,
            out,
            reader,
            progress,
            unknown_area,
            chunk=chunk,
        )
    return snapshot_of(
        storage.location, merged, manifests, unparseable, out, scanned_at=started, mode=mode
    )
