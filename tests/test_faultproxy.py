"""The loopback fault proxy (tests/faultproxy.py) in front of the real S3 server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import faultproxy
import pytest
import s3bed


@pytest.fixture
def proxy(weed: s3bed.Weed) -> Iterator[faultproxy.FaultProxy]:
    with faultproxy.FaultProxy(weed.s3_port) as p:
        yield p


def _client(weed: s3bed.Weed, proxy: faultproxy.FaultProxy, attempts: int) -> Any:
    from botocore.config import Config

    kw = weed.client_kwargs(proxy.url)
    kw["config"] = kw["config"].merge(
        Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=5,
        )
    )
    return s3bed.require_boto3().session.Session().client("s3", **kw)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "op"),
    [
        ("GET", "/b", "list-type=2&prefix=x", {}, "ListObjectsV2"),
        ("GET", "/b/", "uploads&prefix=x", {}, "ListMultipartUploads"),
        ("GET", "/b/k/data", "", {}, "GetObject"),
        ("HEAD", "/b/k", "", {}, "HeadObject"),
        ("HEAD", "/b", "", {}, "HeadBucket"),
        ("POST", "/b", "delete", {}, "DeleteObjects"),
        ("PUT", "/b/k", "", {}, "PutObject"),
        ("PUT", "/b/k", "", {"x-amz-copy-source": "/b/j"}, "CopyObject"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, "UploadPart"),
        ("POST", "/b/k", "uploads", {}, "CreateMultipartUpload"),
        ("POST", "/b/k", "uploadId=u", {}, "CompleteMultipartUpload"),
        ("DELETE", "/b/k", "uploadId=u", {}, "AbortMultipartUpload"),
        ("DELETE", "/b/k", "", {}, "DeleteObject"),
        ("GET", "/", "", {}, "ListBuckets"),
    ],
)
def test_s3_operation(method: str, path: str, query: str, headers: dict[str, str], op: str) -> None:
    assert faultproxy.s3_operation(method, path, query, headers) == op


def test_forwards_and_counts(weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy) -> None:
    c = _client(weed, proxy, 1)
    b = weed.bucket
    c.put_object(Bucket=b, Key=f"{s3_root}/a", Body=b"hello")
    assert c.get_object(Bucket=b, Key=f"{s3_root}/a")["Body"].read() == b"hello"
    head = c.head_object(Bucket=b, Key=f"{s3_root}/a")
    assert head["ContentLength"] == 5
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=b, Prefix=s3_root)["Contents"]]
    assert keys == [f"{s3_root}/a"]
    c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": f"{s3_root}/a"}]})
    assert proxy.counts() == {
        "PutObject": 1,
        "GetObject": 1,
        "HeadObject": 1,
        "ListObjectsV2": 1,
        "DeleteObjects": 1,
    }
    assert all(s.status in (200, 204) and s.fault is None for s in proxy.seen())
    proxy.reset()
    assert proxy.total() == 0


def test_slowdown_and_500_are_retried_by_a_retrying_client(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    from botocore.exceptions import ClientError

    b = weed.bucket
    weed.client().put_object(Bucket=b, Key=f"{s3_root}/k", Body=b"v")
    proxy.inject("slowdown", op="ListObjectsV2", times=1)
    with pytest.raises(ClientError) as exc:
        _client(weed, proxy, 1).list_objects_v2(Bucket=b, Prefix=s3_root)
    assert exc.value.response["Error"]["Code"] == "SlowDown"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    proxy.reset()
    proxy.inject("slowdown", op="ListObjectsV2", times=1)
    proxy.inject("error500", op="ListObjectsV2", times=1)
    r = _client(weed, proxy, 5).list_objects_v2(Bucket=b, Prefix=s3_root)
    assert [o["Key"] for o in r["Contents"]] == [f"{s3_root}/k"]
    assert [s.fault for s in proxy.seen()] == ["slowdown", "error500", None]


def test_drop_before_and_after_forwarding(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    b = weed.bucket
    direct = weed.client()
    key = f"{s3_root}/gone"
    direct.put_object(Bucket=b, Key=key, Body=b"v")
    # dropped before: the object is still there
    proxy.inject("drop", op="DeleteObjects", times=1)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        _client(weed, proxy, 1).delete_objects(Bucket=b, Delete={"Objects": [{"Key": key}]})
    assert key in s3bed.list_keys(direct, b, s3_root)
    # dropped after: the server deleted it, the client never heard
    proxy.inject("drop", op="DeleteObjects", times=1, after_forward=True)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        _client(weed, proxy, 1).delete_objects(Bucket=b, Delete={"Objects": [{"Key": key}]})
    assert key not in s3bed.list_keys(direct, b, s3_root)
    assert [s.fault for s in proxy.seen()] == ["drop", "drop"]


def test_latency_is_added_to_every_request(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    c = _client(weed, proxy, 1)
    c.list_objects_v2(Bucket=weed.bucket, Prefix=s3_root)  # connection set up
    proxy.latency = 0.2
    t0 = time.monotonic()
    for _ in range(3):
        c.list_objects_v2(Bucket=weed.bucket, Prefix=s3_root)
    # a lower bound only (the delay is a sleep): never an upper bound in a unit test
    assert time.monotonic() - t0 >= 0.6


def test_inject_rejects_unknown_faults(proxy: faultproxy.FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        proxy.inject("explode")
    with pytest.raises(ValueError, match="after_forward"):
        proxy.inject("slowdown", after_forward=True)
