"""Batched changes on a bucket for the gc executor: HEAD re-checks, conditional
``DeleteObjects``, copies into and out of the trash prefix.

Beside :class:`regfs.storage.s3.S3Storage` (which implements the one-path-at-a-time
:class:`regfs.storage.base.Storage` protocol) because a run on S3 changes thousands of keys:

* :func:`head` -- one ``HeadObject``: size, LastModified, ETag (no prefix fallback: a missing
  key is :class:`regfs.storage.base.NotFound`, the executor's "already gone");
* :func:`delete_checked` -- ``DeleteObjects``, 1,000 keys a request, batches in parallel, each
  key carrying the ETag its re-check saw: the server deletes it only if it still has that
  ETag (S3's conditional delete; SeaweedFS honours it, measured). A key that changed in
  between is :attr:`Deleted.changed`, never deleted. A server that refuses the ETag field
  (``NotImplemented``, ``MalformedXML``) gets the batch again without it: the HEAD re-check
  still stands, as on a filesystem between ``lstat`` and ``unlink``;
* :func:`copy_to_trash`, :func:`trash_objects`, :func:`restore_objects` -- ``--trash`` on S3:
  copy, then delete (S3 has no rename; not atomic, see the README).
"""

from __future__ import annotations

import stat as stat_mod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

from regfs.storage.base import (
    Exists,
    ListError,
    NotFound,
    ObjectInfo,
    Stat,
    StorageError,
    check_path,
)
from regfs.storage.s3 import DELETE_BATCH, S3Storage
from regfs.storage.s3client import FakeClientError, error_code, to_storage_error

T = TypeVar("T")
R = TypeVar("R")

_FILE_MODE = stat_mod.S_IFREG | 0o644
# Per-key answers meaning "the ETag given is no longer the object's".
CHANGED_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
# Per-key answers meaning "no such key": deleted already (a conditional delete says so).
ABSENT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Whole-request answers of a server that does not take an ETag per key.
NO_CONDITION_CODES = frozenset({"NotImplemented", "MalformedXML", "InvalidArgument", "501"})


class Deleted(NamedTuple):
    """What :func:`delete_checked` did with one path: deleted (``error`` None, ``changed``
    False), left because it changed since its re-check (``changed``), or failed (``error``)."""

    path: str
    error: StorageError | None = None
    changed: bool = False

    @property
    def ok(self) -> bool:
        """Deleted (or already absent: S3 does not tell)."""
        return self.error is None and not self.changed


def parallel(storage: S3Storage, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(item) ...]`` on the storage's bounded thread pool size, in order."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(storage.workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _stat(resp: dict[str, Any]) -> Stat:
    etag = resp.get("ETag")
    return Stat(
        _FILE_MODE,
        int(resp.get("ContentLength") or 0),
        resp["LastModified"].timestamp(),
        etag.strip('"') if isinstance(etag, str) else None,
    )


def head(storage: S3Storage, rel: str) -> Stat:
    """``HeadObject`` of ``rel``: size, LastModified, ETag; :class:`NotFound` when absent."""
    key = storage.key(rel)
    resp: dict[str, Any] = storage.call(
        "HeadObject", rel, lambda: storage.client.head_object(Bucket=storage.bucket, Key=key)
    )
    return _stat(resp)


def head_key(storage: S3Storage, key: str, shown: str) -> Stat:
    """``HeadObject`` of a full key (the trash's), shown as ``shown`` in errors."""
    resp: dict[str, Any] = storage.call(
        "HeadObject", shown, lambda: storage.client.head_object(Bucket=storage.bucket, Key=key)
    )
    return _stat(resp)


def delete_checked(storage: S3Storage, items: Iterable[tuple[str, str | None]]) -> list[Deleted]:
    """Delete ``(path, etag)`` pairs: each only while it still has ``etag`` (None: whatever
    it holds). 1,000 keys a ``DeleteObjects``, batches in parallel; retried batches are safe
    (deleting an absent key succeeds). A batch that fails after retries gives each of its
    keys that error."""
    pairs = list(items)
    return _delete_keys(storage, [(storage.key(p), p, e) for p, e in pairs])


def _delete_keys(storage: S3Storage, keyed: list[tuple[str, str, str | None]]) -> list[Deleted]:
    batches = [keyed[i : i + DELETE_BATCH] for i in range(0, len(keyed), DELETE_BATCH)]
    out: list[Deleted] = []
    for result in parallel(storage, lambda b: _delete_batch(storage, b), batches):
        out.extend(result)
    return out


