"""The manifest phase: read each distinct manifest blob once, parse it, follow index children.

Reading is spread by a :data:`ChunkReader` (here, in threads, or in forked helpers: see
:mod:`regfs.scan.shard`); parsing is :func:`regfs.scan.interpret.manifest_of`.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from regfs.layout import BLOBS, blob_data, blob_dir, blob_prefix_of
from regfs.model.findings import Finding, Kind
from regfs.model.manifest import Manifest
from regfs.model.snapshot import Blob, Repository
from regfs.scan.interpret import MANIFEST_READ_LIMIT, manifest_of
from regfs.scan.out import Out
from regfs.scan.walk import SYMLINK_FOLLOWED, target_inside
from regfs.storage.base import Storage

Progress = Callable[[str, int, int], None]
Mapper = Callable[..., Iterator[Any]]
# Manifests per task: small enough to share the work, large enough to be worth a message.
MANIFEST_CHUNK = 256

# (digest, the manifest / an error message / None when there is no data, read through a link)
Read = list[tuple[str, Manifest | str | None, bool]]
ChunkReader = Callable[
    [Callable[[list[str]], Read], list[list[str]], Callable[[int], None]], Iterable[Read]
]


def unlisted_blobs(findings: list[Finding], nothing_known: bool) -> Callable[[str], bool]:
    """``unlisted(digest)``: True when the digest's blob folder lies in a part of ``blobs/``
    that could not be listed, so whether it is stored is unknown (not known absent)."""
    if nothing_known:
        return lambda _d: True
    areas = {
        f.path
        for f in findings
        if f.kind is Kind.UNREADABLE and f.path.startswith(BLOBS + "/") and f.path.count("/") >= 2
    }
    if not areas:
        return lambda _d: False

    def unlisted(d: str) -> bool:
        return blob_data(d) in areas or blob_dir(d) in areas or blob_prefix_of(d) in areas

    return unlisted


def load_manifests(
    storage: Storage,
    repositories: dict[str, Repository],
    blobs: dict[str, Blob],
    no_data: set[str],
    out: Out,
    read_chunks: ChunkReader,
    progress: Progress | None,
    unlisted: Callable[[str], bool] = lambda _d: False,
    *,
    chunk: int = MANIFEST_CHUNK,
) -> tuple[dict[str, Manifest], dict[str, str]]:
    """Read and parse each distinct manifest once: every revision, then index children.

    A manifest whose blob folder lies in a part of ``blobs/`` that could not be listed is
    read all the same: if it cannot be read either, it is recorded as unparseable (its
    references are unknown), never as missing.

    ``read_chunks(read, chunks, on_chunk)`` returns ``read(chunk)`` for every chunk in order,
    calling ``on_chunk(i)`` as each is done (in this process, threads or forked helpers);
    ``chunk`` manifests make one chunk."""
    manifests: dict[str, Manifest] = {}
    unparseable: dict[str, str] = {}
    owner: dict[str, str] = {}
    wanted: list[str] = []
    for repo in repositories.values():
        for d in sorted(repo.revision_digests()):
            if d not in owner:
                owner[d] = repo.name
                wanted.append(d)
    total = len(wanted)
    done = 0

    reported = {f.path for f in out.findings if f.kind is Kind.SYMLINK}

    def read_chunk(chunk: list[str]) -> Read:
        return [(d, *read_manifest(storage, d)) for d in chunk]

    while wanted:
        present = [d for d in wanted if d in blobs or unlisted(d)]
        chunks = [present[k : k + chunk] for k in range(0, len(present), chunk)]
        nxt: list[str] = []

        def on_chunk(i: int, chunks: list[list[str]] = chunks, total: int = total) -> None:
            nonlocal done
            done += len(chunks[i])
            if progress:
                progress("manifests", done, total)

        for results in read_chunks(read_chunk, chunks, on_chunk):
            for d, res, linked in results:
                if linked and d in blobs and blob_data(d) not in reported:
                    # Read through, as the registry serves it; a blob gc then never deletes.
                    out.add(Kind.SYMLINK, blob_data(d), SYMLINK_FOLLOWED, digest=d, blocks=True)
                    target_inside(storage, blob_data(d), out)
                if res is None:  # a lazy scan's blob folder without data
                    if d in blobs:
                        blobs.pop(d)
                        no_data.add(d)
                    continue
                if isinstance(res, Manifest):
                    manifests[d] = res
                    for child in res.children:
                        if child.digest not in owner:
                            owner[child.digest] = owner[d]
                            nxt.append(child.digest)
                else:
                    unparseable[d] = res
                    out.add(
                        Kind.UNPARSEABLE_MANIFEST,
                        blob_data(d),
                        res,
                        digest=d,
                        repo=owner.get(d),
                        blocks=True,
                    )
        total += len(nxt)
        wanted = nxt
    if progress:
        progress("manifests", total, total)
    return manifests, unparseable


def read_manifest(storage: Storage, digest: str) -> tuple[Manifest | str | None, bool]:
    """(the parsed manifest, an error message, or None when the data file does not exist;
    whether the data file is a symbolic link, read through as the registry would)."""
    rel = blob_data(digest)
    linked = False
    try:
        try:
            data, size, _ = storage.read_file(rel, MANIFEST_READ_LIMIT)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            linked = True
            data, size, _ = storage.read_file(rel, MANIFEST_READ_LIMIT, follow=True)
    except FileNotFoundError:
        return None, linked
    except OSError as exc:
        return f"cannot read manifest: {exc.strerror or exc}", linked
    return manifest_of(data, size), linked


def mapped_reader(pmap: Mapper) -> ChunkReader:
    """Read manifest chunks here (``map``) or in threads (an executor's ``map``)."""

    def read_chunks(
        read: Callable[[list[str]], Read], chunks: list[list[str]], on_chunk: Callable[[int], None]
    ) -> Iterator[Read]:
        for i, result in enumerate(pmap(read, chunks)):
            on_chunk(i)
            yield result

    return read_chunks
