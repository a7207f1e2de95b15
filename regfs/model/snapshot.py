"""What a scan saw: repositories, links, tags, uploads, blobs, manifests and findings.

Plain slotted dataclasses; dict keys are digests named by folder names, ``Link.digest`` is what
the link file holds (None when it could not be read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from regfs.model.findings import Finding
from regfs.model.manifest import Manifest

_UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def upload_id_time(uuid: str) -> float | None:
    """When an upload id was made (Unix seconds), for the UUIDv7 ids registry v3 hands out:
    their first 48 bits are the creation time in milliseconds. None for any other id (2.x
    uses UUIDv4, which carries no time)."""
    u = uuid.lower()
    if not _UUID7.fullmatch(u):
        return None
    return int(u[:8] + u[9:13], 16) / 1000.0


class LinkState(Enum):
    """How much is known of a link file."""

    # Its content was read: ``digest`` is what it names, None when it could not be read or
    # parsed (unreadable, empty, garbage: the registry cannot use it either).
    READ = "read"
    # Not read (the scan mode skips it): known by its folder only. ``digest`` is the digest
    # the folder names (None for a tag's ``current`` link); ``mtime`` is unknown (0.0).
    NOT_READ = "not_read"


@dataclass(slots=True)
class Link:
    """A link file: the digest its content names, its mtime, and whether it was read.

    ``Link(d, mtime)``: read, names ``d``. ``Link(None, mtime)``: read, unusable
    (:attr:`unreadable`). ``not_read(d)``: known by name only (:attr:`not_read`).
    """

    digest: str | None
    mtime: float
    state: LinkState = LinkState.READ

    @property
    def unreadable(self) -> bool:
        """Read, and its content is unknown: it could not be read or parsed."""
        return self.digest is None and self.state is LinkState.READ

    @property
    def not_read(self) -> bool:
        """Known by name only: the scan mode did not read it (see :class:`LinkState`)."""
        return self.state is LinkState.NOT_READ

    @property
    def target_unknown(self) -> bool:
        """What it points to is not known: unreadable, or a tag's link that was not read."""
        return self.digest is None


class LinkNotRead(LookupError):
    """What a link names was asked for while the scan mode did not read it (a program error:
    a names-only snapshot given to a consumer that needs tag targets)."""


def not_read(digest: str | None) -> Link:
    """A link known by its folder only (``digest``: the folder's digest; None for a tag)."""
    return Link(digest, 0.0, LinkState.NOT_READ)


@dataclass(slots=True)
class Tag:
    """A tag: its ``current`` link (None: the tag folder has none) and its history."""

    name: str
    current: Link | None = None
    index: dict[str, Link] = field(default_factory=dict)

    @property
    def target(self) -> str | None:
        """The digest its ``current`` link names; None when it has none or it is unreadable.

        Raises :class:`LinkNotRead` for a tag known by name only (a scan that did not read
        tag links): what it points to is not known, which is not the same as unreadable."""
        cur = self.current
        if cur is None:
            return None
        if cur.not_read:
            raise LinkNotRead(f"tag {self.name}: its current link was not read")
        return cur.digest


@dataclass(slots=True)
class Upload:
    """An unfinished upload: ``_uploads/<uuid>/``.

    ``started_at`` is what its ``startedat`` file says (None: no such file, or unreadable);
    ``size`` the bytes of its ``data``; ``mtime`` the newest mtime of its files.
    """

    uuid: str
    started_at: datetime | None
    size: int
    mtime: float

    @property
    def started(self) -> float:
        """When the upload started, as best known (Unix seconds); see :attr:`started_from`."""
        if self.started_at is not None:
            return self.started_at.timestamp()
        from_id = upload_id_time(self.uuid)
        return self.mtime if from_id is None else from_id

    @property
    def started_from(self) -> str:
        """Where :attr:`started` comes from: ``startedat`` (the registry's clock, written when
        the upload began), ``upload_id`` (a UUIDv7 id, registry v3), or ``mtime`` (neither:
        the newest file, i.e. when it was last written; a copy or a checkout that refreshes
        mtimes makes it look young)."""
        if self.started_at is not None:
            return "startedat"
        return "upload_id" if upload_id_time(self.uuid) is not None else "mtime"


