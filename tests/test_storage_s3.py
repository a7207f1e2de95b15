"""regfs.storage.s3: the Storage protocol on a real S3 server (SeaweedFS), over buckets the real
registry wrote, with throttling and dropped connections injected by a loopback proxy."""

from __future__ import annotations

import hashlib
from typing import Any

import faultproxy
import pytest
import s3bed

from regfs.storage.base import (
    FILE,
    IsAFolder,
    ListError,
    NotEmpty,
    NotFound,
    ObjectInfo,
    Storage,
    Unavailable,
)
from regfs.storage.s3 import S3Storage, proves_revision_link
from regfs.storage.s3client import Retry

pytestmark = pytest.mark.registry


def _storage(weed: s3bed.Weed, prefix: str, endpoint: str | None = None, **kw: Any) -> S3Storage:
    kw.setdefault("retry", Retry(attempts=6, base=0.001, cap=0.01))
    return s3bed.storage(weed, prefix, endpoint, **kw)


proxy = s3bed.proxy


def _v2_keys(weed: s3bed.Weed, prefix: str) -> dict[str, dict[str, Any]]:
    base = f"{prefix}/docker/registry/v2/"
    return {k[len(base) :]: v for k, v in s3bed.list_keys(weed.client(), weed.bucket, base).items()}


def _listing(storage: S3Storage, rel: str = "") -> tuple[dict[str, ObjectInfo], list[ListError]]:
    objects: dict[str, ObjectInfo] = {}
    errors: list[ListError] = []
    for item in storage.list_prefix(rel):
        if isinstance(item, ListError):
            errors.append(item)
        else:
            assert item.path not in objects, f"listed twice: {item.path}"
            objects[item.path] = item
    return objects, errors


def test_it_is_a_storage(weed: s3bed.Weed, s3_root: str) -> None:
    assert isinstance(_storage(weed, s3_root), Storage)


@pytest.mark.parametrize("name", ["shared", "damaged", "uploads"])
def test_parallel_listing_sees_every_key_once(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, proxy: faultproxy.FaultProxy, name: str
) -> None:
    prefix = scenarios.get(name).s3.prefix
    truth = _v2_keys(weed, prefix)
    storage = _storage(weed, prefix, proxy.url)
    objects, errors = _listing(storage)
    assert errors == []
    assert set(objects) == set(truth)
    for path, info in objects.items():
        assert info.kind == FILE
        assert info.size == truth[path]["Size"]
        assert info.etag == truth[path]["ETag"].strip('"')
    # sharded: blobs/sha256/<xx>/ and the repositories were listed apart, not in one listing
    assert proxy.counts()["ListObjectsV2"] > 4
    assert storage.stats.requests["ListObjectsV2"] == proxy.counts()["ListObjectsV2"]


def test_a_sub_prefix_lists_only_itself(weed: s3bed.Weed, scenarios: s3bed.Scenarios) -> None:
    prefix = scenarios.get("shared").s3.prefix
    storage = _storage(weed, prefix)
    objects, _ = _listing(storage, "repositories/org/team")
    assert objects
    assert all(p.startswith("repositories/org/team/") for p in objects)
    # org/team/app is inside org/team's prefix: both are there
    assert any(p.startswith("repositories/org/team/app/") for p in objects)
    assert any(p.startswith("repositories/org/team/_manifests/") for p in objects)


def test_revision_links_are_proven_by_etag(weed: s3bed.Weed, scenarios: s3bed.Scenarios) -> None:
    tree = scenarios.get("demo")
    storage = _storage(weed, tree.s3.prefix)
    objects, _ = _listing(storage, "repositories")
    revisions = [o for o in objects.values() if "/_manifests/revisions/" in o.path]
    assert revisions
    assert all(proves_revision_link(o) for o in revisions)
    # a layer link, a tag link: not revision links, never "proven" this way
    others = [o for o in objects.values() if o.path.endswith("/link") and o not in revisions]
    assert others and not any(proves_revision_link(o) for o in others)
    # an ETag that is not the MD5 of the folder's digest (other content, multipart, encrypted)
    r = revisions[0]
    assert not proves_revision_link(r._replace(etag=hashlib.md5(b"sha256:00").hexdigest()))
    assert not proves_revision_link(r._replace(etag=r.etag + "-2" if r.etag else None))
    assert not proves_revision_link(r._replace(etag=None))


