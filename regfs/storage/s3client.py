"""The S3 client side of :mod:`regfs.storage.s3`: retries with backoff, request counting, the
mapping of S3 error codes to storage error kinds, and the boto3 client regfs uses.

boto3 (the extra ``regfs[s3]``) is imported only by :func:`make_client` and
:func:`is_network_error`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from regfs.storage.base import ErrorKind, Stat, StorageError, storage_error

# Error codes worth another attempt (S3 and S3-compatible servers).
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "503",
        "500",
        "502",
        "504",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket", "NoSuchUpload"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
_EXISTS_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


@dataclass
class Retry:
    """How failed requests are retried: up to ``attempts`` tries, sleeping a random time in
    ``[0, min(cap, base * 2**n)]`` before try ``n + 1`` (exponential backoff, full jitter)."""

    attempts: int = 8
    base: float = 0.05
    cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, n: int) -> float:
        """Seconds to sleep after failed try ``n`` (0-based): random in the range above."""
        return self.rng.uniform(0.0, min(self.cap, self.base * (2**n)))


@dataclass
class Stats:
    """Requests sent (every attempt) and retries, per operation; thread-safe."""

    requests: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, op: str, *, retry: bool) -> None:
        """Count one request of operation ``op`` (e.g. ``ListObjectsV2``); ``retry`` when it
        is a retry of a failed one."""
        with self._lock:
            self.requests[op] = self.requests.get(op, 0) + 1
            if retry:
                self.retries[op] = self.retries.get(op, 0) + 1

    @property
    def total(self) -> int:
        """Requests sent so far, every operation and attempt."""
        with self._lock:
            return sum(self.requests.values())


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore error (``NoSuchKey``, ``SlowDown``, ...), else its HTTP
    status as text (``"503"``); ``""`` for an exception that carries no S3 response."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        code = str(err.get("Code") or "")
        if code:
            return code
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to reach the server or to get its whole answer (refused,
    reset, timed out, closed): worth another attempt. Without boto3, any :class:`OSError`."""
    try:
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )
        from urllib3.exceptions import ProtocolError
    except ImportError:  # pragma: no cover - boto3 is there whenever a client is
        return isinstance(exc, OSError)
    network = (
        ConnectionClosedError,
        EndpointConnectionError,
        ConnectTimeoutError,
        ReadTimeoutError,
        ProtocolError,
        ConnectionError,
    )
    return isinstance(exc, network)


def to_storage_error(exc: BaseException, path: str) -> StorageError:
    """``exc`` as the :class:`StorageError` of its kind, naming ``path`` (as shown to users).

    Not found, denied, exists (a failed precondition), unavailable (throttling, server and
    network errors, once retries are spent), else other. A :class:`StorageError` is returned
    as it is.
    """
    if isinstance(exc, StorageError):
        return exc
    code = error_code(exc)
    message = f"{code or type(exc).__name__}: {exc}"
    if code in _NOT_FOUND_CODES:
        return storage_error(ErrorKind.NOT_FOUND, message, path)
    if code in _DENIED_CODES:
        return storage_error(ErrorKind.DENIED, message, path)
    if code in _EXISTS_CODES:
        return storage_error(ErrorKind.EXISTS, message, path)
    if code in RETRYABLE_CODES or is_network_error(exc):
        return storage_error(ErrorKind.UNAVAILABLE, message, path)
    return storage_error(ErrorKind.OTHER, message, path)


def parse_timestamp(value: str) -> datetime:
    """An S3 timestamp as an aware datetime: ISO 8601 (``2026-12-05T14:08:01.000Z``, XML
    bodies) or an HTTP date (``Sat, 05 Dec 2026 14:08:01 GMT``, headers) by the standard
    library; anything else (an epoch number, another form) by botocore's own parser."""
    try:
        parsed: datetime | None = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed
    from botocore.utils import parse_timestamp as botocore_parse

    out: datetime = botocore_parse(value)
    return out


def make_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    path_style: bool = True,
    verify: bool = True,
    pool: int = 32,
    timeout: float = 60.0,
) -> Any:
    """A boto3 S3 client for regfs: its own retries off (see :class:`Retry`), a connection pool
    as large as the thread pool, checksums only where required (S3-compatible servers choke on
    botocore's default trailers). Credentials: the ones given, else boto3's usual chain
    (environment, profile, instance role). Proxies from the environment are not used."""
    import boto3
    import botocore.session
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool,
        connect_timeout=timeout,
        read_timeout=timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        proxies={},
    )
    core = botocore.session.get_session()
    # Every listed object has a LastModified: botocore parses each through dateutil, a fifth
    # of a bucket scan's CPU (benchmarks/README.md, "S3"). S3 sends ISO 8601 in XML and HTTP
    # dates in headers, which the standard library parses in C.
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        aws_session_token=session_token or None,
        region_name=region or None,
        botocore_session=core,
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config, verify=verify)


class FakeClientError(Exception):
    """A per-key DeleteObjects error, shaped like botocore's ClientError for :func:`error_code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}


class S3Stream:
    """An object's body opened for reading (:meth:`S3Storage.open_stream`)."""

    def __init__(self, body: Any, st: Stat, shown: str) -> None:
        self._body = body
        self._stat = st
        self.size = st.st_size
        self._shown = shown

    def stat(self) -> Stat:
        """Size, LastModified and ETag of the object, as the GET answered them."""
        return self._stat

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n < 0``), ``b""`` at the end; a failed read
        raises the :class:`StorageError` of its kind."""
        try:
            data = self._body.read() if n < 0 else self._body.read(n)
        except Exception as exc:
            raise to_storage_error(exc, self._shown) from exc
        return bytes(data)

    def readinto(self, buf: memoryview) -> int:
        """Read up to ``len(buf)`` bytes into ``buf``; how many, 0 at the end."""
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close the response body and release its connection."""
        self._body.close()

    def __enter__(self) -> S3Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
