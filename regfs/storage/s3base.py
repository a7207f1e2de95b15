"""The S3 backend's core (:class:`S3Base`): keys, requests with retries, the parallel sharded
listing, and HEAD-based stats. :class:`regfs.storage.s3.S3Storage` adds reads and changes.

* **List, do not walk.** :meth:`S3Base.list_prefix` splits the prefix into shards with a few
  delimiter listings (``blobs/sha256/00/`` … ``ff/``, each repository namespace), then lists
  every shard flat with ``ListObjectsV2`` on a bounded thread pool (boto3's low-level client is
  thread-safe). Objects found at a level that was split are kept: no key is missed.
* **Retries with backoff** (:class:`~regfs.storage.s3client.Retry`) on throttling
  (``SlowDown``, 503), server errors (500, ``InternalError``, ``RequestTimeout``) and network
  errors (refused, reset, timed out), full jitter, bounded; then
  :class:`regfs.storage.base.Unavailable`. botocore's own retries are off so that every attempt
  is counted (:attr:`S3Base.stats`).
* **Errors as values** where the protocol says so: a shard that cannot be listed is a
  ``ListError`` and the walk goes on.
"""

from __future__ import annotations

import hashlib
import stat as stat_mod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from regfs.storage.base import (
    FILE,
    ListError,
    NotFound,
    ObjectInfo,
    Stat,
    StorageError,
    check_path,
)
from regfs.storage.s3client import (
    RETRYABLE_CODES,
    Retry,
    Stats,
    error_code,
    is_network_error,
    to_storage_error,
)
from regfs.storage.s3fast import Fallback, FastPath

T = TypeVar("T")

V2 = "docker/registry/v2"
FILE_MODE = stat_mod.S_IFREG | 0o644
DIR_MODE = stat_mod.S_IFDIR | 0o755


def proves_revision_link(info: ObjectInfo) -> bool:
    """Whether a listing entry alone proves a revision link: ``.../_manifests/revisions/
    <alg>/<hex>/link`` whose ETag is the MD5 of ``<alg>:<hex>``, the only content such a link
    may hold. False (read it) for anything else: another ETag, a multipart or encrypted
    object's ETag, no ETag."""
    parts = info.path.split("/")
    if len(parts) < 5 or parts[-1] != "link" or parts[-4] != "revisions":
        return False
    if parts[-5] != "_manifests" or info.etag is None:
        return False
    expected = hashlib.md5(f"{parts[-3]}:{parts[-2]}".encode(), usedforsecurity=False)
    return info.etag.lower() == expected.hexdigest() and info.size == len(parts[-3]) + 1 + len(
        parts[-2]
    )


def under(prefix: str, rel: str) -> str:
    """``rel`` below ``prefix`` (a key prefix or an ``s3://`` location); ``prefix`` itself
    for an empty ``rel``. Callers check ``rel`` first (:func:`check_path`)."""
    return f"{prefix}/{rel}" if rel else prefix