@dataclass(slots=True)
class Repository:
    """One repository; dict keys are the digests named by folder names."""

    name: str
    has_manifests: bool = False
    has_layers: bool = False
    has_uploads: bool = False
    revisions: dict[str, Link] = field(default_factory=dict)
    layers: dict[str, Link] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    # True when part of the repository could not be read: its references are not all known.
    incomplete: bool = False

    def revision_digests(self) -> set[str]:
        """Every manifest the repository holds: folder names and link contents."""
        out = set(self.revisions)
        out.update(link.digest for link in self.revisions.values() if link.digest)
        return out


class SizeUnknown(LookupError):
    """A blob's size was asked for while it is known by folder name only (a lazy scan that
    did not refresh it): a program error, never a size of -1 passed on."""


@dataclass(slots=True)
class Blob:
    """A blob folder with its ``data``: size and mtime, or None while known by name only."""

    size: int | None
    mtime: float

    @property
    def known_size(self) -> int:
        """The size of a stat'ed blob; raises :class:`SizeUnknown` for one known by name."""
        if self.size is None:
            raise SizeUnknown("blob known by folder name only: its size was not read")
        return self.size

    @property
    def stated(self) -> bool:
        """Its ``data`` file was stat'ed (size and mtime known)."""
        return self.size is not None


# What a lazy scan records for every blob known by folder name only: one shared object, so it
# must never be mutated (the refresher replaces it with a fresh Blob).
LAZY_BLOB = Blob(None, 0.0)


class ScanMode(Enum):
    """How much of the storage a scan reads; recorded on the :class:`Snapshot` it made.

    ``FULL`` (fsck: ``check``, ``ls``, ``du``, the API) lists every digest folder and reads
    every link, reporting stray files and link contents that disagree with their folder.
    ``FAST`` reads what the graph needs (revision and tag links, manifests) and stats the rest.
    ``LAZY`` is ``FAST`` with blobs and layer links known by folder name only, until a
    refresher stats the few a plan asks about (``gc --delete-untagged``, ``rm``).
    ``TAG_NAMES`` is ``LAZY`` with tags listed by name only, their links and history not read
    (default-mode ``gc``, which never looks at what tags point to).
    """

    FULL = "full"
    FAST = "fast"
    LAZY = "lazy"
    TAG_NAMES = "tag_names"

    @property
    def thorough(self) -> bool:
        """Every folder listed and every link read (fsck)."""
        return self is ScanMode.FULL

    @property
    def lazy(self) -> bool:
        """Blobs and layer links known by folder name only until refreshed."""
        return self in (ScanMode.LAZY, ScanMode.TAG_NAMES)

    @property
    def reads_tags(self) -> bool:
        """Tag links (current and history) are read, not only tag names listed."""
        return self is not ScanMode.TAG_NAMES


@dataclass(slots=True)
class Snapshot:
    """Everything a scan saw. Paths in findings are relative to ``v2``: where the store's
    ``docker/registry/v2`` is (a folder's path, or ``s3://BUCKET/PREFIX/docker/registry/v2``)."""

    v2: str
    blobs: dict[str, Blob]
    repositories: dict[str, Repository]
    manifests: dict[str, Manifest]
    unparseable: dict[str, str]
    findings: list[Finding]
    # Blob folders that exist without a ``data`` file.
    blobs_without_data: set[str]
    # Folders found empty (deleted revisions, finished uploads, ...), relative to ``v2``.
    empty_dirs: list[str] = field(default_factory=list)
    # False when some blob folder could not be listed: blob presence is then not fully known.
    blobs_complete: bool = True
    scanned_at: float = 0.0
    # What the scan read (see ScanMode); a lazy mode knows some blobs and layer links by name.
    mode: ScanMode = ScanMode.FULL

    @property
    def lazy(self) -> bool:
        """Blobs and layer links may be known by name only (see :attr:`ScanMode.lazy`)."""
        return self.mode.lazy

    @property
    def blocking(self) -> list[Finding]:
        """The findings that stop gc (unless forced)."""
        return [f for f in self.findings if f.blocks_gc]


def iter_links(repo: Repository) -> Iterable[tuple[str, str, Link]]:
    """Every link of a repository as (role, folder digest or tag, link)."""
    for d, link in repo.layers.items():
        yield "layer", d, link
    for d, link in repo.revisions.items():
        yield "revision", d, link
    for name, tag in repo.tags.items():
        if tag.current is not None:
            yield "tag", name, tag.current
        for d, link in tag.index.items():
            yield "tag_index", d, link
