"""The interpret step of a scan: what was read becomes model values and findings. No I/O.

Link bodies become :class:`~regfs.model.snapshot.Link` values, manifest bytes become
:class:`~regfs.model.manifest.Manifest` values (or the reason they cannot), a blob's listed
size becomes a :class:`~regfs.model.snapshot.Blob`, and the per-task results of the walk are
merged into one :class:`~regfs.model.snapshot.Snapshot`. Everything here works on values the
enumerate step (:mod:`regfs.scan.walk` and the walks built on it) handed over; nothing here
touches storage, so it is tested on bytes alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from regfs.manifests import parse_manifest
from regfs.model.digest import DigestError, parse_digest
from regfs.model.findings import Kind
from regfs.model.manifest import Manifest, ManifestError
from regfs.model.snapshot import Blob, Link, Repository, ScanMode, Snapshot
from regfs.scan.out import Out

# sha256 of zero bytes: a legitimate (empty) blob, not damage.
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LINK_READ_LIMIT = 4096
MANIFEST_READ_LIMIT = 16 << 20
EMPTY_LINK = "empty link file (a crash during a write leaves these)"


def link_of(
    raw: bytes,
    mtime: float,
    rel: str,
    name_digest: str | None,
    out: Out,
    *,
    repo: str,
    blocks: bool,
) -> Link:
    """Strictly parse a link file's content, as the registry does (no trailing newline).

    ``name_digest`` is the digest its folder names (None for a tag's ``current`` link); a
    different content is reported. ``blocks`` says whether garbage content stops gc.
    """
    if not raw:
        out.add(Kind.EMPTY_LINK, rel, EMPTY_LINK, digest=name_digest, repo=repo, blocks=blocks)
        return Link(None, mtime)
    try:
        text = raw.decode("ascii")
        digest = parse_digest(text)
    except UnicodeDecodeError:
        out.add(
            Kind.BAD_LINK,
            rel,
            "link content is not ASCII",
            digest=name_digest,
            repo=repo,
            blocks=blocks,
        )
        return Link(None, mtime)
    except DigestError as exc:
        kind = Kind.UNKNOWN_ALGORITHM if exc.kind == "unknown_algorithm" else Kind.BAD_LINK
        msg = str(exc)
        if text.rstrip("\r\n") != text:
            msg = "link content ends with a newline; the registry cannot parse it"
        out.add(kind, rel, msg, digest=name_digest, repo=repo, blocks=blocks)
        return Link(None, mtime)
    if name_digest is not None and digest != name_digest:
        out.add(
            Kind.LINK_MISMATCH,
            rel,
            f"link names {digest} but its folder names {name_digest}",
            digest=name_digest,
            repo=repo,
            blocks=blocks,
        )
    return Link(digest, mtime)


def blob_of(digest: str, size: int, mtime: float, data_rel: str, out: Out) -> Blob:
    """A blob whose ``data`` file was listed; a zero-byte one is reported (unless it is the
    empty blob, whose digest says it holds nothing)."""
    if size == 0 and digest != EMPTY_SHA256:
        out.add(Kind.EMPTY_BLOB, data_rel, "zero-byte blob data", digest=digest)
    return Blob(size, mtime)


def manifest_of(data: bytes, size: int) -> Manifest | str:
    """A manifest blob's bytes (``size`` is the file's full size) as a model manifest, or
    the message saying why it is not one."""
    if size > MANIFEST_READ_LIMIT:
        return f"manifest larger than {MANIFEST_READ_LIMIT} bytes"
    try:
        return parse_manifest(data)
    except ManifestError as exc:
        return f"unparseable manifest: {exc}"


BlobPart = tuple[dict[str, Blob], set[str], Out, bool]


@dataclass(slots=True)
class Shard:
    """What one scan task (or a batch of them) saw: repositories and blob prefix folders.

    ``blobs`` holds, per prefix folder: blobs by digest, digests of folders without data,
    the task's findings, and whether the folder could be listed completely.
    """

    repos: list[tuple[Repository, Out]]
    blobs: list[BlobPart]


@dataclass(slots=True)
class Merged:
    """The shards of one scan, merged: the input of the manifest phase."""

    repositories: dict[str, Repository]
    blobs: dict[str, Blob]
    no_data: set[str]
    blobs_complete: bool


def merge(shards: list[Shard], out: Out, blobs_complete: bool) -> Merged:
    """Merge per-task results (in task order) into one set; findings go to ``out``."""
    merged = Merged({}, {}, set(), blobs_complete)
    for shard in shards:
        for repo, rout in shard.repos:
            merged.repositories[repo.name] = repo
            out.findings.extend(rout.findings)
            out.empty.extend(rout.empty)
        for part, missing, bout, complete in shard.blobs:
            merged.blobs.update(part)
            merged.no_data.update(missing)
            out.findings.extend(bout.findings)
            out.empty.extend(bout.empty)
            merged.blobs_complete = merged.blobs_complete and complete
    return merged


def snapshot_of(
    v2: str,
    merged: Merged,
    manifests: dict[str, Manifest],
    unparseable: dict[str, str],
    out: Out,
    *,
    scanned_at: float,
    mode: ScanMode,
) -> Snapshot:
    """The snapshot of one scan; findings sorted by path, then kind."""
    snap = Snapshot(
        v2=v2,
        blobs=merged.blobs,
        repositories=dict(sorted(merged.repositories.items())),
        manifests=manifests,
        unparseable=unparseable,
        findings=out.findings,
        blobs_without_data=merged.no_data,
        empty_dirs=sorted(out.empty),
        blobs_complete=merged.blobs_complete,
        scanned_at=scanned_at,
        mode=mode,
    )
    snap.findings.sort(key=lambda f: (f.path, str(f.kind)))
    return snap
