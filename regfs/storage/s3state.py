"""regfs's own state (lock, run journals, trash) next to a registry in a bucket:
:class:`regfs.storage.base.StateStore` on S3, under ``<rootdirectory>/.regfs/``.

The lock holds across hosts: :meth:`S3StateStore.create_exclusive` is a conditional
``PutObject`` (``If-None-Match: *``), which S3 (since 2024) and compatible servers (SeaweedFS,
measured) answer with ``412 PreconditionFailed`` when the key exists, atomically. A create
whose answer was lost and that is retried meets its own object: it is recognised by its
content (a lock holds a unique run id) and counts as done.

What S3 cannot do, and what is done instead:

* append: :meth:`S3StateStore.open_append` keeps the file in memory and
  :meth:`_Appender.sync` rewrites the whole object (a PUT is atomic): the journal on S3 is as
  durable as its last sync, and a long journal costs its size at every sync;
* rename: a PUT replaces an object atomically, so :meth:`S3StateStore.write_atomic` is one PUT;
* folders: a folder is the objects below it. :meth:`S3StateStore.list_dir` names a sub-folder
  only when an object is below it (one small listing each): S3-compatible servers backed by a
  filer (SeaweedFS) keep an emptied folder and list it as a common prefix, which would leave a
  restored or purged trash run listed for ever.
"""

from __future__ import annotations

import stat as stat_mod
from typing import Any

from regfs.storage.base import (
    DIR,
    FILE,
    Entry,
    ErrorKind,
    Exists,
    NotFound,
    Stat,
    StorageError,
    check_path,
    storage_error,
)
from regfs.storage.s3 import S3Storage, under

_FILE_MODE = stat_mod.S_IFREG | 0o644
_DIR_MODE = stat_mod.S_IFDIR | 0o755


