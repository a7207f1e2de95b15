"""regfs.gc.s3exec: a gc plan executed on a real S3 server (SeaweedFS) in batches, re-checked by
HEAD, with throttling, dropped connections and failing batches injected by the loopback proxy."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import faultproxy
import pytest
import s3bed

from regfs.gc.finish import left_paths
from regfs.gc.journal import Journal, load_run
from regfs.gc.plan import GcOptions, GcPlan, PartKind
from regfs.gc.s3exec import S3Executor, plain_md5, same_second
from regfs.gc.steps import Action, ExecResult, Step
from regfs.gc.trash import restore
from regfs.storage.s3 import S3Storage
from regfs.storage.s3client import Retry
from regfs.storage.s3state import S3StateStore

pytestmark = pytest.mark.registry

V2 = "docker/registry/v2"


_storage = s3bed.storage


proxy = s3bed.proxy


class Bucket:
    """Objects of one test prefix, written and read with a plain client."""

    def __init__(self, weed: s3bed.Weed, prefix: str) -> None:
        self.weed = weed
        self.prefix = prefix
        self.client = weed.client()

    def put(self, rel: str, body: bytes) -> dict[str, Any]:
        key = f"{self.prefix}/{V2}/{rel}"
        self.client.put_object(Bucket=self.weed.bucket, Key=key, Body=body)
        head: dict[str, Any] = self.client.head_object(Bucket=self.weed.bucket, Key=key)
        return head

    def names(self, under: str = V2) -> set[str]:
        base = f"{self.prefix}/{under}/"
        return {k[len(base) :] for k in s3bed.list_keys(self.client, self.weed.bucket, base)}


def _digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()


def _blob(b: Bucket, i: int, body: bytes | None = None) -> Action:
    d = _digest(i)
    hx = d.split(":")[1]
    path = f"blobs/sha256/{hx[:2]}/{hx}"
    head = b.put(f"{path}/data", body if body is not None else f"blob {i}".encode())
    return Action(
        Step.BLOB,
        path,
        digest=d,
        size=head["ContentLength"],
        expect_size=head["ContentLength"],
        expect_mtime=head["LastModified"].timestamp(),
    )


def _link(b: Bucket, step: str, repo: str, i: int, content: str | None = None) -> Action:
    d = _digest(i)
    alg, hx = d.split(":")
    folder = {
        "revision": f"repositories/{repo}/_manifests/revisions/{alg}/{hx}",
        "layer_link": f"repositories/{repo}/_layers/{alg}/{hx}",
        "tag_index": f"repositories/{repo}/_manifests/tags/v1/index/{alg}/{hx}",
    }[step]
    head = b.put(f"{folder}/link", (content or d).encode())
    return Action(
        Step(step), folder, repository=repo, digest=d, expect_mtime=head["LastModified"].timestamp()
    )


def _plan(storage: S3Storage, actions: list[Action], *, trash: bool = False) -> GcPlan:
    return GcPlan(
        run_id="20261205T000000Z-53e3ec00",
        v2=storage.location,
        options=GcOptions(trash=trash),
        created=time.time(),
        actions=actions,
        kept=[],
        blocking=[],
    )


def _run(storage: S3Storage, plan: GcPlan, **kw: Any) -> tuple[ExecResult, S3StateStore]:
    state = S3StateStore(storage)
    journal = Journal(state, plan.run_id)
    journal.write_plan(plan, "test")
    ex = S3Executor(
        plan,
        journal=journal,
        trash_run=plan.run_id if plan.options.trash else None,
        storage=storage,
        **kw,
    )
    try:
        return ex.run(), state
    finally:
        journal.close()


def test_helpers() -> None:
    assert same_second(1700000000.0, 1700000000.999)
    assert not same_second(1700000000.0, 1700000001.0)
    assert plain_md5(hashlib.md5(b"x").hexdigest())
    assert not plain_md5(hashlib.md5(b"x").hexdigest() + "-2")
    assert not plain_md5(None)


def test_a_plan_runs_step_by_step_in_batches(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    b = Bucket(weed, s3_root)
    links = [_link(b, "revision", "app", i) for i in range(5)]
    links += [_link(b, "layer_link", "app", i) for i in range(100, 103)]
    blobs = [_blob(b, i) for i in range(250)]
    # a key regfs does not know under a blob's prefix: never deleted
    b.put(f"{blobs[0].path}/stray", b"?")
    # what stays: a live blob and a live revision
    keep = {f"{_blob(b, 999).path}/data", f"{_link(b, 'revision', 'app', 998).path}/link"}
    folder = Action(Step.FOLDER, "repositories/app/_manifests/revisions/sha256/" + "0" * 64)
    plan = _plan(_storage(weed, s3_root), [*links, *blobs, folder])
    storage = _storage(weed, s3_root, proxy.url)
    res, state = _run(storage, plan, batch=100)
    assert res.failed is None and not res.interrupted
    assert [r.status for r in res.results] == ["done"] * len(plan.actions)
    assert b.names() == keep | {f"{blobs[0].path}/stray"}
    counts = proxy.counts()
    # every deleted key re-checked by one HEAD; 1 + 1 + 3 DeleteObjects (one chunk of
    # revisions, one of layer links, three of blobs at 100 a chunk)
    assert counts["HeadObject"] == len(links) + len(blobs)
    assert counts["DeleteObjects"] == 5
    assert res.reclaimed_bytes == sum(a.size for a in blobs)
    # the journal: every step, made durable chunk by chunk
    _doc, actions, done = load_run(state, plan.run_id)
    assert len(actions) == len(plan.actions)
    assert done == dict.fromkeys(range(len(plan.actions)), "done")


def test_the_recheck_keeps_what_changed(weed: s3bed.Weed, s3_root: str) -> None:
    b = Bucket(weed, s3_root)
    storage = _storage(weed, s3_root)
    grown = _blob(b, 1)
    b.put(f"{grown.path}/data", b"a bigger blob than before")
    gone = _blob(b, 2)
    b.client.delete_object(Bucket=weed.bucket, Key=f"{s3_root}/{V2}/{gone.path}/data")
    moved = _link(b, "revision", "app", 3)
    moved = Action(**{**moved.as_dict(), "expect_mtime": (moved.expect_mtime or 0) - 60})  # type: ignore[arg-type]
    other = _link(b, "revision", "app", 4, content=_digest(5))  # holds another digest
    ok = _blob(b, 6)
    upload = "repositories/app/_uploads/u-1"
    head = b.put(f"{upload}/startedat", b"2020-01-01T00:00:00Z")
    b.put(f"{upload}/unknown", b"?")
    strange = Action(
        Step.UPLOAD, upload, repository="app", expect_mtime=head["LastModified"].timestamp()
    )
    plan = _plan(storage, [moved, other, strange, grown, gone, ok])
    res, _state = _run(storage, plan)
    by = {r.action.path: (r.status, r.detail) for r in res.results}
    assert by[grown.path] == ("skipped", "changed since the scan (size)")
    assert by[gone.path] == ("gone", "data already gone")
    assert by[moved.path] == ("skipped", "changed since the scan (mtime)")
    assert by[other.path] == ("skipped", "link content changed since the scan")
    assert by[strange.path] == ("skipped", "holds an unknown file unknown")
    assert by[ok.path] == ("done", "")
    assert f"{grown.path}/data" in b.names() and f"{ok.path}/data" not in b.names()


def test_uploads_go_with_their_multipart_data_and_startedat_last(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    b = Bucket(weed, s3_root)
    upload = "repositories/app/_uploads/u-2"
    b.put(f"{upload}/hashstates/sha256/0", b"state")
    head = b.put(f"{upload}/startedat", b"2020-01-01T00:00:00Z")
    key = f"{s3_root}/{V2}/{upload}/data"
    mp = b.client.create_multipart_upload(Bucket=weed.bucket, Key=key)
    b.client.upload_part(
        Bucket=weed.bucket, Key=key, UploadId=mp["UploadId"], PartNumber=1, Body=b"z" * 100
    )
    action = Action(
        Step.UPLOAD, upload, repository="app", expect_mtime=head["LastModified"].timestamp()
    )
    storage = _storage(weed, s3_root, proxy.url)
    res, _ = _run(storage, _plan(storage, [action]))
    assert [r.status for r in res.results] == ["done"]
    assert b.names() == set()
    assert storage.multipart_uploads() == []
    deletes = [s for s in proxy.seen() if s.op in ("DeleteObjects", "AbortMultipartUpload")]
    assert [s.op for s in deletes] == ["AbortMultipartUpload", "DeleteObjects", "DeleteObjects"]


def test_a_failing_batch_ends_the_run_and_the_journal_names_what_is_left(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    b = Bucket(weed, s3_root)
    revisions = [_link(b, "revision", "app", i) for i in range(3)]
    blobs = [_blob(b, i) for i in range(10, 40)]
    storage = _storage(weed, s3_root, proxy.url)
    plan = _plan(storage, [*revisions, *blobs])
    # the revisions' batch goes through; the first blob batch is throttled for good
    seen: list[int] = []

    def second_batch(op: str, method: str, path: str) -> bool:
        seen.append(1)
        return len(seen) > 1

    proxy.inject("slowdown", op="DeleteObjects", times=-1, match=second_batch)
    res, state = _run(storage, plan, batch=10)
    assert res.failed is not None and res.failed.status == "failed"
    assert "SlowDown" in res.failed.detail
    statuses = [r.status for r in res.results]
    assert statuses == ["done"] * 3 + ["failed"] * 10  # then the run stopped
    left = {a.path for a in blobs}
    assert {p.rsplit("/", 1)[0] for p in b.names()} == left  # no blob deleted
    _doc, _actions, done = load_run(state, plan.run_id)
    assert [done.get(i) for i in range(len(plan.actions))] == statuses + [None] * 20
    # what a run's result.json names as left: the failed chunk and everything after it
    assert left_paths(plan, res) == [a.path for a in blobs]


def test_a_partial_batch_fails_only_the_keys_the_server_refused(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    b = Bucket(weed, s3_root)
    blobs = [_blob(b, i) for i in range(20)]
    storage = _storage(weed, s3_root, proxy.url)
    plan = _plan(storage, blobs)
    # one key changes between its HEAD and the batch: the conditional delete keeps it
    victim = blobs[7]
    original = storage.call

    def call(op: str, path: str, fn: Any) -> Any:
        if op == "DeleteObjects":
            b.put(f"{victim.path}/data", b"rewritten, same second maybe, other bytes")
        return original(op, path, fn)

    storage.call = call  # type: ignore[method-assign]
    res, _ = _run(storage, plan)
    by = {r.action.path: r for r in res.results}
    assert by[victim.path].status == "skipped"
    assert by[victim.path].detail == "changed since its re-check (ETag)"
    assert all(r.status == "done" for p, r in by.items() if p != victim.path)
    assert b.names() == {f"{victim.path}/data"}


def test_dropped_answers_and_throttling_are_retried_never_a_wrong_deletion(
    weed: s3bed.Weed, s3_root: str, proxy: faultproxy.FaultProxy
) -> None:
    b = Bucket(weed, s3_root)
    blobs = [_blob(b, i) for i in range(30)]
    keep = {f"{_blob(b, i).path}/data" for i in range(100, 110)}
    storage = _storage(weed, s3_root, proxy.url, retry=Retry(attempts=8, base=0.001, cap=0.01))
    proxy.inject("slowdown", op="HeadObject", times=5)
    proxy.inject("drop", op="HeadObject", times=3)
    proxy.inject("drop", op="DeleteObjects", times=1, after_forward=True)
    proxy.inject("error500", op="DeleteObjects", times=1)
    res, _ = _run(storage, _plan(storage, blobs), batch=10)
    assert res.failed is None, res.failed.detail
    assert all(r.status == "done" for r in res.results)
    assert b.names() == keep
    assert storage.stats.retries.get("HeadObject", 0) >= 8
    assert storage.stats.retries.get("DeleteObjects", 0) >= 2


def test_trash_copies_then_deletes_and_restore_copies_back(weed: s3bed.Weed, s3_root: str) -> None:
    b = Bucket(weed, s3_root)
    storage = _storage(weed, s3_root)
    rev = _link(b, "revision", "app", 1)
    blob = _blob(b, 2)
    plan = _plan(storage, [rev, blob], trash=True)
    before = {k: v["ETag"] for k, v in s3bed.list_keys(b.client, weed.bucket, s3_root).items()}
    res, state = _run(storage, plan)
    assert [r.status for r in res.results] == ["done", "done"]
    assert b.names() == set()
    trash = b.names(f".regfs/trash/{plan.run_id}")
    assert trash == {f"{rev.path}/link", f"{blob.path}/data"}
    # the journal's finish, as a run writes it, then restore puts everything back
    journal = Journal(state, plan.run_id)
    journal.finish({"done": 2})
    result = restore(state, storage, plan.run_id)
    assert sorted(result.restored) == sorted([rev.path, blob.path])
    after = {k: v["ETag"] for k, v in s3bed.list_keys(b.client, weed.bucket, s3_root).items()}
    assert {k: v for k, v in after.items() if "/.regfs/" not in k} == before
    assert b.names(f".regfs/trash/{plan.run_id}") == set()
    assert json.loads(state.read(f"runs/{plan.run_id}/result.json")) == {"done": 2}


def _race(weed: s3bed.Weed, s3_root: str, hosts: dict[str, str], names: Any) -> dict[str, Any]:
    """Two threads, one per host, each with its own client, take the lock at once: what
    each got (the Lock when it won, the refusal's message when not)."""
    import threading

    from regfs.errors import RefusedError
    from regfs.gc.lock import Lock

    barrier = threading.Barrier(len(hosts))
    outcome: dict[str, Any] = {}

    def run(who: str) -> None:
        names.host = hosts[who]
        lock = Lock(S3StateStore(_storage(weed, s3_root)), f"regfs gc ({who})")
        barrier.wait()
        try:
            lock.acquire()
        except RefusedError as exc:
            outcome[who] = exc.message
        else:
            outcome[who] = lock

    threads = [threading.Thread(target=run, args=(w,)) for w in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


def test_two_runs_racing_for_the_lock_on_two_hosts(
    weed: s3bed.Weed, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two regfs runs on two hosts (two clients, two host names) take the bucket's lock at
    the same instant, again and again: exactly one wins each time, the other is refused
    with the winner named, and a lock held on another host is never taken over."""
    import socket
    import threading

    from regfs.errors import RefusedError
    from regfs.gc.lock import Lock, read_holder

    hosts = {"a": "host-a", "b": "host-b"}
    names = threading.local()
    monkeypatch.setattr(socket, "gethostname", lambda: getattr(names, "host", "host-a"))
    for _round in range(5):
        outcome = _race(weed, s3_root, hosts, names)
        winners = [w for w, o in outcome.items() if isinstance(o, Lock)]
        assert len(winners) == 1, outcome
        [loser] = [w for w in hosts if w not in winners]
        assert f"on {hosts[winners[0]]}" in outcome[loser]
        holder = read_holder(S3StateStore(_storage(weed, s3_root)))
        assert holder is not None and holder.host == hosts[winners[0]]
        outcome[winners[0]].release()
    # a lock left by a dead process on another host: never taken over from here
    names.host = "host-a"
    S3StateStore(_storage(weed, s3_root)).create_exclusive(
        "lock", json.dumps({"host": "host-b", "pid": 999999, "started": 0, "command": "x"}).encode()
    )
    with pytest.raises(RefusedError, match="on host-b"):
        Lock(S3StateStore(_storage(weed, s3_root)), "regfs gc").acquire()


def test_an_upload_written_to_since_the_scan_stays(weed: s3bed.Weed, s3_root: str) -> None:
    b = Bucket(weed, s3_root)
    upload = "repositories/app/_uploads/u-3"
    head = b.put(f"{upload}/startedat", b"2020-01-01T00:00:00Z")
    storage = _storage(weed, s3_root)
    action = Action(
        Step.UPLOAD, upload, repository="app", expect_mtime=head["LastModified"].timestamp()
    )
    plan = _plan(storage, [action])
    plan.created = head["LastModified"].timestamp() - 5  # the scan was before the multipart
    key = f"{s3_root}/{V2}/{upload}/data"
    b.client.create_multipart_upload(Bucket=weed.bucket, Key=key)
    res, _ = _run(storage, plan)
    assert [(r.status, r.detail) for r in res.results] == [
        ("skipped", "written to since the scan (a multipart upload started since)")
    ]
    assert b.names() == {f"{upload}/startedat"}
    assert len(storage.multipart_uploads()) == 1


@pytest.mark.parametrize("batch", [1, 1000])
def test_a_skipped_removal_skips_the_gc_planned_on_it(
    weed: s3bed.Weed, s3_root: str, batch: int
) -> None:
    """rm --gc and retain on a bucket: what gc planned on a removal that was not done stays,
    also when the removal's step and the gc's share a step and would share a batch."""
    b = Bucket(weed, s3_root)
    storage = _storage(weed, s3_root)
    # The removal: an index's revision, changed since the scan (pushed again elsewhere).
    index = _link(b, "revision", "app", 10, content=_digest(99))
    # What gc planned on it: the child's revision (same step), a layer link, a blob.
    child = _link(b, "revision", "app", 11)
    layer = _link(b, "layer_link", "app", 12)
    blob = _blob(b, 13)
    # Not planned on the removal: an orphan blob of the gc alone stays planned.
    plan = _plan(storage, [index, child, layer, blob])
    plan.origin = {
        index.path: PartKind.RM,
        child.path: PartKind.GC,
        layer.path: PartKind.GC,
        blob.path: PartKind.GC,
    }
    before = b.names()
    res, _state = _run(storage, plan, batch=batch)
    by = {r.action.path: (r.status, r.detail) for r in res.results}
    assert by[index.path] == ("skipped", "link content changed since the scan")
    for a in (child, layer, blob):
        assert by[a.path] == (
            "skipped",
            f"planned on the removal of {index.path}, which was not done",
        )
    assert b.names() == before


def test_a_done_removal_lets_the_gc_planned_on_it_go(weed: s3bed.Weed, s3_root: str) -> None:
    b = Bucket(weed, s3_root)
    storage = _storage(weed, s3_root)
    index = _link(b, "revision", "app", 20)
    child = _link(b, "revision", "app", 21)
    blob = _blob(b, 23)
    plan = _plan(storage, [index, child, blob])
    plan.origin = {index.path: PartKind.RETAIN, child.path: PartKind.GC, blob.path: PartKind.GC}
    res, _state = _run(storage, plan)
    assert [r.status for r in res.results] == ["done", "done", "done"]
    assert not any(n.startswith((index.path, child.path, blob.path)) for n in b.names())
