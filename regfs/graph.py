"""Reachability: which manifests are live and which blobs they need, in two modes.

* ``default``: every revision of every repository is a root, exactly as in
  ``registry garbage-collect``.
* ``untagged``: the roots are the manifests tags point at (``current`` links); index children
  (recursively, in the same repository) and referrers whose ``subject`` is live (transitively)
  are live too.

Marking follows config, layers and children. What cannot be read is never treated as garbage:
a revision whose manifest is unparseable or whose link is unreadable stays live in both modes,
and every blob its repository links is protected, since that manifest may reference any of them.

Servable is what counts: the registry serves a manifest of a repository only through that
repository's revision link (``_manifests/revisions/<alg>/<hex>/link``). An index child or a tag
target without one (deleted by digest through the API, or never pushed: a v3 sparse index) can
no longer be pulled, so its own blob is kept (the index or tag still names it, as the reference
keeps it) but nothing below it is marked: its config, layers and children are left to the
sweep, exactly as ``registry garbage-collect`` does in both modes. Such a child is an absent
platform, not a dangling reference. When part of the repository could not be read its revisions
are not all known, and every child is followed as if servable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from regfs.layout import blob_data, revision_dir, tag_dir
from regfs.scan import Repository, Snapshot


class Mode(StrEnum):
    DEFAULT = "default"
    UNTAGGED = "untagged"


@dataclass(frozen=True, slots=True)
class Dangling:
    """A reference to a blob whose data is not in the store.

    ``kind`` is what refers: ``tag`` and ``revision`` (the manifest itself is missing),
    ``config``, ``layer``, ``child`` (an index child).
    """

    repository: str
    kind: str
    digest: str
    path: str
    referrer: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "kind": self.kind,
            "digest": self.digest,
            "path": self.path,
            "referrer": self.referrer,
        }


@dataclass(slots=True)
class Marks:
    mode: Mode
    # repository -> live manifest digest -> why it is live
    live: dict[str, dict[str, str]] = field(default_factory=dict)
    # every blob digest something live needs (manifests, configs, layers)
    marked: set[str] = field(default_factory=set)
    # blobs kept only because something unreadable might reference them
    protected: set[str] = field(default_factory=set)
    dangling: list[Dangling] = field(default_factory=list)

    def is_live(self, repo: str, digest: str) -> bool:
        return digest in self.live.get(repo, {})

    def keeps(self, digest: str) -> bool:
        return digest in self.marked or digest in self.protected


def referrers_index(snap: Snapshot, repo: Repository) -> dict[str, list[str]]:
    """subject digest -> referrer manifest digests stored in this repository."""
    out: dict[str, list[str]] = {}
    for d in sorted(repo.revision_digests()):
        m = snap.manifests.get(d)
        if m is not None and m.subject is not None:
            out.setdefault(m.subject, []).append(d)
    return out


def _unknowable(snap: Snapshot, repo: Repository) -> set[str]:
    """Revisions whose references cannot be known: unreadable link or unparseable manifest."""
    out = set()
    for d, link in repo.revisions.items():
        if link.digest is None:
            out.add(d)
        elif link.digest in snap.unparseable:
            out.add(link.digest)
    return out


def mark(snap: Snapshot, mode: Mode, extra_roots: dict[str, set[str]] | None = None) -> Marks:
    """Mark what is live. ``extra_roots`` (repository -> digests) are kept live whatever the
    mode, e.g. revisions too young to judge."""
    marks = Marks(mode)
    for repo in snap.repositories.values():
        extra = sorted((extra_roots or {}).get(repo.name, ()))
        _mark_repository(snap, repo, mode, marks, extra)
    marks.dangling.sort(key=lambda x: (x.repository, x.kind, x.digest))
    return marks


def _roots(snap: Snapshot, repo: Repository, mode: Mode) -> list[tuple[str, str, str, str | None]]:
    """(digest, why, referring kind, referring path) for every root of a repository; a path of
    None stands for the digest's own revision link (built only if ever reported)."""
    roots: list[tuple[str, str, str, str | None]] = []
    unknown_tag = False
    if mode is Mode.DEFAULT:
        for d, link in sorted(repo.revisions.items()):
            roots.append((d, "revision", "revision", None))
            if link.digest and link.digest != d:
                roots.append(
                    (link.digest, "revision", "revision", revision_dir(repo.name, d) + "/link")
                )
    else:
        for name, tag in sorted(repo.tags.items()):
            if tag.current is None:
                continue
            if tag.current.digest is None:
                unknown_tag = True
                continue
            roots.append(
                (
                    tag.current.digest,
                    f"tag {name}",
                    "tag",
                    tag_dir(repo.name, name) + "/current/link",
                )
            )
        if unknown_tag or repo.incomplete:
            # A tag we cannot read may point at any revision: keep them all.
            for d in sorted(repo.revision_digests()):
                roots.append(
                    (d, "kept: unreadable tag", "revision", revision_dir(repo.name, d) + "/link")
                )
        for d in sorted(_unknowable(snap, repo)):
            roots.append((d, "kept: unreadable", "revision", revision_dir(repo.name, d) + "/link"))
    return roots


def _mark_repository(
    snap: Snapshot, repo: Repository, mode: Mode, marks: Marks, extra: list[str]
) -> None:
    live: dict[str, str] = {}
    referrers = referrers_index(snap, repo) if mode is Mode.UNTAGGED else {}
    # What the registry can serve from this repository (see the module docstring); with an
    # unreadable part nothing is known to be unservable.
    servable = None if repo.incomplete else repo.revision_digests()
    queue: deque[tuple[str, str, str, str | None, str | None]] = deque()
    for d, why, kind, path in _roots(snap, repo, mode):
        queue.append((d, why, kind, path, None))
    for d in extra:
        queue.append((d, "kept: young", "revision", None, None))
    # The hot loop of every gc: names bound locally, each reference checked once.
    blobs, manifests, marked = snap.blobs, snap.manifests, marks.marked
    while queue:
        d, why, kind, path, referrer = queue.popleft()
        if d in live:
            continue
        if servable is not None and d not in servable:
            # Named by an index or a tag but not servable: keep its blob, mark nothing below.
            marked.add(d)
            continue
        live[d] = why
        marked.add(d)
        if d not in blobs:
            if d not in snap.unparseable:
                where = path if path is not None else revision_dir(repo.name, d) + "/link"
                marks.dangling.append(Dangling(repo.name, kind, d, where, referrer))
            continue
        m = manifests.get(d)
        if m is None:
            continue
        cfg = m.config
        if cfg is not None:
            marked.add(cfg.digest)
            if cfg.digest not in blobs and not cfg.urls:
                marks.dangling.append(
                    Dangling(repo.name, "config", cfg.digest, blob_data(cfg.digest), d)
                )
        for desc in m.layers:
            marked.add(desc.digest)
            if desc.digest not in blobs and not desc.urls:
                marks.dangling.append(
                    Dangling(repo.name, "layer", desc.digest, blob_data(desc.digest), d)
                )
        for child in m.children:
            queue.append((child.digest, f"child of {d}", "child", blob_data(child.digest), d))
        for r in referrers.get(d, ()):
            queue.append((r, f"referrer of {d}", "referrer", revision_dir(repo.name, r), d))
    marks.live[repo.name] = live
    if repo.incomplete or _unknowable(snap, repo):
        for ld, link in repo.layers.items():
            marks.protected.add(ld)
            if link.digest:
                marks.protected.add(link.digest)