class S3StateStore:
    """The state folder of an :class:`regfs.storage.s3.S3Storage` (its ``state_prefix``)."""

    def __init__(self, storage: S3Storage) -> None:
        self.storage = storage
        self.client = storage.client
        self.bucket = storage.bucket
        self.prefix = storage.state_prefix

    @property
    def location(self) -> str:
        """``s3://BUCKET/<rootdirectory>/.regfs``, for messages."""
        return f"s3://{self.bucket}/{self.prefix}"

    def path(self, rel: str) -> str:
        """``rel`` as an ``s3://`` location, for messages (not checked)."""
        return under(self.location, rel)

    def key(self, rel: str) -> str:
        """The object key of ``rel`` (relative to the state folder); raises
        :class:`InvalidPath` for a path that is not clean."""
        check_path(rel)
        return under(self.prefix, rel)

    def _call(self, op: str, rel: str, fn: Any) -> Any:
        try:
            return self.storage.call(op, rel, fn)
        except StorageError as exc:
            exc.filename = self.path(rel)
            raise

    def create_exclusive(self, rel: str, data: bytes) -> None:
        """Create the object only if no object has its key (``If-None-Match: *``)."""
        key = self.key(rel)
        try:
            self._call(
                "PutObject",
                rel,
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*"
                ),
            )
        except Exists:
            # Ours, when an earlier attempt was carried out but its answer lost?
            try:
                if self.read(rel) == data:
                    return
            except NotFound:
                pass
            raise

    def read(self, rel: str) -> bytes:
        """The whole object (one GET); raises :class:`NotFound` and the like."""
        key = self.key(rel)

        def get() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        out: bytes = self._call("GetObject", rel, get)
        return out

    def write_atomic(self, rel: str, data: bytes) -> None:
        """One PUT: readers see the old object or the new one, never a mix."""
        key = self.key(rel)
        self._call(
            "PutObject",
            rel,
            lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data),
        )

    def open_append(self, rel: str) -> _Appender:
        """An appender over the object's current content (empty when it does not exist)."""
        try:
            current = self.read(rel)
        except NotFound:
            current = b""
        return _Appender(self, rel, current)

    def remove(self, rel: str) -> None:
        """Delete the object; raises :class:`NotFound` when it is not there (a HEAD first:
        S3's DELETE of a missing key succeeds)."""
        self.lstat(rel)
        key = self.key(rel)
        self._call(
            "DeleteObject", rel, lambda: self.client.delete_object(Bucket=self.bucket, Key=key)
        )

    def list_dir(self, rel: str) -> list[Entry]:
        """The prefix's direct entries: common prefixes as DIR, objects as FILE (with size and
        LastModified). A prefix with nothing under it raises :class:`NotFound`."""
        prefix = self.key(rel) + "/"
        out: list[Entry] = []
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if token:
                kw["ContinuationToken"] = token
            page = self._call("ListObjectsV2", rel, lambda kw=kw: self.client.list_objects_v2(**kw))
            for cp in page.get("CommonPrefixes") or []:
                name = cp["Prefix"][len(prefix) :].rstrip("/")
                if self.is_folder(under(rel, name)):
                    out.append(Entry(name, DIR, 0, 0.0))
            for obj in page.get("Contents") or []:
                size, mtime = int(obj.get("Size") or 0), obj["LastModified"].timestamp()
                out.append(Entry(obj["Key"][len(prefix) :], FILE, size, mtime))
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                break
        if not out:
            raise storage_error(ErrorKind.NOT_FOUND, "no such prefix", self.path(rel))
        return out

    def is_folder(self, rel: str) -> bool:
        """Whether any object is below ``rel`` (a bucket's folders exist only as prefixes)."""
        prefix = self.key(rel) + "/"
        page = self._call(
            "ListObjectsV2",
            rel,
            lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1),
        )
        return bool(page.get("Contents"))

    def lstat(self, rel: str) -> Stat:
        """HEAD of the object: size, LastModified, ETag. A prefix holding objects is a folder;
        anything else raises :class:`NotFound`."""
        key = self.key(rel)
        try:
            head = self._call(
                "HeadObject", rel, lambda: self.client.head_object(Bucket=self.bucket, Key=key)
            )
        except NotFound:
            if self.is_folder(rel):
                return Stat(_DIR_MODE, 0, 0.0, None)
            raise
        etag = head.get("ETag")
        return Stat(
            _FILE_MODE,
            int(head.get("ContentLength") or 0),
            head["LastModified"].timestamp(),
            etag.strip('"') if isinstance(etag, str) else None,
        )

    def _objects(self, rel: str) -> list[tuple[str, int]]:
        prefix = self.key(rel) + "/"
        out: list[tuple[str, int]] = []
        paginator = self.client.get_paginator("list_objects_v2")

        def pages() -> list[dict[str, Any]]:
            return list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))

        for page in self._call("ListObjectsV2", rel, pages):
            out.extend((o["Key"], int(o.get("Size") or 0)) for o in page.get("Contents") or [])
        return out

    def tree_size(self, rel: str) -> tuple[int, int]:
        """``(objects, bytes)`` below ``rel`` (0, 0 when there is none)."""
        objects = self._objects(rel)
        return len(objects), sum(size for _, size in objects)

    def remove_tree(self, rel: str) -> None:
        """Delete every object below ``rel`` (batched; the first failure is raised)."""
        keys = [k for k, _ in self._objects(rel)]
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            resp = self._call(
                "DeleteObjects",
                rel,
                lambda batch=batch: self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )
            errors = resp.get("Errors") or []
            if errors:
                raise storage_error(
                    ErrorKind.OTHER,
                    f"{errors[0].get('Code')}: {errors[0].get('Message')}",
                    self.path(rel),
                )


class _Appender:
    """Appends kept in memory; :meth:`sync` writes the whole object (S3 has no append)."""

    def __init__(self, store: S3StateStore, rel: str, current: bytes) -> None:
        self.store = store
        self.rel = rel
        self.data = bytearray(current)
        self.dirty = False
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            raise ValueError("write to a closed appender")
        self.data += text.encode("utf-8")
        self.dirty = True

    def sync(self) -> None:
        if self.dirty:
            self.store.write_atomic(self.rel, bytes(self.data))
            self.dirty = False

    def close(self) -> None:
        if not self.closed:
            self.sync()
            self.closed = True


__all__ = ["S3StateStore"]
