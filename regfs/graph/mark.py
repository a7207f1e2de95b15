"""Reachability: which manifests are live and which blobs they need, in two modes.

* ``default``: every revision of every repository is a root, exactly as in
  ``registry garbage-collect``.
* ``untagged``: the roots are the manifests tags point at (``current`` links); index children
  (recursively, in the same repository) and referrers whose ``subject`` is live (transitively)
  are live too.

Marking follows config, layers and children. What cannot be read is never treated as garbage:
what each unreadable part forces to keep is decided by :func:`regfs.graph.unread.unknowns` (the
fail-closed rule, written down there) and applied here: ``Marks.keep_all`` (nothing may be
deleted), ``Marks.protected`` (blobs an unreadable manifest may reference) and extra roots in
``--delete-untagged`` mode.

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

from regfs.graph.unread import Unknowns, Unread, unknowns
from regfs.layout import blob_data, link_file, revision_dir, tag_current_link
from regfs.scan import Repository, Snapshot


class Mode(StrEnum):
    """Which manifests are roots of the marking (see the module docstring).

    ``DEFAULT``: every revision, as ``registry garbage-collect``; ``UNTAGGED``
    (``--delete-untagged``): what tags point at, with their children and referrers.
    """

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
        """This reference as one entry of the ``dangling`` list of ``--json`` documents."""
        return {
            "repository": self.repository,
            "kind": self.kind,
            "digest": self.digest,
            "path": self.path,
            "referrer": self.referrer,
        }


@dataclass(slots=True)
class Marks:
    """The result of one :func:`mark`: what is live, what is kept, what is dangling.

    Attributes:
        mode: the roots this marking started from.
        live: repository -> live manifest digest -> why it is live (``"tag latest"``,
            ``"child of sha256:..."``, ``"kept: young"``, ...).
        marked: every blob digest something live needs (manifests, configs, layers), and the
            blobs of index children or tag targets that are named but not servable.
        protected: blob digest -> why it is kept although unmarked: something unreadable
            might reference it.
        dangling: references to blobs whose data is not in the store, sorted.
        unknown: what could not be read and what it forces to keep
            (:mod:`regfs.graph.unread`).
    """

    mode: Mode
    live: dict[str, dict[str, str]] = field(default_factory=dict)
    marked: set[str] = field(default_factory=set)
    protected: dict[str, str] = field(default_factory=dict)
    dangling: list[Dangling] = field(default_factory=list)
    unknown: Unknowns = field(default_factory=Unknowns)

    @property
    def keep_all(self) -> list[Unread]:
        """Unreadable parts that keep every blob: while non-empty, no blob may be deleted."""
        return self.unknown.everything

    def is_live(self, repo: str, digest: str) -> bool:
        """Whether manifest ``digest`` is live in repository ``repo`` (reached from a root).

        A manifest that is only named (an index child or tag target with no revision link)
        is marked but not live.
        """
        return digest in self.live.get(repo, {})

    def keeps(self, digest: str) -> bool:
        """Whether blob ``digest`` must be kept: marked, protected, or every blob is kept.

        ``False`` means no live manifest needs it and nothing unreadable might: garbage in
        this mode (age and other rules are the planner's business).
        """
        return digest in self.marked or digest in self.protected or bool(self.unknown.everything)

    def undecided_reason(self, digest: str) -> str | None:
        """Why an unmarked blob cannot be decided (kept), or None when it is garbage/live."""
        if digest in self.marked:
            return None
        if self.unknown.everything:
            first = self.unknown.everything[0]
            more = len(self.unknown.everything) - 1
            extra = f" (and {more} more unreadable parts)" if more else ""
            return f"{first.path} cannot be read ({first.reason}){extra}"
        return self.protected.get(digest)


def referrers_index(
    snap: Snapshot, repo: Repository, digests: set[str] | None = None
) -> dict[str, list[str]]:
    """subject digest -> referrer manifest digests stored in this repository (``digests``:
    its :meth:`~regfs.model.snapshot.Repository.revision_digests`, when already known)."""
    out: dict[str, list[str]] = {}
    for d in sorted(repo.revision_digests() if digests is None else digests):
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


def mark(
    snap: Snapshot,
    mode: Mode,
    extra_roots: dict[str, set[str]] | None = None,
    unknown: Unknowns | None = None,
) -> Marks:
    """Mark what is live. ``extra_roots`` (repository -> digests) are kept live whatever the
    mode, e.g. revisions too young to judge. ``unknown`` defaults to
    :func:`regfs.graph.unread.unknowns` of ``snap``."""
    marks = Marks(mode, unknown=unknowns(snap) if unknown is None else unknown)
    for repo in snap.repositories.values():
        extra = sorted((extra_roots or {}).get(repo.name, ()))
        _mark_repository(snap, repo, mode, marks, extra)
    marks.dangling.sort(key=lambda x: (x.repository, x.kind, x.digest))
    return marks


def _roots(
    snap: Snapshot, repo: Repository, mode: Mode, unknown: Unknowns
) -> list[tuple[str, str, str, str | None]]:
    """(digest, why, referring kind, referring path) for every root of a repository; a path of
    None stands for the digest's own revision link (built only if ever reported)."""
    roots: list[tuple[str, str, str, str | None]] = []
    unknown_tag = False
    if mode is Mode.DEFAULT:
        for d, link in sorted(repo.revisions.items()):
            roots.append((d, "revision", "revision", None))
            if link.digest and link.digest != d:
                roots.append(
                    (link.digest, "revision", "revision", link_file(revision_dir(repo.name, d)))
                )
    else:
        for name, tag in sorted(repo.tags.items()):
            if tag.current is None:
                continue
            if tag.current.not_read or tag.current.digest is None:
                # What it points to is unknown (a names-only scan should not get here, but
                # if it does, every revision stays a root): keep everything it might name.
                unknown_tag = True
                continue
            roots.append(
                (
                    tag.current.digest,
                    f"tag {name}",
                    "tag",
                    tag_current_link(repo.name, name),
                )
            )
        for d in sorted(_unknowable(snap, repo)):
            roots.append((d, "kept: unreadable", "revision", link_file(revision_dir(repo.name, d))))
        if unknown_tag or repo.incomplete or unknown.roots_all_revisions(repo.name):
            # A tag we cannot read may point at any revision, a manifest we cannot read may
            # list any of them as children: keep them all.
            why = (
                "kept: unreadable tag"
                if unknown_tag or repo.name in unknown.tags
                else "kept: unreadable part of the repository"
            )
            for d in sorted(repo.revision_digests()):
                roots.append((d, why, "revision", link_file(revision_dir(repo.name, d))))
    return roots


def _mark_repository(
    snap: Snapshot, repo: Repository, mode: Mode, marks: Marks, extra: list[str]
) -> None:
    live: dict[str, str] = {}
    held = repo.revision_digests()
    referrers = referrers_index(snap, repo, held) if mode is Mode.UNTAGGED else {}
    # What the registry can serve from this repository (see the module docstring); with an
    # unreadable part nothing is known to be unservable.
    servable = None if repo.incomplete else held
    queue: deque[tuple[str, str, str, str | None, str | None]] = deque()
    unknown = marks.unknown
    for d, why, kind, path in _roots(snap, repo, mode, unknown):
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
        m = manifests.get(d)
        if m is None:
            if d not in blobs and d not in snap.unparseable and not unknown.blob_unknown(d):
                where = path if path is not None else link_file(revision_dir(repo.name, d))
                marks.dangling.append(Dangling(repo.name, kind, d, where, referrer))
            continue
        cfg = m.config
        if cfg is not None:
            marked.add(cfg.digest)
            if cfg.digest not in blobs and not cfg.urls and not unknown.blob_unknown(cfg.digest):
                marks.dangling.append(
                    Dangling(repo.name, "config", cfg.digest, blob_data(cfg.digest), d)
                )
        for desc in m.layers:
            marked.add(desc.digest)
            if desc.digest not in blobs and not desc.urls and not unknown.blob_unknown(desc.digest):
                marks.dangling.append(
                    Dangling(repo.name, "layer", desc.digest, blob_data(desc.digest), d)
                )
        for child in m.children:
            queue.append((child.digest, f"child of {d}", "child", blob_data(child.digest), d))
        for r in referrers.get(d, ()):
            queue.append((r, f"referrer of {d}", "referrer", revision_dir(repo.name, r), d))
    marks.live[repo.name] = live
    because = _why_protected(snap, repo, unknown)
    if because is not None:
        protected = marks.protected
        for ld, link in repo.layers.items():
            protected.setdefault(ld, because)
            if link.digest:
                protected.setdefault(link.digest, because)


def _why_protected(snap: Snapshot, repo: Repository, unknown: Unknowns) -> str | None:
    """Why every blob ``repo`` links is kept (a manifest of it may reference any), or None."""
    parts = unknown.manifests.get(repo.name)
    if parts:
        return f"{repo.name}: {parts[0].describe()}; it may reference any blob the repository links"
    if _unknowable(snap, repo):
        return f"{repo.name}: a revision link could not be read"
    # A folder of the repository that could not be listed (repo.incomplete) is a finding
    # that regfs.graph.unread classifies: it keeps everything, or (tags) roots every revision.
    return None
