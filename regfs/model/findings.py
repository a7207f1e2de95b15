"""Findings: every problem a scan or check meets is a value, never an exception."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The kinds of problem regfs reports; the values are stable JSON strings."""

    EMPTY_LINK = "empty_link"
    BAD_LINK = "bad_link"
    UNKNOWN_ALGORITHM = "unknown_algorithm"
    LINK_MISMATCH = "link_mismatch"
    MISSING_LINK = "missing_link"
    MISSING_DATA = "missing_data"
    EMPTY_BLOB = "empty_blob"
    BAD_NAME = "bad_name"
    UNKNOWN_ENTRY = "unknown_entry"
    SYMLINK = "symlink"
    UNREADABLE = "unreadable"
    UNPARSEABLE_MANIFEST = "unparseable_manifest"
    BAD_UPLOAD = "bad_upload"
    # Graph-level problems, found after marking.
    DANGLING = "dangling"
    # Found by `regfs check`.
    BROKEN_TAG = "broken_tag"
    # A warning, not damage: an index some of whose children the repository does not hold
    # (a v3 sparse index, a child deleted by digest); the platforms present still pull.
    PARTIAL_INDEX = "partial_index"
    UNLINKED_BLOB = "unlinked_blob"
    DIGEST_MISMATCH = "digest_mismatch"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, located by a path relative to the ``docker/registry/v2`` folder.

    ``blocks_gc`` is true when the problem leaves the reference graph incomplete (something
    that may hold references could not be read), so garbage collection must fail closed.
    """

    kind: Kind
    path: str
    message: str
    digest: str | None = None
    repository: str | None = None
    blocks_gc: bool = False

    def as_dict(self) -> dict[str, object]:
        """The finding as its ``--json`` object (keys in their documented order)."""
        out: dict[str, object] = {
            "kind": str(self.kind),
            "path": self.path,
            "message": self.message,
        }
        if self.digest is not None:
            out["digest"] = self.digest
        if self.repository is not None:
            out["repository"] = self.repository
        out["blocks_gc"] = self.blocks_gc
        return out
