"""Enumerate by listing, for a store where that is cheaper than walking (S3).

:func:`listed_view` lists the whole store once (the backend's parallel
:meth:`~regfs.storage.base.Storage.list_prefix`), then fetches, in parallel threads, the
small files the scan of ``mode`` will read and the listing did not prove
(:mod:`regfs.storage.listed`): tag ``current`` links, upload ``startedat`` files, and links
whose ETag is not the MD5 of the digest their folder names. The scan then walks the
in-memory view exactly as it walks a folder tree, so a bucket and a folder holding the same
registry give the same snapshot (less what a bucket cannot hold: empty folders, symbolic
links).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from regfs.layout import (
    LINK,
    STARTEDAT,
    LayerLink,
    RevisionLink,
    TagCurrentLink,
    TagIndexLink,
    UploadDir,
    parse_path,
)
from regfs.model.snapshot import ScanMode
from regfs.scan.interpret import LINK_READ_LIMIT
from regfs.scan.loader import Progress
from regfs.storage.base import ObjectInfo, Storage
from regfs.storage.listed import ListedStorage

LIST_PHASE = "list"
PREFETCH_PHASE = "links"


def wanted(files: Iterable[ObjectInfo], mode: ScanMode) -> Iterator[str]:
    """The small files a scan of ``mode`` reads: revision links always, tag ``current``
    links when it reads tags, layer links and tag history entries when it is thorough, and
    every upload's ``startedat``. (The view skips the ones the listing proved.)"""
    for info in files:
        name = info.path.rpartition("/")[2]
        if name != LINK and name != STARTEDAT:
            continue  # (most of a listing: blob data, manifests' data)
        spec = parse_path(info.path)
        if isinstance(spec, RevisionLink):
            yield info.path
        elif isinstance(spec, TagCurrentLink):
            if mode.reads_tags:
                yield info.path
        elif isinstance(spec, LayerLink | TagIndexLink):
            if mode.thorough:
                yield info.path
        elif (
            spec is None
            and info.path.endswith("/" + STARTEDAT)
            and isinstance(parse_path(info.path.rpartition("/")[0]), UploadDir)
        ):
            yield info.path


def listed_view(
    storage: Storage, mode: ScanMode, *, threads: int, progress: Progress | None = None
) -> ListedStorage:
    """``storage`` listed once, with what the scan of ``mode`` reads fetched in parallel.

    ``progress(phase, done, total)`` sees the listing (``list``: entries so far; the total
    is not known, 0) and the fetch (``links``)."""

    def on_listed(n: int) -> None:
        if progress:
            progress(LIST_PHASE, n, 0)

    view = ListedStorage(storage, threads=threads, on_listed=on_listed)
    todo = list(wanted(view.files(), mode))
    if progress:
        progress(PREFETCH_PHASE, 0, len(todo))
    fetched = view.prefetch(todo, LINK_READ_LIMIT)
    if progress:
        progress(PREFETCH_PHASE, fetched, fetched)
    return view
