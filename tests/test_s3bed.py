"""The S3 test bed (tests/s3bed.py): a real SeaweedFS on loopback, started and ended cleanly."""

from __future__ import annotations

import hashlib
import os

import pytest
import s3bed


def _listening(pid: int) -> set[tuple[str, int]]:
    """``(address, port)`` of every TCP socket process ``pid`` listens on (from /proc)."""
    inodes: set[str] = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out: set[tuple[str, int]] = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(table, encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = cols[1].split(":")
            if v6:
                addr = "v6:" + addr_hex
            else:
                addr = ".".join(str(int(addr_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
            out.add((addr, int(port_hex, 16)))
    return out


def test_require_weed_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3bed, "find_weed", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="weed"):
        s3bed.require_weed()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true.*weed"):
        s3bed.require_weed()


def test_free_port_pairs_are_distinct_with_their_grpc_twin() -> None:
    ports = s3bed.free_port_pairs(5)
    everything = ports + [p + s3bed.GRPC_OFFSET for p in ports]
    assert len(set(everything)) == 10
    assert all(p <= 65535 for p in everything)


def test_weed_env_has_no_aws_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_CA_BUNDLE", "/nowhere")
    monkeypatch.setenv("S3_BUCKET", "b")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:1")
    env = s3bed.weed_env()
    assert not [k for k in env if k.startswith(("AWS_", "S3_")) or k.lower() == "https_proxy"]


def test_weed_listens_on_loopback_only_on_the_ports_it_was_given(weed: s3bed.Weed) -> None:
    assert weed.proc is not None
    listening = _listening(weed.proc.pid)
    given = set(weed.ports.values()) | {p + s3bed.GRPC_OFFSET for p in weed.ports.values()}
    assert listening, "weed listens on nothing?"
    assert {addr for addr, _ in listening} == {"127.0.0.1"}, listening
    assert {port for _, port in listening} <= given, listening
    assert ("127.0.0.1", weed.s3_port) in listening


def test_s3_basics_the_backend_relies_on(weed: s3bed.Weed, s3_root: str) -> None:
    c = weed.client()
    b = weed.bucket
    link = f"{s3_root}/docker/registry/v2/repositories/a/_manifests/revisions/sha256/ab/link"
    c.put_object(Bucket=b, Key=link, Body=b"sha256:ab")
    for i in range(5):
        c.put_object(Bucket=b, Key=f"{s3_root}/docker/registry/v2/blobs/sha256/0{i}/x", Body=b"x")
    keys = s3bed.list_keys(c, b, s3_root + "/")
    assert len(keys) == 6
    # a plain put's ETag is the MD5 of the body: what proves a revision link without a GET
    assert keys[link]["ETag"].strip('"') == hashlib.md5(b"sha256:ab").hexdigest()
    # delimiter listing: "folders" are common prefixes, no folder objects
    r = c.list_objects_v2(
        Bucket=b, Prefix=f"{s3_root}/docker/registry/v2/blobs/sha256/", Delimiter="/"
    )
    assert len(r.get("CommonPrefixes") or []) == 5
    assert not r.get("Contents")
    # paging
    r = c.list_objects_v2(Bucket=b, Prefix=s3_root + "/", MaxKeys=2)
    assert r["IsTruncated"] and len(r["Contents"]) == 2
    # multipart upload: invisible to listings until completed; listed, then aborted
    up_key = f"{s3_root}/docker/registry/v2/repositories/a/_uploads/u1/data"
    mp = c.create_multipart_upload(Bucket=b, Key=up_key)
    c.upload_part(Bucket=b, Key=up_key, UploadId=mp["UploadId"], PartNumber=1, Body=b"y" * 100)
    assert up_key not in s3bed.list_keys(c, b, s3_root + "/")
    ups = c.list_multipart_uploads(Bucket=b, Prefix=s3_root + "/").get("Uploads") or []
    assert [u["Key"] for u in ups] == [up_key]
    # batched delete, then the fixture's cleanup aborts the multipart upload
    c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": link}]})
    assert link not in s3bed.list_keys(c, b, s3_root + "/")


def test_a_second_server_runs_beside_the_first_and_leaves_nothing(weed: s3bed.Weed) -> None:
    with s3bed.Weed(bucket="regfs-second") as other:
        assert other.proc is not None
        pid = other.proc.pid
        workdir = other.workdir
        assert not set(other.ports.values()) & set(weed.ports.values())
        c = other.client()
        c.put_object(Bucket="regfs-second", Key="k", Body=b"v")
        assert s3bed.list_keys(c, "regfs-second").keys() == {"k"}
        assert "k" not in s3bed.list_keys(weed.client(), weed.bucket, "k")
    # the process group is gone and so is its folder (sockets and data included)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert workdir is not None and not os.path.exists(workdir)
