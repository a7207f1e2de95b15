"""Reports built from a snapshot and its marks: orphans, untagged manifests, stale uploads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from regfs.defaults import UPLOADS_OLDER_THAN
from regfs.duration import is_older
from regfs.graph.mark import Dangling, Marks, Mode, mark
from regfs.graph.unread import Unread
from regfs.layout import upload_dir
from regfs.model.findings import Finding
from regfs.reports.multipart import MultipartLeftover
from regfs.scan import Snapshot, Upload


@dataclass(frozen=True, slots=True)
class OrphanBlob:
    """A stored blob nothing live needs and nothing unreadable might: ``regfs gc`` deletes it.

    ``size`` is in bytes; ``mtime`` is its ``data`` file's modification time (Unix seconds).
    """

    digest: str
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class UndecidedBlob:
    """A blob nothing readable references that cannot be called orphaned: something regfs
    could not read may reference it (``reason`` names it). gc keeps it."""

    digest: str
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class UntaggedManifest:
    """A revision ``gc --delete-untagged`` removes: no tag reaches it.

    Attributes:
        kind: what it is (:attr:`regfs.model.manifest.Manifest.label`: image, index, list,
            artifact, schema1), or ``unparseable`` / ``missing`` when it cannot be read.
        size: the bytes of its own blob (0 when that is not stored).
        exclusive_bytes: bytes of blobs (its own blob, config, layers) that only untagged
            manifests hold and that this manifest alone references.
        history_tags: tags whose history (``tags/<tag>/index``) still lists it.
    """

    repository: str
    digest: str
    kind: str
    size: int
    exclusive_bytes: int
    history_tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StaleUpload:
    """An unfinished upload started longer ago than ``--uploads-older-than``: gc deletes it.

    Attributes:
        uuid: the upload's id (its folder name under ``_uploads``).
        path: its folder, relative to the storage root.
        started_at: when it started, from ``startedat`` or a UUIDv7 id; None when the age
            comes from mtimes.
        size: the bytes of its ``data`` file.
        age: seconds from its start to the report's time (never negative).
        age_from: what the age was read from: ``startedat``, ``upload_id`` or ``mtime``
            (:attr:`regfs.model.snapshot.Upload.started_from`).
    """

    repository: str
    uuid: str
    path: str
    started_at: datetime | None
    size: int
    age: float = 0.0
    age_from: str = "startedat"


@dataclass(slots=True)
class OrphansReport:
    """What :func:`orphans` found: everything unreferenced, dangling, stale or damaged.

    Attributes:
        untagged_bytes: bytes ``--delete-untagged`` frees beyond the orphans: blobs only
            untagged manifests reach.
        dangling: references to blobs that are not stored (default mode).
        problems: the scan's findings.
        protected_blobs: how many blobs are kept only because something unreadable might
            reference them.
        marks_default: the default-mode marking the report was built from.
        undecidable: those blobs, each with the unreadable part that makes it undecidable.
        unread: every unreadable part that widens what gc keeps (:mod:`regfs.graph.unread`).
        multipart_uploads: a bucket only (None on a filesystem): multipart uploads of
            unfinished uploads started more than ``--uploads-older-than`` ago, invisible to
            listings and billed until aborted.
    """

    orphaned_blobs: list[OrphanBlob]
    untagged_manifests: list[UntaggedManifest]
    untagged_bytes: int
    dangling: list[Dangling]
    stale_uploads: list[StaleUpload]
    problems: list[Finding]
    protected_blobs: int = 0
    marks_default: Marks | None = field(default=None, repr=False)
    undecidable: list[UndecidedBlob] = field(default_factory=list)
    unread: list[Unread] = field(default_factory=list)
    multipart_uploads: list[MultipartLeftover] | None = None

    @property
    def orphaned_bytes(self) -> int:
        """The bytes of the orphaned blobs: what ``regfs gc`` frees."""
        return sum(b.size for b in self.orphaned_blobs)

    @property
    def stale_upload_bytes(self) -> int:
        """The bytes of the stale uploads."""
        return sum(u.size for u in self.stale_uploads)

    @property
    def undecidable_bytes(self) -> int:
        """The bytes of the blobs kept because something unreadable might reference them."""
        return sum(b.size for b in self.undecidable)

    @property
    def healthy(self) -> bool:
        """Nothing dangling, no finding, no undecidable blob (``regfs orphans`` exits 0, else 1).

        Orphans, untagged manifests and stale uploads are what the report is for: not damage.
        """
        return not self.dangling and not self.problems and not self.undecidable


def orphaned_blobs(snap: Snapshot, marks: Marks) -> list[OrphanBlob]:
    """Blobs no live manifest needs and nothing unreadable might need, by digest."""
    return [
        OrphanBlob(d, b.known_size, b.mtime)
        for d, b in sorted(snap.blobs.items())
        if not marks.keeps(d)
    ]


def undecided_blobs(snap: Snapshot, marks: Marks) -> list[UndecidedBlob]:
    """Blobs no live manifest needs but something unreadable might, with the reason."""
    out = []
    for d, b in sorted(snap.blobs.items()):
        why = marks.undecided_reason(d)
        if why is not None:
            out.append(UndecidedBlob(d, b.known_size, why))
    return out


def manifest_closure(snap: Snapshot, digest: str, *, into: set[str] | None = None) -> set[str]:
    """The manifest's own blob, its config and layers (not its children).

    ``into`` collects closures in one set (gc unions thousands of them) and is returned."""
    out = set() if into is None else into
    out.add(digest)
    m = snap.manifests.get(digest)
    if m is not None:
        if m.config is not None:
            out.add(m.config.digest)
        out.update([desc.digest for desc in m.layers])
    return out


def untagged_manifests(
    snap: Snapshot, default: Marks, untagged: Marks
) -> tuple[list[UntaggedManifest], int]:
    """Manifests `--delete-untagged` removes, and the bytes it frees beyond orphans."""
    freed = {d for d in default.marked if d in snap.blobs and not untagged.keeps(d)}
    rows: list[tuple[str, str, set[str]]] = []
    holders: dict[str, int] = {}
    for repo_name, live in default.live.items():
        repo = snap.repositories[repo_name]
        for d in sorted(live):
            if untagged.is_live(repo_name, d) or d not in repo.revision_digests():
                continue
            closure = manifest_closure(snap, d) & freed
            rows.append((repo_name, d, closure))
            for b in closure:
                holders[b] = holders.get(b, 0) + 1
    out = []
    for repo_name, d, closure in rows:
        repo = snap.repositories[repo_name]
        m = snap.manifests.get(d)
        kind = m.label if m else ("unparseable" if d in snap.unparseable else "missing")
        size = snap.blobs[d].known_size if d in snap.blobs else 0
        excl = sum(snap.blobs[b].known_size for b in closure if holders[b] == 1)
        hist = tuple(sorted(t for t, tag in repo.tags.items() if d in tag.index))
        out.append(UntaggedManifest(repo_name, d, kind, size, excl, hist))
    return out, sum(snap.blobs[d].known_size for d in freed)


def upload_is_stale(up: Upload, older_than: float, now: float) -> bool:
    """The one rule for stale uploads (``orphans`` reports them, ``gc`` deletes them): started
    (:attr:`Upload.started`) more than ``older_than`` seconds before ``now``. ``0`` is no
    limit (:func:`regfs.duration.is_older`): every unfinished upload is stale."""
    return is_older(now - up.started, older_than)


def stale_uploads(snap: Snapshot, older_than: float, now: float | None = None) -> list[StaleUpload]:
    """Unfinished uploads that :func:`upload_is_stale` calls stale, by repository and id."""
    at = snap.scanned_at if now is None else now
    out = []
    for repo in snap.repositories.values():
        for up in sorted(repo.uploads.values(), key=lambda u: u.uuid):
            if not upload_is_stale(up, older_than, at):
                continue
            source = up.started_from
            started = up.started_at
            if source == "upload_id":
                started = datetime.fromtimestamp(up.started, UTC)
            path = upload_dir(repo.name, up.uuid)
            out.append(
                StaleUpload(
                    repo.name, up.uuid, path, started, up.size, max(0.0, at - up.started), source
                )
            )
    return out


def orphans(
    snap: Snapshot, *, uploads_older_than: float = UPLOADS_OLDER_THAN, now: float | None = None
) -> OrphansReport:
    """Everything unreferenced, dangling, stale or damaged, as one report."""
    default = mark(snap, Mode.DEFAULT)
    untagged = mark(snap, Mode.UNTAGGED)
    rows, untagged_bytes = untagged_manifests(snap, default, untagged)
    undecided = undecided_blobs(snap, default)
    return OrphansReport(
        orphaned_blobs=orphaned_blobs(snap, default),
        untagged_manifests=rows,
        untagged_bytes=untagged_bytes,
        dangling=default.dangling,
        stale_uploads=stale_uploads(snap, uploads_older_than, now),
        problems=list(snap.findings),
        protected_blobs=len(undecided),
        marks_default=default,
        undecidable=undecided,
        unread=default.unknown.all,
    )


def blob_repositories(snap: Snapshot, marks: Marks) -> dict[str, set[str]]:
    """blob digest -> repositories whose live manifests reference it."""
    out: dict[str, set[str]] = {}
    for repo_name, live in marks.live.items():
        for d in live:
            for b in manifest_closure(snap, d):
                out.setdefault(b, set()).add(repo_name)
    return out


def sum_sizes(snap: Snapshot, digests: Iterable[str]) -> int:
    """The bytes of the stored blobs among ``digests`` (one not stored counts 0).

    Raises:
        SizeUnknown: a blob known by folder name only (a lazy scan, not refreshed).
    """
    return sum(snap.blobs[d].known_size for d in digests if d in snap.blobs)
