"""``regfs du``: where the disk went, per repository and per tag. Each blob counts once.

Per repository, its blob set is what keeps blobs alive in ``regfs gc`` (default mode, every
revision a root): the manifests it holds (index children recursively), their configs and layers,
plus, when part of the repository cannot be read, every blob it links (gc keeps those too).

* ``total_bytes``: the repository's blob set;
* ``shared_bytes``: the part some other repository also keeps;
* ``exclusive_bytes``: the rest, which is exactly what ``regfs rm REPO`` followed by
  ``regfs gc`` reclaims beyond what ``regfs gc`` alone reclaims;
* ``untagged_bytes``: blobs ``regfs gc --delete-untagged`` frees (beyond plain ``regfs gc``)
  that only this repository's untagged manifests hold.

Per tag (``by="tag"``), within its repository: ``total_bytes`` is everything the tag reaches
(its manifest, index children, referrers, configs, layers); ``exclusive_bytes`` the part no
other tag and no untagged manifest of the repository reaches.

Under damage (see :mod:`regfs.graph.unread`) nothing is guessed: a repository with unreadable parts
is marked ``incomplete`` with the parts named; a folder where a repository could be that
cannot be read is listed in ``unreadable`` (never dropped); blobs that are neither referenced
nor provably orphaned are counted as ``undecidable`` (``orphaned_bytes`` counts only what is
proven orphaned).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

from regfs.errors import UsageError
from regfs.graph.mark import Mode, mark, referrers_index
from regfs.graph.unread import Unknowns, Unread, unknowns
from regfs.scan import Repository, Snapshot

SORT_FIELDS = ("name", "total", "shared", "exclusive", "untagged")
BY_VALUES = ("repo", "tag")


@dataclass(frozen=True, slots=True)
class TagUsage:
    """The disk usage of one tag, within its repository (``du --by tag``).

    Attributes:
        digest: the manifest the tag points at, or None when its link cannot be read (both
            sizes are then 0).
        total_bytes: the stored blobs the tag reaches (its manifest, index children,
            referrers, configs, layers).
        exclusive_bytes: the part of those no other tag and no untagged manifest of the
            repository reaches.
    """

    name: str
    digest: str | None
    total_bytes: int
    exclusive_bytes: int


@dataclass(slots=True)
class RepoUsage:
    """The disk usage of one repository (the byte figures are defined in the module docstring).

    Attributes:
        manifests: its revisions (manifests it holds a revision link for).
        tags: its tags.
        blobs: the stored blobs in its blob set (what it keeps alive in gc's default mode).
        tag_usage: per tag with ``by="tag"`` (sorted by name, by total, or else by exclusive
            bytes); None with ``by="repo"``.
        unread: paths of its parts that could not be read (its sizes are then a lower bound).
    """

    name: str
    total_bytes: int
    shared_bytes: int
    exclusive_bytes: int
    untagged_bytes: int
    manifests: int
    tags: int
    blobs: int
    tag_usage: list[TagUsage] | None = None
    unread: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DuReport:
    """What :func:`du` measured: the store as a whole and one row per repository.

    Attributes:
        repositories: the rows, sorted by ``sort`` and cut to ``top``.
        disk_bytes: the bytes of every stored blob; ``disk_blobs`` counts them.
        referenced_bytes: the bytes of blobs some repository keeps alive (default mode).
        orphaned_bytes: the bytes proven orphaned: neither referenced nor undecidable.
        untagged_bytes: the bytes ``gc --delete-untagged`` frees beyond plain ``gc``.
        repo_total_bytes: the sum of every repository's ``total_bytes`` (before ``top``), for
            :attr:`dedup_ratio`.
        repository_count: every repository in the store (before ``top``).
        by: ``repo`` or ``tag`` (:data:`BY_VALUES`); ``sort`` and ``top`` as given.
        problems: how many findings the scan made.
        notes: remarks for the reader (nothing fills them today).
        undecidable_bytes: blobs neither referenced nor provably orphaned (something
            unreadable may need them), and ``undecidable_blobs`` their count.
        unread: every unreadable part that widens what gc keeps (:mod:`regfs.graph.unread`).
        unreadable_repositories: those of them that are folders where repositories could be
            (listed, never dropped).
    """

    repositories: list[RepoUsage]
    disk_bytes: int
    disk_blobs: int
    referenced_bytes: int
    orphaned_bytes: int
    untagged_bytes: int
    repo_total_bytes: int
    repository_count: int
    by: str = "repo"
    sort: str = "exclusive"
    top: int | None = None
    problems: int = 0
    notes: list[str] = field(default_factory=list)
    undecidable_bytes: int = 0
    undecidable_blobs: int = 0
    unread: list[Unread] = field(default_factory=list)
    unreadable_repositories: list[Unread] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Everything was read: no figure is a lower bound (``regfs du`` exits 0, else 1)."""
        return not self.unread

    @property
    def dedup_ratio(self) -> float:
        """Bytes the repositories would take without sharing, over the bytes they do take."""
        if self.referenced_bytes <= 0:
            return 1.0
        return self.repo_total_bytes / self.referenced_bytes


def validate_du_options(*, by: str, sort: str, top: int | None) -> None:
    """Raise :class:`UsageError` for a bad ``--by``, ``--sort`` or ``--top``."""
    if by not in BY_VALUES:
        raise UsageError(f"--by must be one of {', '.join(BY_VALUES)}, not {by!r}")
    if sort not in SORT_FIELDS:
        raise UsageError(f"--sort must be one of {', '.join(SORT_FIELDS)}, not {sort!r}")
    if top is not None and top < 1:
        raise UsageError(f"--top must be a positive number, not {top}")


def repo_keeps(snap: Snapshot, mode: Mode, unknown: Unknowns | None = None) -> dict[str, set[str]]:
    """repository -> the stored blobs it keeps alive in ``mode`` (marked or protected by its
    own unreadable manifests).

    Marking is per repository, so keeping each repository's marks apart tells exactly what
    removing it would change. What keeps every blob (an unreadable repository, say) belongs to
    no repository: :func:`du` reports it as undecidable instead.
    """
    unknown = unknowns(snap) if unknown is None else unknown
    out: dict[str, set[str]] = {}
    for name, repo in snap.repositories.items():
        alone = dataclasses.replace(snap, repositories={name: repo})
        marks = mark(alone, mode, unknown=unknown.only(name))
        out[name] = {d for d in marks.marked | marks.protected.keys() if d in snap.blobs}
    return out


def du(
    snap: Snapshot, *, by: str = "repo", sort: str = "exclusive", top: int | None = None
) -> DuReport:
    """Disk usage of ``snap``; ``sort`` is one of :data:`SORT_FIELDS`, ``by`` ``repo``/``tag``."""
    validate_du_options(by=by, sort=sort, top=top)
    size = {d: b.known_size for d, b in snap.blobs.items()}
    unknown = unknowns(snap)
    keep = repo_keeps(snap, Mode.DEFAULT, unknown)
    keep_untagged = repo_keeps(snap, Mode.UNTAGGED, unknown)
    holders: dict[str, set[str]] = {}
    for name, blobs in keep.items():
        for d in blobs:
            holders.setdefault(d, set()).add(name)
    referenced = set(holders)
    kept_untagged: set[str] = set().union(*keep_untagged.values()) if keep_untagged else set()
    freed_untagged = referenced - kept_untagged
    rows: list[RepoUsage] = []
    for name, repo in snap.repositories.items():
        blobs = keep[name]
        total = sum(size[d] for d in blobs)
        exclusive = sum(size[d] for d in blobs if len(holders[d]) == 1)
        untagged = sum(size[d] for d in blobs & freed_untagged if len(holders[d]) == 1)
        row = RepoUsage(
            name=name,
            total_bytes=total,
            shared_bytes=total - exclusive,
            exclusive_bytes=exclusive,
            untagged_bytes=untagged,
            manifests=len(repo.revision_digests()),
            tags=len(repo.tags),
            blobs=len(blobs),
            unread=sorted({u.path for u in unknown.all if u.repository == name}),
        )
        if by == "tag":
            row.tag_usage = _tag_usage(snap, repo, size, sort)
        rows.append(row)
    repo_total = sum(r.total_bytes for r in rows)
    rows = sort_rows(rows, sort)
    if top is not None:
        rows = rows[:top]
    disk = sum(size.values())
    ref_bytes = sum(size[d] for d in referenced)
    # Unreferenced blobs that something unreadable may need are not orphans.
    if unknown.everything:
        undecided = set(size) - referenced
    else:
        whole = mark(snap, Mode.DEFAULT, unknown=unknown)
        undecided = {d for d in size if d not in referenced and whole.keeps(d)}
    undecided_bytes = sum(size[d] for d in undecided)
    return DuReport(
        repositories=rows,
        disk_bytes=disk,
        disk_blobs=len(size),
        referenced_bytes=ref_bytes,
        orphaned_bytes=disk - ref_bytes - undecided_bytes,
        undecidable_bytes=undecided_bytes,
        undecidable_blobs=len(undecided),
        unread=unknown.all,
        unreadable_repositories=[
            u
            for u in unknown.everything
            if (u.path == "repositories" or u.path.startswith("repositories/"))
            and u.repository is None
        ],
        untagged_bytes=sum(size[d] for d in freed_untagged),
        repo_total_bytes=repo_total,
        repository_count=len(snap.repositories),
        by=by,
        sort=sort,
        top=top,
        problems=len(snap.findings),
    )


def sort_rows(rows: list[RepoUsage], sort: str) -> list[RepoUsage]:
    """``rows`` in ``--sort`` order, as a new list: by name, or by ``<sort>_bytes``, largest
    first (ties by name). ``sort`` must be one of :data:`SORT_FIELDS`."""
    if sort == "name":
        return sorted(rows, key=lambda r: r.name)
    attr = f"{sort}_bytes"
    return sorted(rows, key=lambda r: (-int(getattr(r, attr)), r.name))


# --- per tag --------------------------------------------------------------------------------


def reach(
    snap: Snapshot, digest: str, referrers: dict[str, list[str]], served: set[str] | None = None
) -> tuple[set[str], set[str]]:
    """(manifests, blobs) a manifest reaches: itself, index children and referrers
    (recursively), configs and layers. Blobs include manifests, stored or not. With
    ``served`` (the repository's revisions), a manifest that is not among them counts as its
    own blob only, as gc keeps it (:mod:`regfs.graph.mark`'s servable rule)."""
    manifests: set[str] = set()
    blobs: set[str] = set()
    queue = deque([digest])
    while queue:
        d = queue.popleft()
        if d in manifests or d in blobs:
            continue
        blobs.add(d)
        if served is not None and d not in served:
            continue
        manifests.add(d)
        m = snap.manifests.get(d)
        if m is not None:
            blobs.update(desc.digest for desc in m.blob_refs())
            queue.extend(c.digest for c in m.children)
        queue.extend(referrers.get(d, ()))
    return manifests, blobs


def _tag_usage(snap: Snapshot, repo: Repository, size: dict[str, int], sort: str) -> list[TagUsage]:
    referrers = referrers_index(snap, repo)
    served = None if repo.incomplete else repo.revision_digests()
    per_tag: dict[str, tuple[str | None, set[str]]] = {}
    tagged_manifests: set[str] = set()
    for name, tag in sorted(repo.tags.items()):
        target = tag.target
        if target is None:
            per_tag[name] = (None, set())
            continue
        manifests, blobs = reach(snap, target, referrers, served)
        tagged_manifests |= manifests
        per_tag[name] = (target, blobs)
    # What the repository's untagged manifests reach is not any tag's alone.
    untagged_blobs: set[str] = set()
    for d in sorted(repo.revision_digests() - tagged_manifests):
        untagged_blobs |= reach(snap, d, referrers, served)[1]
    count: dict[str, int] = {}
    for _target, blobs in per_tag.values():
        for d in blobs:
            count[d] = count.get(d, 0) + 1
    out = []
    for name, (target, blobs) in per_tag.items():
        stored = [d for d in blobs if d in size]
        own = [d for d in stored if count[d] == 1 and d not in untagged_blobs]
        out.append(TagUsage(name, target, sum(size[d] for d in stored), sum(size[d] for d in own)))
    if sort == "name":
        return sorted(out, key=lambda t: t.name)
    if sort == "total":
        return sorted(out, key=lambda t: (-t.total_bytes, t.name))
    return sorted(out, key=lambda t: (-t.exclusive_bytes, t.name))
