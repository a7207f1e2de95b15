"""A registry store in an S3 bucket (distribution's ``s3`` driver layout), through boto3.

Keys are ``<rootdirectory>/docker/registry/v2/<path>`` (the root's slashes trimmed, as the
driver does); there are no folder objects: a folder is a key prefix. Everything here implements
:class:`regfs.storage.base.Storage` with paths relative to v2, plus what only an object store
has (:meth:`S3Storage.delete_many`, :meth:`S3Storage.multipart_uploads`,
:meth:`S3Storage.abort_multipart`, :func:`proves_revision_link`).

How it stays fast and correct on a big bucket (keys, requests, the parallel listing and stats
are :class:`regfs.storage.s3base.S3Base`'s; the stream of a GET is
:class:`regfs.storage.s3client.S3Stream`):

* **List, do not walk.** :meth:`S3Storage.list_prefix` splits the prefix into shards with a few
  delimiter listings (``blobs/sha256/00/`` … ``ff/``, each repository namespace), then lists
  every shard flat with ``ListObjectsV2`` on a bounded thread pool (boto3's low-level client is
  thread-safe). Objects found at a level that was split are kept: no key is missed.
* **Retries with backoff** (:class:`Retry`) on throttling (``SlowDown``, 503), server errors
  (500, ``InternalError``, ``RequestTimeout``) and network errors (refused, reset, timed out),
  full jitter, bounded; then :class:`regfs.storage.base.Unavailable`. botocore's own retries
  are off so that every attempt is counted (:attr:`S3Storage.stats`).
* **Errors as values** where the protocol says so: a shard that cannot be listed is a
  ``ListError`` and the walk goes on.
* **ETags prove links**: a plain ``PutObject``'s ETag is the MD5 of its body, and a revision
  link must hold ``sha256:<its folder>``: :func:`proves_revision_link` needs no GET (the scan's
  listed view, :mod:`regfs.storage.listed`, does the same for every digest folder's link).
* **Batched deletes** (``DeleteObjects``, 1,000 keys a call, per-key errors kept as values).

Needs the optional extra ``regfs[s3]`` (boto3); this module imports it only when a client is
made.
"""

from __future__ import annotations

import stat as stat_mod
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from regfs.storage.base import (
    DIR,
    FILE,
    Entry,
    ErrorKind,
    IsAFolder,
    ListError,
    Listing,
    NotEmpty,
    NotFound,
    ObjectInfo,
    Stat,
    StorageError,
    check_path,
    storage_error,
)
from regfs.storage.s3base import (
    FILE_MODE,
    V2,
    S3Base,
    proves_revision_link,
    under,
)
from regfs.storage.s3client import FakeClientError, S3Stream, error_code, to_storage_error
from regfs.storage.s3fast import Fallback

__all__ = [
    "DELETE_BATCH",
    "V2",
    "DeleteResult",
    "MultipartUpload",
    "S3Storage",
    "S3Stream",
    "proves_revision_link",
    "under",
]

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


class MultipartUpload(NamedTuple):
    """An open multipart upload (an unfinished blob upload's ``data``): ``path`` relative to
    v2, its id, and when it was started (seconds since the epoch)."""

    path: str
    upload_id: str
    initiated: float


class DeleteResult(NamedTuple):
    """What :meth:`S3Storage.delete_many` did with one path: ``error`` None when deleted (or
    already absent: S3 does not tell)."""

    path: str
    error: StorageError | None


