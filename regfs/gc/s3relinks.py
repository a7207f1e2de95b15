"""What was linked since the scan, on a bucket: :mod:`regfs.gc.relinks` from one parallel
listing of ``repositories/`` instead of a walk folder by folder (a delimiter listing per
folder would cost a request per repository level).

Fails closed: a part of ``repositories/`` that cannot be listed raises, and the executor
stops before the step that asked (nothing of it deleted).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from regfs.gc.relinks import referenced_by
from regfs.layout import REPOSITORIES, LayerLink, RevisionLink, parse_path
from regfs.storage.base import ListError
from regfs.storage.s3 import S3Storage


def linked_now(storage: S3Storage) -> tuple[set[str], dict[str, set[str]]]:
    """``(digests with a layer link or revision link anywhere, {repository: revisions})`` as
    the bucket holds them now.

    Raises:
        StorageError: a part of ``repositories/`` could not be listed.
    """
    linked: set[str] = set()
    revisions: dict[str, set[str]] = {}
    for item in storage.list_prefix(REPOSITORIES):
        if isinstance(item, ListError):
            raise item.error
        spec = parse_path(item.path)
        if isinstance(spec, RevisionLink):
            linked.add(spec.digest)
            revisions.setdefault(spec.repo, set()).add(spec.digest)
        elif isinstance(spec, LayerLink):
            linked.add(spec.digest)
    return linked, revisions


def relinked_digests(storage: S3Storage, wanted: set[str]) -> set[str]:
    """Digests in ``wanted`` that some repository links now (layer link or revision)."""
    if not wanted:
        return set()
    linked, _ = linked_now(storage)
    return wanted & linked


def pushed_since(storage: S3Storage, known: Mapping[str, Collection[str]]) -> set[str]:
    """Manifests linked now that ``known`` (repository -> revisions it may hold) does not
    list, with everything they reference (read now, recursively)."""
    _, revisions = linked_now(storage)
    new = {d for repo, revs in revisions.items() for d in revs if d not in known.get(repo, ())}
    return referenced_by(storage, new)