def _delete_batch(storage: S3Storage, batch: list[tuple[str, str, str | None]]) -> list[Deleted]:
    by_key = {key: path for key, path, _ in batch}

    def objects(conditional: bool) -> list[dict[str, str]]:
        out = []
        for key, _path, etag in batch:
            obj = {"Key": key}
            if conditional and etag:
                obj["ETag"] = f'"{etag}"'
            out.append(obj)
        return out

    def send(conditional: bool) -> dict[str, Any]:
        body = {"Objects": objects(conditional), "Quiet": True}
        resp: dict[str, Any] = storage.call(
            "DeleteObjects",
            batch[0][1],
            lambda: storage.client.delete_objects(Bucket=storage.bucket, Delete=body),
        )
        return resp

    try:
        try:
            resp = send(True)
        except StorageError as exc:
            if error_code(exc.__cause__ or exc) not in NO_CONDITION_CODES:
                raise
            resp = send(False)
    except StorageError as exc:
        return [Deleted(path, exc) for _key, path, _etag in batch]
    failed: dict[str, Deleted] = {}
    for err in resp.get("Errors") or []:
        path = by_key.get(str(err.get("Key", "")), "")
        code = str(err.get("Code") or "")
        fake = FakeClientError(code, str(err.get("Message") or code))
        error = to_storage_error(fake, storage.abspath(path) if path else storage.location)
        if code in ABSENT_CODES:
            continue  # a conditional delete of a key already gone (a retried batch: ours)
        failed[path] = Deleted(path, None, True) if code in CHANGED_CODES else Deleted(path, error)
    return [failed.get(path, Deleted(path)) for _key, path, _etag in batch]


# --- trash ----------------------------------------------------------------------------------


def _copy(storage: S3Storage, src: str, dst: str, shown: str) -> None:
    storage.call(
        "CopyObject",
        shown,
        lambda: storage.client.copy({"Bucket": storage.bucket, "Key": src}, storage.bucket, dst),
    )


def copy_to_trash(storage: S3Storage, run_id: str, paths: Sequence[str]) -> list[Deleted]:
    """Copy each path to ``trash/<run_id>/<path>`` of the state prefix, in parallel; the
    result of each (``error`` set when its copy failed: then it must not be deleted)."""

    def one(rel: str) -> Deleted:
        try:
            _copy(storage, storage.key(rel), storage.trash_key(run_id, rel), rel)
        except StorageError as exc:
            return Deleted(rel, exc)
        return Deleted(rel)

    return parallel(storage, one, list(paths))


def trash_objects(storage: S3Storage, run_id: str, rel: str) -> list[ObjectInfo]:
    """What the trash of run ``run_id`` holds for ``rel``: the object itself, or everything
    below the prefix ``rel`` (paths relative to v2, as they were before the run).

    Raises:
        StorageError: the trash could not be listed.
    """
    check_path(rel)
    base = storage.trash_key(run_id, rel)
    strip = len(storage.trash_key(run_id, "x")) - 1
    found: list[ObjectInfo] = []
    kw: dict[str, Any] = {"Bucket": storage.bucket, "Prefix": base}
    while True:
        page: dict[str, Any] = storage.call("ListObjectsV2", rel, _list_call(storage, kw))
        for obj in page.get("Contents") or []:
            key = str(obj["Key"])
            if key != base and not key.startswith(base + "/"):
                continue  # a sibling that only shares the prefix (``abc`` vs ``abcd``)
            etag = obj.get("ETag")
            found.append(
                ObjectInfo(
                    key[strip:],
                    "file",
                    int(obj.get("Size") or 0),
                    obj["LastModified"].timestamp(),
                    etag.strip('"') if isinstance(etag, str) else None,
                )
            )
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if not token:
            return found
        kw["ContinuationToken"] = token


def _list_call(storage: S3Storage, kw: dict[str, Any]) -> Callable[[], Any]:
    args = dict(kw)
    return lambda: storage.client.list_objects_v2(**args)


def live_objects(storage: S3Storage, rel: str) -> list[ObjectInfo]:
    """The objects at ``rel`` now: the object itself and everything below the prefix.

    Raises:
        StorageError: a part could not be listed.
    """
    found: list[ObjectInfo] = []
    for item in storage.list_prefix(rel):
        if isinstance(item, ListError):
            raise item.error
        found.append(item)
    try:
        st = head(storage, rel)
    except NotFound:
        return found
    return [*found, ObjectInfo(rel, "file", st.st_size, st.st_mtime, st.etag)]


def restore_objects(storage: S3Storage, run_id: str, rel: str) -> int:
    """Copy the trash of ``rel`` back (an object, or every object below the prefix), then
    delete the trash copies; how many objects. Nothing is overwritten: when any of them
    exists again, :class:`regfs.storage.base.Exists` and nothing is copied.

    Raises:
        NotFound: the trash holds nothing for ``rel``.
        Exists: one of its objects is in place again.
        StorageError: a copy or the deletion of the trash copies failed.
    """
    objects = trash_objects(storage, run_id, rel)
    if not objects:
        raise NotFound(2, "not in the trash", storage.abspath(rel))
    for obj in objects:
        try:
            head(storage, obj.path)
        except NotFound:
            continue
        raise Exists(17, "already exists", storage.abspath(obj.path))
    for obj in objects:
        _copy(storage, storage.trash_key(run_id, obj.path), storage.key(obj.path), obj.path)
    keyed: list[tuple[str, str, str | None]] = [
        (storage.trash_key(run_id, o.path), o.path, None) for o in objects
    ]
    for d in _delete_keys(storage, keyed):
        if d.error is not None:
            raise d.error
    return len(objects)