def test_read_stat_and_stream(weed: s3bed.Weed, scenarios: s3bed.Scenarios) -> None:
    tree = scenarios.get("demo")
    storage = _storage(weed, tree.s3.prefix)
    digest, size = next(iter(tree.meta["blobs"].items()))
    hx = digest.split(":")[1]
    data_path = f"blobs/sha256/{hx[:2]}/{hx}/data"
    data, got_size, mtime = storage.read_file(data_path, 1 << 20)
    assert got_size == size and len(data) == size and mtime > 0
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    head, total, _ = storage.read_file(data_path, 10)  # a ranged GET
    assert head == data[:10] and total == size
    st = storage.lstat(data_path)  # HEAD: the re-check before a delete
    assert st.st_size == size and st.st_mtime == mtime and st.etag
    with storage.open_stream(data_path) as stream:
        assert stream.size == size
        assert (stream.stat().st_size, stream.stat().st_mtime) == (size, mtime)
        buf = bytearray(size)
        n = stream.readinto(memoryview(buf))
        assert bytes(buf[:n]) + stream.read() == data
    assert storage.exists(data_path)
    assert storage.exists(f"blobs/sha256/{hx[:2]}")  # a prefix with objects: a folder
    assert not storage.exists("blobs/sha256/zz")
    with pytest.raises(NotFound):
        storage.read_file("blobs/sha256/zz/none/data", 10)
    with pytest.raises(IsAFolder):
        storage.read_file(f"blobs/sha256/{hx[:2]}", 10)
    names = {e.name for e in storage.list_dir("blobs/sha256")}
    assert f"{hx[:2]}" in names
    assert storage.list_folder("nope").error is not None


def test_throttling_and_dropped_connections_are_retried(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, proxy: faultproxy.FaultProxy
) -> None:
    prefix = scenarios.get("shared").s3.prefix
    clean, _ = _listing(_storage(weed, prefix))
    proxy.inject("slowdown", op="ListObjectsV2", times=5)
    proxy.inject("error500", op="ListObjectsV2", times=2)
    proxy.inject("drop", op="ListObjectsV2", times=3)
    # (the faults hit the first requests in a row: one request may meet all ten)
    storage = _storage(weed, prefix, proxy.url, retry=Retry(attempts=12, base=0.001, cap=0.01))
    objects, errors = _listing(storage)
    assert errors == []
    assert objects == clean
    faults = [s.fault for s in proxy.seen() if s.fault]
    assert sorted(faults) == sorted(["slowdown"] * 5 + ["error500"] * 2 + ["drop"] * 3)
    assert storage.stats.retries["ListObjectsV2"] == 10


def test_a_store_that_stays_throttled_gives_errors_as_values(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, proxy: faultproxy.FaultProxy
) -> None:
    """Throttled for good: the walk ends with errors as values (never an exception, never a
    partial listing without an error); single reads raise Unavailable."""
    prefix = scenarios.get("shared").s3.prefix
    proxy.inject("slowdown", times=-1)
    storage = _storage(weed, prefix, proxy.url, retry=Retry(attempts=3, base=0.001, cap=0.002))
    objects, errors = _listing(storage)
    assert errors and not objects
    assert all(isinstance(e.error, Unavailable) for e in errors)
    with pytest.raises(Unavailable):
        storage.list_dir("blobs")
    with pytest.raises(Unavailable):
        storage.lstat("blobs/sha256/00/x/data")
    assert all(s.fault == "slowdown" for s in proxy.seen())
    assert proxy.total() == storage.stats.total


