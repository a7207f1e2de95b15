"""Abandoned multipart uploads in a bucket: the part of an unfinished blob upload that S3 bills
and no listing shows.

On S3 the registry writes an upload's ``_uploads/<uuid>/data`` as a multipart upload, invisible
to ``ListObjects`` until completed. Its purger deletes only the visible ``startedat`` and
``hashstates/...``; the parts stay, billed, until ``AbortMultipartUpload`` (Harbor #17651).
This lists them (``ListMultipartUploads`` under ``repositories/``, ``ListParts`` for their
bytes, both in parallel) as values: the orphans report shows those older than
``--uploads-older-than``, and gc aborts them (:mod:`regfs.gc.multipart`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regfs.duration import is_older
from regfs.layout import DATA, REPOSITORIES, upload_dir
from regfs.layout.folders import Level, parse_folder
from regfs.model.findings import Finding, Kind
from regfs.scan import Snapshot
from regfs.storage.base import StorageError
from regfs.storage.s3 import MultipartUpload, S3Storage
from regfs.storage.s3batch import parallel

if TYPE_CHECKING:
    from regfs.reports.orphans import OrphansReport


@dataclass(frozen=True, slots=True)
class MultipartLeftover:
    """One multipart upload of an unfinished blob upload's ``data``.

    ``path`` is the upload's folder (relative to v2); ``has_folder`` whether its visible
    files (``startedat``, ``hashstates``) are still there (False: the registry's purger, or
    someone, removed them and the parts alone are left). ``size`` is the bytes of its parts.
    """

    repository: str
    uuid: str
    path: str
    upload_id: str
    initiated: float
    size: int
    has_folder: bool
    # Seconds between its start and the listing (never negative).
    age: float = 0.0

    @property
    def upload(self) -> MultipartUpload:
        """The storage's handle, to abort it."""
        return MultipartUpload(f"{self.path}/{DATA}", self.upload_id, self.initiated)


def _folders(snap: Snapshot) -> set[str]:
    return {
        upload_dir(name, uuid) for name, repo in snap.repositories.items() for uuid in repo.uploads
    }


def multipart_leftovers(
    storage: S3Storage,
    snap: Snapshot | None,
    *,
    older_than: float,
    now: float | None = None,
) -> list[MultipartLeftover]:
    """Multipart uploads of upload ``data`` started more than ``older_than`` seconds before
    ``now`` (0: every one), by path. ``snap`` (the scan of the same store) tells which upload
    folders still have visible files; without it, none is assumed to.

    A multipart upload anywhere else under ``repositories/`` is not an upload's data and is
    not reported (nor ever aborted).

    Raises:
        StorageError: the multipart uploads could not be listed.
    """
    now = time.time() if now is None else now
    folders = _folders(snap) if snap is not None else set()
    found: list[tuple[MultipartUpload, str, str, str]] = []
    for up in storage.multipart_uploads(REPOSITORIES):
        folder, _, name = up.path.rpartition("/")
        spec = parse_folder(folder)
        if name != DATA or spec is None or spec.level is not Level.UPLOAD:
            continue
        if not is_older(now - up.initiated, older_than):
            continue
        found.append((up, folder, spec.repo, spec.upload))
    sizes = parallel(storage, lambda f: storage.multipart_size(f[0]), found)
    out = [
        MultipartLeftover(
            repo,
            uuid,
            folder,
            up.upload_id,
            up.initiated,
            size,
            folder in folders,
            max(0.0, now - up.initiated),
        )
        for (up, folder, repo, uuid), size in zip(found, sizes, strict=True)
    ]
    return sorted(out, key=lambda m: (m.path, m.upload_id))


def add_multipart_leftovers(
    report: OrphansReport, storage: S3Storage, snap: Snapshot, *, older_than: float
) -> None:
    """Fill ``report.multipart_uploads`` (:func:`multipart_leftovers`); when they cannot be
    listed, none, and a problem saying so."""
    try:
        report.multipart_uploads = multipart_leftovers(storage, snap, older_than=older_than)
    except StorageError as exc:
        report.multipart_uploads = []
        report.problems.append(
            Finding(
                Kind.UNREADABLE,
                REPOSITORIES,
                f"cannot list multipart uploads: {exc.strerror or exc}",
            )
        )