class S3Storage(S3Base):
    """The ``docker/registry/v2`` part of a bucket, below ``prefix`` (the registry's
    ``rootdirectory``). Implements :class:`regfs.storage.base.Storage`."""

    # --- read side ---------------------------------------------------------------------------

    def list_dir(self, rel: str) -> list[Entry]:
        """The "folder"'s direct entries: common prefixes as DIR, objects as FILE. A prefix with
        nothing under it raises :class:`NotFound` (S3 cannot tell it from a missing folder)."""
        prefix = self._folder_key(rel) if rel else self.v2_prefix + "/"
        out: list[Entry] = []
        for page in self._pages(rel, prefix, "/"):
            for cp in page.get("CommonPrefixes") or []:
                name = cp["Prefix"][len(prefix) :].rstrip("/")
                if name:
                    out.append(Entry(name, DIR, 0, 0.0))
            for obj in page.get("Contents") or []:
                name = obj["Key"][len(prefix) :]
                if name:
                    out.append(
                        Entry(
                            name, FILE, int(obj.get("Size") or 0), obj["LastModified"].timestamp()
                        )
                    )
        if not out:
            raise storage_error(ErrorKind.NOT_FOUND, "no such prefix", self.abspath(rel))
        return out

    def list_kinds(self, rel: str) -> list[tuple[str, str]]:
        """``(name, kind)`` of each entry of :meth:`list_dir` (the same one listing)."""
        return [(e.name, e.kind) for e in self.list_dir(rel)]

    def list_folder(self, rel: str) -> Listing:
        """:meth:`list_dir` with its :class:`StorageError` as a value (``NotFound`` for an empty
        prefix)."""
        try:
            return Listing(rel, self.list_dir(rel))
        except StorageError as exc:
            return Listing(rel, [], exc)

    def read_file(self, rel: str, limit: int, *, follow: bool = False) -> tuple[bytes, int, float]:
        """At most ``limit`` bytes (one ranged GET): ``(data, size, mtime)``. A prefix raises
        :class:`IsAFolder`, a missing key :class:`NotFound`."""
        key = self.key(rel)
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if limit > 0:
            kw["Range"] = f"bytes=0-{limit - 1}"

        def get() -> tuple[bytes, int, float]:
            fast = self.fast
            if fast is not None and fast.usable:
                try:
                    got = fast.get(key, limit)
                except Fallback:
                    pass
                except Exception as exc:
                    if error_code(exc) != "InvalidRange":
                        raise
                    # an empty object asked for a range: the client's way below
                else:
                    return bytes(got.data[: limit if limit > 0 else None]), got.size, got.mtime
            try:
                resp = self.client.get_object(**kw)
            except Exception as exc:
                if error_code(exc) == "InvalidRange":  # an empty object asked for a range
                    resp = self.client.get_object(Bucket=self.bucket, Key=key)
                else:
                    raise
            body = resp["Body"]
            try:
                data = body.read()
            finally:
                body.close()
            size = int(resp.get("ContentLength") or 0)
            content_range = resp.get("ContentRange")
            if isinstance(content_range, str) and "/" in content_range:
                size = int(content_range.rsplit("/", 1)[1])
            return (
                bytes(data[: limit if limit > 0 else None]),
                size,
                resp["LastModified"].timestamp(),
            )

        if limit == 0:
            st = self.lstat(rel)
            if stat_mod.S_ISDIR(st.st_mode):
                raise IsAFolder(21, "a prefix, not an object", self.abspath(rel))
            return b"", st.st_size, st.st_mtime
        try:
            return self.call("GetObject", rel, get)
        except NotFound:
            if self._is_prefix(rel):
                raise IsAFolder(21, "a prefix, not an object", self.abspath(rel)) from None
            raise

    def open_stream(self, rel: str) -> S3Stream:
        """The object opened for streaming reads (one GET; reads are not retried mid-way: a
        broken stream raises :class:`regfs.storage.base.Unavailable`)."""
        key = self.key(rel)
        try:
            resp = self.call(
                "GetObject", rel, lambda: self.client.get_object(Bucket=self.bucket, Key=key)
            )
        except NotFound:
            if self._is_prefix(rel):
                raise IsAFolder(21, "a prefix, not an object", self.abspath(rel)) from None
            raise
        etag = resp.get("ETag")
        return S3Stream(
            resp["Body"],
            Stat(
                FILE_MODE,
                int(resp.get("ContentLength") or 0),
                resp["LastModified"].timestamp(),
                etag.strip('"') if isinstance(etag, str) else None,
            ),
            self.abspath(rel),
        )

    def close_streams(self) -> None:
        """Nothing is kept between streams (the client's connection pool is boto3's)."""

    # --- change side -------------------------------------------------------------------------

    def unlink(self, rel: str) -> None:
        """Delete one object (S3 answers the same whether it was there or not)."""
        key = self.key(rel)
        self.call(
            "DeleteObject", rel, lambda: self.client.delete_object(Bucket=self.bucket, Key=key)
        )

    def delete_many(self, rels: Iterable[str]) -> list[DeleteResult]:
        """Delete objects with ``DeleteObjects``, 1,000 keys a request, batches in parallel.
        Each path's outcome is a value: a key the server refused keeps its error; a batch that
        failed after retries gives every one of its keys that error. A retried batch is safe:
        deleting an absent key succeeds."""
        paths = list(rels)
        keys = {self.key(p): p for p in paths}
        batches = [paths[i : i + DELETE_BATCH] for i in range(0, len(paths), DELETE_BATCH)]

        def one(batch: list[str]) -> list[DeleteResult]:
            objects = [{"Key": self.key(p)} for p in batch]
            try:
                resp = self.call(
                    "DeleteObjects",
                    batch[0],
                    lambda: self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                    ),
                )
            except StorageError as exc:
                return [DeleteResult(p, exc) for p in batch]
            failed: dict[str, StorageError] = {}
            for err in resp.get("Errors") or []:
                path = keys.get(err.get("Key", ""), "")
                code = str(err.get("Code") or "")
                fake = FakeClientError(code, str(err.get("Message") or code))
                failed[path] = to_storage_error(fake, self.abspath(path))
            return [DeleteResult(p, failed.get(p)) for p in batch]

        out: list[DeleteResult] = []
        with ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(batches)))) as pool:
            for result in pool.map(one, batches):
                out.extend(result)
        return out

    def rmdir(self, rel: str) -> None:
        """A prefix has nothing to remove: :class:`NotEmpty` when objects are still under it,
        else nothing happens."""
        if self._is_prefix(rel):
            raise NotEmpty(39, "objects remain under this prefix", self.abspath(rel))

    def make_folders(self, rel: str) -> None:
        """Nothing to do: a bucket has no folders."""
        check_path(rel)

    def _objects_at(self, rel: str) -> list[ObjectInfo]:
        """The object ``rel`` itself, or every object below the prefix ``rel``."""
        found: list[ObjectInfo] = []
        for item in self.list_prefix(rel):
            if isinstance(item, ListError):
                raise item.error
            found.append(item)
        if not found:
            try:
                st = self.lstat(rel)
            except NotFound:
                raise
            found.append(ObjectInfo(rel, FILE, st.st_size, st.st_mtime, st.etag))
        return found

    def _copy(self, src_key: str, dst_key: str, rel: str) -> None:
        self.call(
            "CopyObject",
            rel,
            lambda: self.client.copy({"Bucket": self.bucket, "Key": src_key}, self.bucket, dst_key),
        )

    def move_to_trash(self, rel: str, run_id: str) -> None:
        """Copy ``rel`` (an object, or everything below a prefix) to the trash prefix, then
        delete the originals: not atomic (S3 has no rename). A copy that fails deletes
        nothing."""
        objects = self._objects_at(rel)
        for obj in objects:
            self._copy(self.key(obj.path), self.trash_key(run_id, obj.path), obj.path)
        errors = [r for r in self.delete_many(o.path for o in objects) if r.error is not None]
        if errors:
            raise errors[0].error  # type: ignore[misc]

    def restore_from_trash(self, run_id: str, rel: str) -> None:
        """Copy ``trash/<run_id>/<rel>`` back (an object, or every object below the prefix)
        and delete the trash copies; :class:`Exists` when any of them is in place again."""
        from regfs.storage.s3batch import restore_objects

        restore_objects(self, run_id, rel)

    def in_trash(self, run_id: str, rel: str) -> bool:
        """Whether the trash of run ``run_id`` holds ``rel`` (an object or a prefix)."""
        from regfs.storage.s3batch import trash_objects

        return bool(trash_objects(self, run_id, rel))

    # --- multipart uploads -------------------------------------------------------------------

    def multipart_uploads(self, rel: str = "repositories") -> list[MultipartUpload]:
        """Open multipart uploads below ``rel`` (unfinished blob uploads' ``data``: invisible
        to listings, billed until aborted)."""
        prefix = self._folder_key(rel) if rel else self.v2_prefix + "/"
        out: list[MultipartUpload] = []
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page: dict[str, Any] = self.call(
                "ListMultipartUploads", rel, self._bound("list_multipart_uploads", kw)
            )
            for up in page.get("Uploads") or []:
                out.append(
                    MultipartUpload(
                        self._rel(up["Key"]), str(up["UploadId"]), up["Initiated"].timestamp()
                    )
                )
            if not page.get("IsTruncated"):
                return out
            kw["KeyMarker"] = page.get("NextKeyMarker", "")
            kw["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    def multipart_size(self, upload: MultipartUpload) -> int:
        """Bytes held by the upload's parts (``ListParts``)."""
        total = 0
        kw: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key(upload.path),
            "UploadId": upload.upload_id,
        }
        while True:
            page: dict[str, Any] = self.call(
                "ListParts", upload.path, self._bound("list_parts", kw)
            )
            total += sum(int(p.get("Size") or 0) for p in page.get("Parts") or [])
            if not page.get("IsTruncated"):
                return total
            kw["PartNumberMarker"] = page.get("NextPartNumberMarker", 0)

    def abort_multipart(self, upload: MultipartUpload) -> None:
        """Abort the upload: its parts are deleted and no longer billed.

        Raises:
            NotFound: it was finished or aborted meanwhile.
            StorageError: any other failure, after retries.
        """
        key = self.key(upload.path)
        self.call(
            "AbortMultipartUpload",
            upload.path,
            lambda: self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload.upload_id
            ),
        )
