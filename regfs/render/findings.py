"""Findings as text and JSON: one renderer for every command that reports problems."""

from __future__ import annotations

from typing import Any

from regfs.model.findings import Finding, Kind
from regfs.render.base import shorten_digests, wrap_lines

# What each kind of finding is, as a heading in text.
FINDING_TITLES = {
    Kind.BROKEN_TAG: "tags that cannot be pulled",
    Kind.DIGEST_MISMATCH: "blobs whose data does not match their digest",
    Kind.DANGLING: "references to blobs that are not stored",
    Kind.UNLINKED_BLOB: "references the repository does not link",
    Kind.MISSING_DATA: "blob folders without data",
    Kind.UNPARSEABLE_MANIFEST: "manifests that cannot be parsed",
    Kind.LINK_MISMATCH: "links whose content disagrees with their folder",
    Kind.EMPTY_LINK: "empty link files",
    Kind.BAD_LINK: "link files that cannot be parsed",
    Kind.UNKNOWN_ALGORITHM: "digests of an unknown algorithm",
    Kind.MISSING_LINK: "folders without their link file",
    Kind.EMPTY_BLOB: "empty blob data files",
    Kind.BAD_NAME: "entries whose name is not valid",
    Kind.UNKNOWN_ENTRY: "files and folders the registry does not write",
    Kind.SYMLINK: "symbolic links",
    Kind.UNREADABLE: "entries that cannot be read",
    Kind.BAD_UPLOAD: "unfinished uploads that cannot be read",
    Kind.PARTIAL_INDEX: "indexes missing some platforms (the others pull)",
}
# Most serious first: what a reader must see before the rest.
FINDING_ORDER = [Kind.BROKEN_TAG, Kind.DIGEST_MISMATCH, Kind.DANGLING, Kind.UNLINKED_BLOB] + [
    k
    for k in Kind
    if k not in (Kind.BROKEN_TAG, Kind.DIGEST_MISMATCH, Kind.DANGLING, Kind.UNLINKED_BLOB)
]


def problem_dict(f: Finding) -> dict[str, Any]:
    """The one JSON shape of a problem in every command (every key always present)."""
    return {
        "kind": str(f.kind),
        "path": f.path,
        "message": f.message,
        "digest": f.digest,
        "repository": f.repository,
        "blocks_gc": f.blocks_gc,
    }


def findings_lines(findings: list[Finding], width: int) -> list[str]:
    """Findings grouped by kind (most serious first), each path on its own line and the
    message wrapped under it; digests in messages shortened (``--json`` has them whole)."""
    out: list[str] = []
    for kind in FINDING_ORDER:
        found = [f for f in findings if f.kind is kind]
        if not found:
            continue
        title = FINDING_TITLES.get(kind)
        out.append("")
        out.append(f"{kind} ({len(found)})" + (f": {title}" if title else ""))
        for f in found:
            out.append(f"  {f.path}")
            out.extend(wrap_lines(["    " + shorten_digests(f.message)], width))
    return out