def test_batched_delete_survives_a_dropped_answer(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    direct = weed.client()
    paths = [f"blobs/sha256/{i % 256:02x}/{i:064x}/data" for i in range(2300)]
    for p in paths[:50]:
        direct.put_object(Bucket=weed.bucket, Key=f"{s3_root}/docker/registry/v2/{p}", Body=b"x")
    storage = _storage(weed, s3_root, proxy.url)
    # the first batch is carried out by the server but its answer is lost: retried, still fine
    proxy.inject("drop", op="DeleteObjects", times=1, after_forward=True)
    results = storage.delete_many(paths)
    assert [r.path for r in results] == paths
    assert all(r.error is None for r in results)
    assert proxy.counts()["DeleteObjects"] == 3 + 1  # 1,000 a call, one retried
    assert not _v2_keys(weed, s3_root)


def test_a_batch_that_keeps_failing_names_every_key(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    direct = weed.client()
    paths = [f"repositories/r/_layers/sha256/{i:064x}/link" for i in range(5)]
    for p in paths:
        direct.put_object(Bucket=weed.bucket, Key=f"{s3_root}/docker/registry/v2/{p}", Body=b"x")
    proxy.inject("slowdown", op="DeleteObjects", times=-1)
    storage = _storage(weed, s3_root, proxy.url, retry=Retry(attempts=2, base=0.001, cap=0.002))
    results = storage.delete_many(paths)
    assert all(isinstance(r.error, Unavailable) for r in results)
    assert set(_v2_keys(weed, s3_root)) == set(paths)  # nothing deleted, and it says so


def test_multipart_uploads_are_found_sized_and_aborted(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, s3_root: str
) -> None:
    meta = scenarios.get("uploads").meta
    storage = _storage(weed, scenarios.get("uploads").s3.prefix)
    ups = storage.multipart_uploads()
    expected = {
        f"{u['path']}/data".removeprefix("docker/registry/v2/"): u["size"]
        for u in meta["uploads"]
        if u["kind"] in ("unfinished", "posted")
    }
    assert {u.path: storage.multipart_size(u) for u in ups} == expected
    assert all(u.initiated > 0 for u in ups)
    # abort one in a prefix of our own (the scenario is shared: leave it alone)
    direct = weed.client()
    key = f"{s3_root}/docker/registry/v2/repositories/a/_uploads/u1/data"
    mp = direct.create_multipart_upload(Bucket=weed.bucket, Key=key)
    direct.upload_part(
        Bucket=weed.bucket, Key=key, UploadId=mp["UploadId"], PartNumber=1, Body=b"y" * 10
    )
    mine = _storage(weed, s3_root)
    [up] = mine.multipart_uploads()
    assert up.path == "repositories/a/_uploads/u1/data" and mine.multipart_size(up) == 10
    mine.abort_multipart(up)
    assert mine.multipart_uploads() == []


def test_trash_moves_and_restores(weed: s3bed.Weed, s3_root: str) -> None:
    direct = weed.client()
    base = f"{s3_root}/docker/registry/v2"
    for name in ("data", "extra"):
        direct.put_object(
            Bucket=weed.bucket, Key=f"{base}/blobs/sha256/ab/abc/{name}", Body=name.encode()
        )
    storage = _storage(weed, s3_root)
    with pytest.raises(NotEmpty):
        storage.rmdir("blobs/sha256/ab/abc")
    storage.move_to_trash("blobs/sha256/ab/abc", "run1")
    assert not _v2_keys(weed, s3_root)
    assert storage.in_trash("run1", "blobs/sha256/ab/abc/data")
    storage.rmdir("blobs/sha256/ab/abc")  # nothing left under it: fine
    storage.restore_from_trash("run1", "blobs/sha256/ab/abc/data")
    assert set(_v2_keys(weed, s3_root)) == {"blobs/sha256/ab/abc/data"}
    assert not storage.in_trash("run1", "blobs/sha256/ab/abc/data")
    # restoring never overwrites: a new object at the place refuses
    storage.move_to_trash("blobs/sha256/ab/abc/data", "run2")
    direct.put_object(Bucket=weed.bucket, Key=f"{base}/blobs/sha256/ab/abc/data", Body=b"new")
    with pytest.raises(FileExistsError):
        storage.restore_from_trash("run2", "blobs/sha256/ab/abc/data")
    assert storage.read_file("blobs/sha256/ab/abc/data", 10)[0] == b"new"


# ---------------------------------------------------------------------------------------------
# regfs's own state in the bucket (regfs.storage.s3state)


def test_state_store_lock_is_exclusive_across_clients(weed: s3bed.Weed, s3_root: str) -> None:
    from regfs.storage.base import StateStore
    from regfs.storage.s3state import S3StateStore

    one = S3StateStore(_storage(weed, s3_root))
    two = S3StateStore(_storage(weed, s3_root))  # another host: another client
    assert isinstance(one, StateStore)
    one.create_exclusive("lock", b"run-1 host-a")
    with pytest.raises(FileExistsError):
        two.create_exclusive("lock", b"run-2 host-b")
    assert two.read("lock") == b"run-1 host-a"
    assert f"{s3_root}/.regfs/lock" in s3bed.list_keys(weed.client(), weed.bucket, s3_root)
    one.remove("lock")
    two.create_exclusive("lock", b"run-2 host-b")
    with pytest.raises(NotFound):
        one.remove("nothing")


def test_state_store_create_whose_answer_was_lost_is_ours(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    from regfs.storage.s3state import S3StateStore

    store = S3StateStore(_storage(weed, s3_root, proxy.url))
    proxy.inject("drop", op="PutObject", times=1, after_forward=True)
    store.create_exclusive("lock", b"run-3 host-c")  # retried: meets itself, and knows it
    assert [s.fault for s in proxy.seen()][:1] == ["drop"]
    assert store.read("lock") == b"run-3 host-c"


def test_state_store_journal_and_trees(weed: s3bed.Weed, s3_root: str) -> None:
    from regfs.storage.s3state import S3StateStore

    store = S3StateStore(_storage(weed, s3_root))
    app = store.open_append("runs/r1/journal.jsonl")
    app.write('{"a": 1}\n')
    app.sync()
    app.write('{"b": 2}\n')
    assert store.read("runs/r1/journal.jsonl") == b'{"a": 1}\n'  # durable as of the last sync
    app.close()
    assert store.read("runs/r1/journal.jsonl") == b'{"a": 1}\n{"b": 2}\n'
    again = store.open_append("runs/r1/journal.jsonl")
    again.write('{"c": 3}\n')
    again.close()
    assert store.read("runs/r1/journal.jsonl").count(b"\n") == 3
    store.write_atomic("runs/r1/plan.json", b"{}")
    assert store.is_folder("runs") and store.is_folder("runs/r1")
    assert not store.is_folder("runs/r1/plan.json")
    assert {e.name for e in store.list_dir("runs/r1")} == {"journal.jsonl", "plan.json"}
    assert store.lstat("runs/r1/plan.json").st_size == 2
    assert store.tree_size("runs") == (2, 2 + len(store.read("runs/r1/journal.jsonl")))
    store.remove_tree("runs")
    assert store.tree_size("runs") == (0, 0)
    assert not store.is_folder("runs")


def test_state_store_lists_only_folders_that_hold_objects(weed: s3bed.Weed, s3_root: str) -> None:
    """A folder is its objects: once a trash run's objects are deleted the run is gone from
    the listing, although SeaweedFS (a filer) keeps the emptied folder and lists it as a
    common prefix (real S3 does not)."""
    from regfs.storage.s3state import S3StateStore

    store = S3StateStore(_storage(weed, s3_root))
    store.write_atomic("trash/r1/blobs/a/data", b"x")
    store.write_atomic("trash/r2/blobs/b/data", b"yy")
    assert {e.name for e in store.list_dir("trash")} == {"r1", "r2"}
    store.remove_tree("trash/r1")
    assert {e.name for e in store.list_dir("trash")} == {"r2"}
    store.remove_tree("trash/r2")
    with pytest.raises(NotFound):
        store.list_dir("trash")
