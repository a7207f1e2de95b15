"""The two requests a bucket scan sends by the thousand, without botocore's per-request
machinery: ``GetObject`` of small objects (manifests, links) and ``ListObjectsV2`` pages.

botocore spends more CPU on each of these than the request takes on a fast network: parameter
validation, the endpoint rule set evaluated anew for every key, a dozen event hooks, and a
response parser that walks every XML element in Python. On a 2-core machine that CPU was most
of ``regfs gc --dry-run``'s wall time on a bucket (benchmarks/README.md, "S3"): a GET of a
manifest cost 1.35 ms of CPU through ``client.get_object`` and 0.48 ms here.

:class:`FastPath` keeps what matters from the client it is made from: the URL botocore builds
for the bucket (endpoint, path or virtual-hosted style; taken once from a presigned URL), the
credentials (refreshed by botocore as usual), the region, botocore's own SigV4 signer and the
client's own HTTP session (its connection pool, TLS verification, timeouts, no proxies). Pages
are parsed by the standard library's C XML parser into the shape botocore returns (keys
URL-decoded, ``LastModified`` a datetime). An error answer is raised shaped like botocore's
(the S3 error code and the HTTP status), so :meth:`regfs.storage.s3base.S3Base.call` retries
and maps it exactly as before; an answer botocore would have handled itself (a redirect to the
bucket's region, say) turns the fast path off for the rest of the run, and the request is sent
again through the client (:class:`Fallback`).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any, NamedTuple
from urllib.parse import quote, unquote_plus, urlsplit

from regfs.storage.s3client import FakeClientError, error_code, parse_timestamp

# Error answers the client would raise the same way: a missing key or bucket, a refusal, a
# range past the end, throttling and server trouble. Any other status means botocore might
# have done something of its own (follow a region redirect, say): fall back to it.
_PASSED_ON = frozenset({403, 404, 416, 429, 500, 502, 503, 504})
# Errors that may be this module's own doing (a request signed or addressed otherwise than
# botocore would): the client sends it again, and every request after it.
_CLIENTS_OWN = frozenset({"SignatureDoesNotMatch", "AuthorizationHeaderMalformed"})
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class Got(NamedTuple):
    """A GET's answer: the body, the object's size (from ``Content-Range`` when ranged),
    ``LastModified`` (seconds since the epoch) and the ETag (unquoted)."""

    data: bytes
    size: int
    mtime: float
    etag: str | None


class Fallback(Exception):
    """The fast path cannot answer this request: send it through the client."""


class FastPath:
    """Signed ``GET``s of a bucket's objects and listing pages through a boto3 client's HTTP
    session. Use :meth:`of` to make one; it is thread-safe (the session's pool is, and a signer
    is made per request)."""

    def __init__(
        self, base_url: str, credentials: Any, region: str, session: Any, signer: Any
    ) -> None:
        self.base_url = base_url
        path = urlsplit(base_url).path
        # Path style (``/bucket/``): the bucket's own URL has no trailing slash.
        self.bucket_url = base_url[:-1] if path not in ("", "/") else base_url
        self._credentials = credentials
        self._region = region
        self._session = session
        self._signer = signer
        self._off = threading.Event()

    @classmethod
    def of(cls, client: Any, bucket: str) -> FastPath | None:
        """The fast path for ``client`` (a boto3 S3 client), or None when it cannot have one:
        not a botocore client, no credentials (anonymous), or a client whose internals are
        not the ones this was written against (then every request goes through the client)."""
        try:
            from botocore.auth import S3SigV4Auth

            credentials = client._request_signer._credentials
            region = client.meta.region_name
            session = client._endpoint.http_session
            url = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60
            )
        except Exception:
            return None
        base = str(url).split("?", 1)[0]
        if credentials is None or not region or not base.endswith("/k"):
            return None
        return cls(base[:-1], credentials, str(region), session, S3SigV4Auth)

    @property
    def usable(self) -> bool:
        """False once an answer sent the requests back to the client."""
        return not self._off.is_set()

    def _send(self, url: str, headers: dict[str, str]) -> tuple[bytes, Any]:
        """One signed GET: (body, headers) of a success; raises the error otherwise."""
        if self._off.is_set():
            raise Fallback(url)
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="GET", url=url, headers=headers)
        creds = self._credentials.get_frozen_credentials()
        self._signer(creds, "s3", self._region).add_auth(request)
        response = self._session.send(request.prepare())
        status = int(response.status_code)
        body: bytes = response.content
        if status in (200, 206):
            return body, response.headers
        err = None if status not in _PASSED_ON else _error(status, body)
        if err is None or error_code(err) in _CLIENTS_OWN:
            self._off.set()
            raise Fallback(url)
        raise err

    def get(self, key: str, limit: int) -> Got:
        """At most ``limit`` bytes of ``key`` (all of it when ``limit <= 0``).

        Raises:
            FakeClientError: S3 answered an error the client would raise too (its code, and
                the HTTP status in ``response``).
            Fallback: the fast path is off (now or before): send it through the client.
            Exception: botocore's network errors, as the client raises them.
        """
        headers = {"Range": f"bytes=0-{limit - 1}"} if limit > 0 else {}
        body, got = self._send(self.base_url + quote(key, safe="/~"), headers)
        size = int(got.get("Content-Length") or len(body))
        content_range = got.get("Content-Range")
        if isinstance(content_range, str) and "/" in content_range:
            size = int(content_range.rsplit("/", 1)[1])
        etag = got.get("ETag")
        modified = got.get("Last-Modified")
        mtime = parse_timestamp(modified).timestamp() if modified else 0.0
        return Got(body, size, mtime, etag.strip('"') if isinstance(etag, str) else None)

    def list_page(self, kw: dict[str, Any]) -> dict[str, Any]:
        """One ``ListObjectsV2`` page for the client's keyword arguments (``Prefix``,
        ``MaxKeys``, ``Delimiter``, ``ContinuationToken``), shaped as the client returns it:
        ``Contents`` (``Key``, ``Size``, ``LastModified``, ``ETag``), ``CommonPrefixes``,
        ``IsTruncated``, ``NextContinuationToken``. Raises as :meth:`get`."""
        params = {"list-type": "2", "encoding-type": "url", "prefix": kw.get("Prefix", "")}
        if kw.get("MaxKeys"):
            params["max-keys"] = str(kw["MaxKeys"])
        if kw.get("Delimiter"):
            params["delimiter"] = kw["Delimiter"]
        if kw.get("ContinuationToken"):
            params["continuation-token"] = kw["ContinuationToken"]
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
        )
        body, _ = self._send(f"{self.bucket_url}?{query}", {})
        return parse_page(body)


def parse_page(body: bytes) -> dict[str, Any]:
    """A ``ListObjectsV2`` answer (``encoding-type=url``) in the client's shape."""
    root = ET.fromstring(body)
    ns = _NS if root.tag.startswith(_NS) else ""
    contents: list[dict[str, Any]] = []
    for c in root.iterfind(f"{ns}Contents"):
        item: dict[str, Any] = {
            "Key": unquote_plus(c.findtext(f"{ns}Key") or ""),
            "Size": int(c.findtext(f"{ns}Size") or 0),
            "LastModified": parse_timestamp(c.findtext(f"{ns}LastModified") or ""),
        }
        etag = c.findtext(f"{ns}ETag")
        if etag is not None:
            item["ETag"] = etag
        contents.append(item)
    prefixes = [
        {"Prefix": unquote_plus(p.findtext(f"{ns}Prefix") or "")}
        for p in root.iterfind(f"{ns}CommonPrefixes")
    ]
    page: dict[str, Any] = {
        "IsTruncated": (root.findtext(f"{ns}IsTruncated") or "").strip().lower() == "true",
    }
    if contents:
        page["Contents"] = contents
    if prefixes:
        page["CommonPrefixes"] = prefixes
    token = root.findtext(f"{ns}NextContinuationToken")
    if token:
        page["NextContinuationToken"] = token
    return page


def _error(status: int, body: bytes) -> FakeClientError:
    """The error S3 answered: its ``<Error><Code>`` (or the status when the body has none)."""
    code = ""
    message = ""
    try:
        root = ET.fromstring(body) if body else None
    except ET.ParseError:
        root = None
    if root is not None:
        code = (root.findtext("Code") or "").strip()
        message = (root.findtext("Message") or "").strip()
    err = FakeClientError(code or str(status), message or f"HTTP {status}")
    err.response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return err
