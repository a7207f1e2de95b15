"""A loopback HTTP proxy in front of an S3 server: counts requests, adds latency, injects faults.

Standard library only. Used by the S3 retry tests and by the S3 benchmark::

    with FaultProxy(upstream_port=weed.s3_port) as proxy:
        client = weed.client(endpoint=proxy.url)      # the client talks to the proxy
        proxy.latency = 0.010                           # 10 ms more per request (a real S3)
        proxy.inject("slowdown", op="ListObjectsV2", times=2)
        proxy.inject("drop", op="DeleteObjects", times=1, after_forward=True)
        ...
        proxy.counts()   # {"ListObjectsV2": 14, "HeadObject": 3, ...}

It listens on 127.0.0.1 only and forwards to 127.0.0.1 only. Each request is read whole
(``Content-Length`` or chunked, forwarded byte for byte with the client's own headers, so
signatures still match), classified into its S3 operation (:func:`s3_operation`), counted,
delayed by :attr:`FaultProxy.latency`, then either forwarded or answered by the first matching
fault:

* ``slowdown``: 503 with the S3 ``SlowDown`` error document (what S3 says when throttling);
* ``error500``: 500 ``InternalError``;
* ``drop``: the connection is closed without an answer -- before the request reaches the server,
  or (``after_forward=True``) after the server carried it out: the client cannot tell whether it
  happened, the case a retried ``DeleteObjects`` must survive.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.client
import http.server
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

ACTIONS = frozenset({"slowdown", "error500", "drop"})
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "upgrade",
    }
)

SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>regfs-fault-proxy</RequestId></Error>"
)
INTERNAL_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try "
    b"again.</Message><RequestId>regfs-fault-proxy</RequestId></Error>"
)


def s3_operation(method: str, path: str, query: str, headers: dict[str, str]) -> str:
    """The S3 API operation a path-style request is (``ListObjectsV2``, ``HeadObject``, ...)."""
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    parts = [p for p in path.split("/") if p]
    on_bucket = len(parts) <= 1
    if not parts:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if method == "GET":
        if on_bucket:
            if "uploads" in q:
                return "ListMultipartUploads"
            if q.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "location" in q:
                return "GetBucketLocation"
            if "versioning" in q:
                return "GetBucketVersioning"
            return "ListObjects"
        if "uploadId" in q:
            return "ListParts"
        return "GetObject"
    if method == "HEAD":
        return "HeadBucket" if on_bucket else "HeadObject"
    if method == "PUT":
        if on_bucket:
            return "CreateBucket"
        if "partNumber" in q:
            return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
        if "x-amz-copy-source" in headers:
            return "CopyObject"
        return "PutObject"
    if method == "POST":
        if on_bucket and "delete" in q:
            return "DeleteObjects"
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
        return "POST"
    if method == "DELETE":
        if on_bucket:
            return "DeleteBucket"
        if "uploadId" in q:
            return "AbortMultipartUpload"
        return "DeleteObject"
    return method


@dataclasses.dataclass
class Fault:
    """One injected fault: ``action`` for the next ``times`` requests that match."""

    action: str
    op: str | None = None  # S3 operation name; None = any
    times: int = 1  # -1 = every matching request
    match: Callable[[str, str, str], bool] | None = None  # (op, method, path) -> bool
    after_forward: bool = False  # drop only: forward first, then close without answering
    hits: int = 0

    def matches(self, op: str, method: str, path: str) -> bool:
        if self.times == 0:
            return False
        if self.op is not None and self.op != op:
            return False
        return self.match is None or self.match(op, method, path)


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request the proxy received."""

    op: str
    method: str
    path: str
    query: str
    fault: str | None  # the action applied, or None when forwarded normally
    status: int | None  # the status sent back (None: dropped)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
    # the peer's delayed ACK stall each answer by ~40 ms (measured: 50 ms a request)
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            raw = bytearray()
            while True:
                line = self.rfile.readline(65537)
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the blank line
                        t = self.rfile.readline(65537)
                        raw += t
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(raw)
                raw += self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        op = s3_operation(self.command, path, query, headers)
        fault = proxy._take_fault(op, self.command, path)
        if proxy.latency > 0:
            time.sleep(proxy.latency)
        if fault is not None and fault.action == "drop" and not fault.after_forward:
            proxy._record(Seen(op, self.command, path, query, "drop", None))
            self._drop()
            return
        if fault is not None and fault.action in ("slowdown", "error500"):
            status, doc = (
                (503, SLOWDOWN_BODY) if fault.action == "slowdown" else (500, INTERNAL_BODY)
            )
            proxy._record(Seen(op, self.command, path, query, fault.action, status))
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(doc)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(doc)
            return
        status, reason, resp_headers, resp_body = self._forward(body)
        if fault is not None:  # drop after the server carried it out
            proxy._record(Seen(op, self.command, path, query, "drop", None))
            self._drop()
            return
        proxy._record(Seen(op, self.command, path, query, None, status))
        self.send_response(status, reason)
        for k, v in resp_headers:
            lk = k.lower()
            if lk in _HOP_BY_HOP or lk in ("transfer-encoding", "server", "date"):
                continue  # (send_response wrote its own Server and Date)
            if lk == "content-length" and self.command != "HEAD":
                continue
            self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(resp_body)))
        self.end_headers()
        if self.command != "HEAD" and resp_body:
            self.wfile.write(resp_body)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() in _HOP_BY_HOP:
                    continue
                conn.putheader(k, v)
            conn.endheaders(message_body=body or None)  # one write with the headers
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class FaultProxy:
    """The proxy, listening on ``127.0.0.1:<port>`` in a background thread."""

    def __init__(self, upstream_port: int, *, latency: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.latency = latency
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._seen: list[Seen] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FaultProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fault-proxy", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults --------------------------------------------------------------------------------

    def inject(
        self,
        action: str,
        *,
        op: str | None = None,
        times: int = 1,
        match: Callable[[str, str, str], bool] | None = None,
        after_forward: bool = False,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``action`` (``-1``: all of them)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown fault {action!r}; known: {', '.join(sorted(ACTIONS))}")
        if after_forward and action != "drop":
            raise ValueError("after_forward applies to 'drop' only")
        fault = Fault(action, op, times, match, after_forward)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, op: str, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.matches(op, method, path):
                    if f.times > 0:
                        f.times -= 1
                    f.hits += 1
                    return f
        return None

    # -- counting ------------------------------------------------------------------------------

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def counts(self) -> dict[str, int]:
        """Requests received per S3 operation (faulted ones included), since the last reset."""
        with self._lock:
            return dict(collections.Counter(s.op for s in self._seen))

    def total(self) -> int:
        with self._lock:
            return len(self._seen)

    def reset(self) -> None:
        """Forget the requests seen so far (faults stay)."""
        with self._lock:
            self._seen.clear()