class S3Base:
    """The ``docker/registry/v2`` part of a bucket, below ``prefix`` (the registry's
    ``rootdirectory``): keys, requests, listing and stats (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        workers: int = 16,
        retry: Retry | None = None,
        shard_target: int = 64,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.root_prefix = prefix.strip("/")
        self.v2_prefix = f"{self.root_prefix}/{V2}" if self.root_prefix else V2
        self.state_prefix = f"{self.root_prefix}/.regfs" if self.root_prefix else ".regfs"
        self.workers = max(1, workers)
        self.retry = retry or Retry()
        self.shard_target = shard_target
        self.stats = Stats()
        # GETs and listing pages without botocore's per-request machinery (storage.s3fast).
        self.fast = FastPath.of(client, bucket)

    # --- keys --------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """``s3://BUCKET/<prefix>/docker/registry/v2``, for messages."""
        return f"s3://{self.bucket}/{self.v2_prefix}"

    def abspath(self, rel: str) -> str:
        """``rel`` as an ``s3://`` location, for messages (not checked)."""
        return under(self.location, rel)

    @property
    def prefers_listing(self) -> bool:
        """A bucket is listed, not walked: one flat listing per shard, in parallel."""
        return True

    def key(self, rel: str) -> str:
        """The object key of ``rel`` (relative to v2); raises :class:`InvalidPath` for a path
        that is not clean (absolute, empty, ``.`` or ``..`` parts)."""
        check_path(rel)
        return under(self.v2_prefix, rel)

    def _folder_key(self, rel: str) -> str:
        return self.key(rel) + "/"

    def _rel(self, key: str) -> str:
        return key[len(self.v2_prefix) + 1 :]

    def trash_key(self, run_id: str, rel: str) -> str:
        """The key of ``rel`` in the trash of run ``run_id``
        (``<rootdirectory>/.regfs/trash/<run_id>/<rel>``); raises :class:`InvalidPath` when
        either is not a clean relative path."""
        check_path(run_id)
        check_path(rel)
        return f"{self.state_prefix}/trash/{run_id}/{rel}"

    # --- requests ----------------------------------------------------------------------------

    def call(self, op: str, path: str, fn: Callable[[], T]) -> T:
        """``fn()`` (one S3 request) with retries; raises a :class:`StorageError`."""
        n = 0
        while True:
            self.stats.count(op, retry=n > 0)
            try:
                return fn()
            except Exception as exc:
                retryable = error_code(exc) in RETRYABLE_CODES or is_network_error(exc)
                if not retryable or n + 1 >= self.retry.attempts:
                    raise to_storage_error(exc, self.abspath(path)) from exc
                self.retry.sleep(self.retry.delay(n))
                n += 1

    def _pages(self, op_path: str, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": 1000}
            if delimiter:
                kw["Delimiter"] = delimiter
            if token:
                kw["ContinuationToken"] = token
            page: dict[str, Any] = self.call("ListObjectsV2", op_path, self._lister(kw))
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                return

    def _lister(self, kw: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """One listing page for :meth:`call`: through the fast path while it is usable."""
        args = dict(kw)
        fast = self.fast

        def page() -> dict[str, Any]:
            if fast is not None and fast.usable:
                try:
                    return fast.list_page(args)
                except Fallback:
                    pass
            out: dict[str, Any] = self.client.list_objects_v2(**args)
            return out

        return page

    def _bound(self, method: str, kw: dict[str, Any]) -> Callable[[], Any]:
        """``client.<method>(**kw)`` with ``kw`` as it is now, for :meth:`call`."""
        fn = getattr(self.client, method)
        args = dict(kw)
        return lambda: fn(**args)

    def _info(self, obj: dict[str, Any]) -> ObjectInfo:
        etag = obj.get("ETag")
        return ObjectInfo(
            self._rel(obj["Key"]),
            FILE,
            int(obj.get("Size") or 0),
            obj["LastModified"].timestamp(),
            etag.strip('"') if isinstance(etag, str) else None,
        )

    def shards(self, rel: str) -> tuple[list[str], list[ObjectInfo | ListError]]:
        """Split ``rel`` into prefixes to list in parallel: delimiter listings, level by level
        and in parallel, until there are ``shard_target`` of them or four levels were split.
        Returns the shard prefixes (relative, ending in ``/``) and what the split levels held
        directly (objects, or the error of a level that could not be listed)."""
        start = self._folder_key(rel) if rel else self.v2_prefix + "/"
        shards = [start]
        direct: list[ObjectInfo | ListError] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for _level in range(4):
                if len(shards) >= self.shard_target:
                    break
                results = list(pool.map(self._split_one, shards))
                nxt: list[str] = []
                for prefixes, found in results:
                    nxt.extend(prefixes)
                    direct.extend(found)
                if not nxt:
                    shards = []
                    break
                shards = nxt
        return shards, direct

    def _split_one(self, prefix: str) -> tuple[list[str], list[ObjectInfo | ListError]]:
        rel = self._rel(prefix.rstrip("/")) if prefix != self.v2_prefix + "/" else ""
        prefixes: list[str] = []
        found: list[ObjectInfo | ListError] = []
        try:
            for page in self._pages(rel, prefix, "/"):
                prefixes.extend(cp["Prefix"] for cp in page.get("CommonPrefixes") or [])
                found.extend(self._info(o) for o in page.get("Contents") or [])
        except StorageError as exc:
            found.append(ListError(rel, exc))
        return prefixes, found

    def _list_flat(self, prefix: str) -> list[ObjectInfo | ListError]:
        rel = self._rel(prefix.rstrip("/"))
        out: list[ObjectInfo | ListError] = []
        try:
            for page in self._pages(rel, prefix, None):
                out.extend(self._info(o) for o in page.get("Contents") or [])
        except StorageError as exc:
            out.append(ListError(rel, exc))
        return out

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        """Every object below ``rel`` (files only: a bucket has no folders), listed in parallel
        shards (:meth:`shards`); a shard that cannot be listed is a :class:`ListError` and
        the others are still listed. Order unspecified."""
        shards, direct = self.shards(rel)
        yield from direct
        if not shards:
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for result in pool.map(self._list_flat, shards):
                yield from result

    def _head(self, rel: str) -> dict[str, Any]:
        key = self.key(rel)
        out: dict[str, Any] = self.call(
            "HeadObject", rel, lambda: self.client.head_object(Bucket=self.bucket, Key=key)
        )
        return out

    def _is_prefix(self, rel: str) -> bool:
        prefix = self._folder_key(rel) if rel else self.v2_prefix + "/"
        page: dict[str, Any] = self.call(
            "ListObjectsV2",
            rel,
            lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1),
        )
        return bool(page.get("Contents"))

    def lstat(self, rel: str) -> Stat:
        """HEAD of the object: size, LastModified, ETag (the re-check before a delete). A
        prefix holding objects is a folder; anything else raises :class:`NotFound`."""
        try:
            head = self._head(rel)
        except NotFound:
            if self._is_prefix(rel):
                return Stat(DIR_MODE, 0, 0.0, None)
            raise
        etag = head.get("ETag")
        return Stat(
            FILE_MODE,
            int(head.get("ContentLength") or 0),
            head["LastModified"].timestamp(),
            etag.strip('"') if isinstance(etag, str) else None,
        )

    def stat(self, rel: str) -> Stat:
        """:meth:`lstat`: a bucket has no links to follow."""
        return self.lstat(rel)

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is an object or a prefix holding objects; other errors raise."""
        try:
            self.lstat(rel)
        except NotFound:
            return False
        return True

    def realpath(self, rel: str) -> str:
        """:meth:`abspath`: a bucket has no links, so a path is where it really is."""
        return self.abspath(rel)
