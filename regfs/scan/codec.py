"""Plain-tuple encoding of scan results, so forked scan workers can hand them back cheaply.

Pickling slotted dataclasses goes through Python-level ``__getstate__`` for every object; plain
tuples of strings and numbers pickle in C.
"""

from __future__ import annotations

import sys
from typing import Any

from regfs.model.findings import Finding, Kind
from regfs.model.manifest import Descriptor, Manifest, ManifestKind
from regfs.model.snapshot import LAZY_BLOB, Blob, Link, LinkState, Repository, Tag, Upload

_READ, _NOT_READ = LinkState.READ, LinkState.NOT_READ
PackedLink = tuple[str | None, float, bool]


def pack_link(link: Link) -> PackedLink:
    """A link as (digest, mtime, read)."""
    return link.digest, link.mtime, link.state is _READ


def unpack_link(t: PackedLink) -> Link:
    """The inverse of :func:`pack_link`."""
    c, m, read = t
    return Link(None if c is None else sys.intern(c), m, _READ if read else _NOT_READ)


def pack_links(links: dict[str, Link]) -> list[tuple[str, str | None, float, bool]]:
    """Links by folder digest as plain tuples."""
    return [(d, link.digest, link.mtime, link.state is _READ) for d, link in links.items()]


def unpack_links(items: list[tuple[str, str | None, float, bool]]) -> dict[str, Link]:
    """The inverse of :func:`pack_links`."""
    return {
        sys.intern(d): Link(None if c is None else sys.intern(c), m, _READ if r else _NOT_READ)
        for d, c, m, r in items
    }


def pack_repo(r: Repository) -> tuple[Any, ...]:
    """A repository as nested plain tuples."""
    tags = [
        (
            t.name,
            None if t.current is None else pack_link(t.current),
            pack_links(t.index),
        )
        for t in r.tags.values()
    ]
    uploads = [(u.uuid, u.started_at, u.size, u.mtime) for u in r.uploads.values()]
    return (
        r.name,
        r.has_manifests,
        r.has_layers,
        r.has_uploads,
        r.incomplete,
        pack_links(r.revisions),
        pack_links(r.layers),
        tags,
        uploads,
    )


def unpack_repo(t: tuple[Any, ...]) -> Repository:
    """The inverse of :func:`pack_repo`."""
    name, hm, hl, hu, incomplete, revisions, layers, tags, uploads = t
    repo = Repository(name, hm, hl, hu, incomplete=incomplete)
    repo.revisions = unpack_links(revisions)
    repo.layers = unpack_links(layers)
    for tname, cur, index in tags:
        current = None if cur is None else unpack_link(cur)
        repo.tags[tname] = Tag(tname, current, unpack_links(index))
    for uuid, started, size, mtime in uploads:
        repo.uploads[uuid] = Upload(uuid, started, size, mtime)
    return repo


def pack_findings(findings: list[Finding]) -> list[tuple[Any, ...]]:
    """Findings as plain tuples."""
    return [(str(f.kind), f.path, f.message, f.digest, f.repository, f.blocks_gc) for f in findings]


def unpack_findings(items: list[tuple[Any, ...]]) -> list[Finding]:
    """The inverse of :func:`pack_findings`."""
    return [Finding(Kind(k), p, m, d, r, b) for k, p, m, d, r, b in items]


def pack_blobs(blobs: dict[str, Blob]) -> list[tuple[str, int | None, float]]:
    """Blobs by digest as plain tuples (size None: known by name only)."""
    return [(d, b.size, b.mtime) for d, b in blobs.items()]


def unpack_blobs(items: list[tuple[str, int | None, float]]) -> dict[str, Blob]:
    """The inverse of :func:`pack_blobs` (one shared LAZY_BLOB for blobs known by name)."""
    return {
        sys.intern(d): LAZY_BLOB if size is None else Blob(size, mtime) for d, size, mtime in items
    }


def pack_manifest(m: Manifest | str | None) -> Any:
    """A manifest (or an error message, or None) as plain tuples."""
    if not isinstance(m, Manifest):
        return m
    return (
        str(m.kind),
        m.media_type,
        None if m.config is None else tuple(m.config),
        [tuple(x) for x in m.layers],
        [tuple(x) for x in m.children],
        m.subject,
        m.artifact_type,
    )


def unpack_manifest(t: Any) -> Manifest | str | None:
    """The inverse of :func:`pack_manifest`."""
    if t is None or isinstance(t, str):
        return t
    kind, media_type, config, layers, children, subject, artifact_type = t

    def desc(x: tuple[Any, ...]) -> Descriptor:
        return Descriptor(sys.intern(x[0]), *x[1:])

    return Manifest(
        ManifestKind(kind),
        media_type,
        None if config is None else desc(config),
        tuple(desc(x) for x in layers),
        tuple(desc(x) for x in children),
        None if subject is None else sys.intern(subject),
        artifact_type,
    )
