"""regfs.storage.s3fast: small GETs signed and sent without botocore's per-request machinery,
answering exactly what ``client.get_object`` answers (a real S3 server, SeaweedFS), with
throttling, server errors and dropped connections injected by a loopback proxy, and falling
back to the client for answers only the client knows how to handle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faultproxy
import pytest
import s3bed

from regfs.storage.base import ErrorKind, NotFound, Unavailable
from regfs.storage.s3 import S3Storage
from regfs.storage.s3client import Retry, error_code, make_client, to_storage_error
from regfs.storage.s3fast import Fallback, FastPath, parse_page

pytestmark = pytest.mark.registry


def _client(weed: s3bed.Weed, endpoint: str | None = None) -> Any:
    return make_client(
        endpoint_url=endpoint or weed.endpoint,
        region=weed.REGION,
        access_key=weed.ACCESS_KEY,
        secret_key=weed.SECRET_KEY,
        timeout=5,
    )


@pytest.fixture
def proxy(weed: s3bed.Weed) -> Iterator[faultproxy.FaultProxy]:
    with faultproxy.FaultProxy(weed.s3_port) as p:
        yield p


@pytest.fixture
def objects(weed: s3bed.Weed, s3_root: str) -> dict[str, bytes]:
    client = weed.client()
    bodies = {
        f"{s3_root}/docker/registry/v2/a/link": b"sha256:" + b"ab" * 32,
        f"{s3_root}/docker/registry/v2/b/data": bytes(range(256)) * 40,
        f"{s3_root}/docker/registry/v2/tag~v1.0_x-y/link": b"x",
        f"{s3_root}/docker/registry/v2/empty": b"",
    }
    for key, body in bodies.items():
        client.put_object(Bucket=weed.bucket, Key=key, Body=body)
    return bodies


def test_answers_what_get_object_answers(weed: s3bed.Weed, objects: dict[str, bytes]) -> None:
    client = _client(weed)
    fast = FastPath.of(client, weed.bucket)
    assert fast is not None and fast.usable
    for key, body in objects.items():
        if not body:
            continue
        for limit in (0, 3, len(body), len(body) + 10):
            got = fast.get(key, limit)
            kw: dict[str, Any] = {"Bucket": weed.bucket, "Key": key}
            if limit > 0:
                kw["Range"] = f"bytes=0-{limit - 1}"
            resp = client.get_object(**kw)
            assert got.data == resp["Body"].read() == (body[:limit] if limit else body)
            assert got.size == len(body)
            assert got.mtime == resp["LastModified"].timestamp()
            assert got.etag == resp["ETag"].strip('"')


def test_listing_pages_are_the_clients(
    weed: s3bed.Weed, s3_root: str, objects: dict[str, bytes]
) -> None:
    client = _client(weed)
    odd = [f"{s3_root}/docker/registry/v2/odd/{name}" for name in ("a b+c%", "ü=1&x", "t~/k")]
    for key in odd:
        client.put_object(Bucket=weed.bucket, Key=key, Body=b"x")
    fast = FastPath.of(client, weed.bucket)
    assert fast is not None
    for extra in ({}, {"Delimiter": "/"}):
        for prefix in (
            f"{s3_root}/",
            f"{s3_root}/docker/registry/v2/",
            f"{s3_root}/docker/registry/v2/odd/",
        ):
            kw: dict[str, Any] = {"Bucket": weed.bucket, "Prefix": prefix, "MaxKeys": 2, **extra}
            pages = 0
            while True:
                ours = fast.list_page(kw)
                theirs = client.list_objects_v2(**kw)
                assert ours["IsTruncated"] == theirs["IsTruncated"]
                assert ours.get("CommonPrefixes") == theirs.get("CommonPrefixes")
                want = [
                    {k: o[k] for k in ("Key", "Size", "LastModified", "ETag")}
                    for o in theirs.get("Contents") or []
                ]
                assert ours.get("Contents", []) == want
                pages += 1
                if not ours["IsTruncated"]:
                    break
                assert ours["NextContinuationToken"]
                kw["ContinuationToken"] = ours["NextContinuationToken"]
            assert pages >= 1
    keys = {
        o["Key"]
        for o in fast.list_page({"Prefix": f"{s3_root}/docker/registry/v2/odd/"})["Contents"]
    }
    assert keys == set(odd)


def test_a_page_without_namespace_or_etag_parses() -> None:
    page = parse_page(
        b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a%2Fb+c</Key>"
        b"<Size>3</Size><LastModified>2026-12-05T14:08:01.000Z</LastModified></Contents>"
        b"<CommonPrefixes><Prefix>p%20q/</Prefix></CommonPrefixes></ListBucketResult>"
    )
    assert page["IsTruncated"] is False and "NextContinuationToken" not in page
    assert [(c["Key"], c["Size"], c["LastModified"].timestamp()) for c in page["Contents"]] == [
        ("a/b c", 3, 1796479681.0)
    ]
    assert "ETag" not in page["Contents"][0]
    assert page["CommonPrefixes"] == [{"Prefix": "p q/"}]


def test_errors_are_the_clients(weed: s3bed.Weed, s3_root: str, objects: dict[str, bytes]) -> None:
    fast = FastPath.of(_client(weed), weed.bucket)
    assert fast is not None
    with pytest.raises(Exception) as missing:
        fast.get(f"{s3_root}/docker/registry/v2/nothing/here", 10)
    assert error_code(missing.value) == "NoSuchKey"
    assert to_storage_error(missing.value, "x").kind == ErrorKind.NOT_FOUND
    with pytest.raises(Exception) as empty:  # a range of an empty object
        fast.get(f"{s3_root}/docker/registry/v2/empty", 10)
    assert error_code(empty.value) == "InvalidRange"
    assert fast.usable


def test_storage_reads_through_it_and_retries(
    weed: s3bed.Weed, s3_root: str, objects: dict[str, bytes], proxy: faultproxy.FaultProxy
) -> None:
    storage = S3Storage(
        _client(weed, proxy.url), weed.bucket, s3_root, retry=Retry(attempts=8, base=0.001)
    )
    assert storage.fast is not None
    proxy.inject("slowdown", op="GetObject", times=2)
    proxy.inject("error500", op="GetObject", times=1)
    proxy.inject("drop", op="GetObject", times=2)
    data, size, _ = storage.read_file("b/data", 100)
    assert data == objects[f"{s3_root}/docker/registry/v2/b/data"][:100] and size == 256 * 40
    assert storage.stats.retries["GetObject"] == 5
    assert proxy.total() == storage.stats.total == 6
    assert storage.read_file("empty", 10) == (b"", 0, storage.lstat("empty").st_mtime)
    with pytest.raises(NotFound):
        storage.read_file("nothing/here", 10)
    proxy.inject("slowdown", op="GetObject", times=-1)
    with pytest.raises(Unavailable):
        storage.read_file("a/link", 100)
    assert storage.fast.usable


class _Answer:
    def __init__(self, status: int, content: bytes = b"", headers: Any = None) -> None:
        self.status_code = status
        self.content = content
        self.headers = headers or {}


class _Session:
    """An HTTP session answering every request with ``answer``."""

    def __init__(self, answer: _Answer) -> None:
        self.answer = answer
        self.sent: list[Any] = []

    def send(self, request: Any) -> _Answer:
        self.sent.append(request)
        return self.answer


def _fast(session: _Session) -> FastPath:
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import Credentials

    creds = Credentials("k", "s")
    return FastPath("http://127.0.0.1:1/bucket/", creds, "us-east-1", session, S3SigV4Auth)


def test_an_answer_only_the_client_handles_turns_it_off() -> None:
    moved = b"<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>"
    session = _Session(_Answer(301, moved))
    fast = _fast(session)
    with pytest.raises(Fallback):
        fast.get("x/link", 10)
    assert not fast.usable
    with pytest.raises(Fallback):  # off for good: nothing more is sent
        fast.get("x/link", 10)
    assert len(session.sent) == 1


def test_a_signature_refused_goes_back_to_the_client() -> None:
    refused = b"<Error><Code>SignatureDoesNotMatch</Code></Error>"
    session = _Session(_Answer(403, refused))
    fast = _fast(session)
    with pytest.raises(Fallback):
        fast.get("x/link", 10)
    assert not fast.usable
    denied = _fast(_Session(_Answer(403, b"<Error><Code>AccessDenied</Code></Error>")))
    with pytest.raises(Exception) as exc:
        denied.get("x/link", 10)
    assert error_code(exc.value) == "AccessDenied" and denied.usable


def test_signed_request_names_the_key_and_range() -> None:
    headers = {
        "Content-Range": "bytes 0-1/5",
        "Content-Length": "2",
        "Last-Modified": "Sat, 05 Dec 2026 14:08:01 GMT",
        "ETag": '"abc"',
    }
    session = _Session(_Answer(206, b"he", headers))
    got = _fast(session).get("repositories/a b/link", 2)
    assert (got.data, got.size, got.etag) == (b"he", 5, "abc")
    assert got.mtime == 1796479681.0
    sent = session.sent[0]
    assert sent.url == "http://127.0.0.1:1/bucket/repositories/a%20b/link"
    assert sent.headers["Range"] == b"bytes=0-1" or sent.headers["Range"] == "bytes=0-1"
    assert "Authorization" in sent.headers
    throttled = _Session(_Answer(503, b"<Error><Code>SlowDown</Code></Error>"))
    with pytest.raises(Exception) as slow:
        _fast(throttled).get("k", 0)
    assert error_code(slow.value) == "SlowDown"
    assert to_storage_error(slow.value, "k").kind == ErrorKind.UNAVAILABLE
    assert "Range" not in throttled.sent[0].headers


def test_no_fast_path_without_a_botocore_client() -> None:
    assert FastPath.of(object(), "bucket") is None
