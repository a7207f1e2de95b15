"""`regfs check`: unit tests on built trees, the real-registry fixtures, and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from builder import DOCKER, Pushed, StoreBuilder, hexof, sha256, sign_schema1
from typer.testing import CliRunner

import regfs.reports.hashing as hashing
import regfs.reports.verify as verify_mod
from regfs import cli
from regfs.model.findings import Finding, Kind
from regfs.parallel.tuning import Tuning
from regfs.reports.check import CheckReport, check
from regfs.scan import scan
from regfs.storage.local import LocalStorage, resolve_root

runner = CliRunner()

HEALTHY_FIXTURES = ["demo", "shared", "multiarch", "partial", "referrers", "schema1", "uploads"]


def run(b: StoreBuilder, **kwargs: Any) -> CheckReport:
    return check(b.scan(), **kwargs)


def kinds(r: CheckReport) -> set[Kind]:
    return {f.kind for f in r.problems}


def of_kind(r: CheckReport, kind: Kind) -> list[Finding]:
    return [f for f in r.problems if f.kind is kind]


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def blob_path(b: StoreBuilder, digest: str) -> Path:
    return b.path(f"blobs/sha256/{hexof(digest)[:2]}/{hexof(digest)}/data")


def healthy_store(b: StoreBuilder) -> dict[str, Pushed]:
    base = b.layer("base")
    img = b.image("app", tags=["v1"], layers=[base, b.layer("app")])
    b.referrer("app", subject=img)
    amd = b.image("multi", layers=[base], platform="linux/amd64")
    arm = b.image("multi", layers=[b.layer("arm")], platform="linux/arm64/v8")
    idx = b.index("multi", children=[amd, arm], tags=["latest"])
    win = b.image(
        "win", tags=["ltsc"], layers=[b.foreign_layer(), b.layer("win")], media_type=DOCKER
    )
    return {"img": img, "amd": amd, "arm": arm, "idx": idx, "win": win}


# --- unit tests -----------------------------------------------------------------------------


def test_healthy_store_is_healthy_with_and_without_digests(builder: StoreBuilder) -> None:
    healthy_store(builder)
    r = run(builder)
    assert r.healthy, r.problems
    assert not r.verified and r.verified_blobs == 0
    assert (r.repositories, r.tags) == (3, 3)
    v = run(builder, verify_digests=True)
    assert v.healthy, v.problems
    assert v.verified and v.verified_blobs == len(builder.scan().blobs)
    assert v.verified_bytes == sum(b.known_size for b in builder.scan().blobs.values())


def test_missing_layer_data_is_dangling_and_breaks_the_tag(builder: StoreBuilder) -> None:
    layer = builder.layer("gone")
    builder.image("app", tags=["v1", "v2"], layers=[layer])
    builder.remove_blob(layer.digest)
    r = run(builder)
    dangling = of_kind(r, Kind.DANGLING)
    assert [(f.digest, f.repository) for f in dangling] == [(layer.digest, "app")]
    broken = of_kind(r, Kind.BROKEN_TAG)
    assert [f.message.split(" cannot")[0] for f in broken] == ["app:v1", "app:v2"]
    assert all(layer.digest in f.message and "no blob data" in f.message for f in broken)
    assert broken[0].path == "repositories/app/_manifests/tags/v1/current/link"


def test_unlinked_config_is_reported_once(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    builder.image("app", tags=["v2"], layers=list(img.layers), config=img.config)
    assert img.config is not None
    builder.path(builder.layer_link("app", img.config.digest)).unlink()
    r = run(builder)
    unlinked = of_kind(r, Kind.UNLINKED_BLOB)
    assert len(unlinked) == 1
    assert unlinked[0].digest == img.config.digest
    assert unlinked[0].path == builder.layer_link("app", img.config.digest)
    assert "blob unknown" in unlinked[0].message
    assert {f.message.split(" ")[0] for f in of_kind(r, Kind.BROKEN_TAG)} == {"app:v1", "app:v2"}


def test_blob_linked_elsewhere_only_is_unlinked(builder: StoreBuilder) -> None:
    shared = builder.layer("shared")
    builder.image("a", tags=["1"], layers=[shared])
    img = builder.image("b", tags=["1"], layers=[shared])
    builder.path(builder.layer_link("b", shared.digest)).unlink()
    r = run(builder)
    assert [(f.repository, f.digest) for f in of_kind(r, Kind.UNLINKED_BLOB)] == [
        ("b", shared.digest)
    ]
    assert [f.repository for f in of_kind(r, Kind.BROKEN_TAG)] == ["b"]
    assert of_kind(r, Kind.BROKEN_TAG)[0].digest == img.digest


def test_index_with_no_child_in_the_repository_is_a_broken_tag(builder: StoreBuilder) -> None:
    child = builder.image("other")
    builder.index("multi", children=[child], tags=["latest"], platforms=["linux/amd64"])
    r = run(builder)
    assert of_kind(r, Kind.UNLINKED_BLOB) == []
    broken = of_kind(r, Kind.BROKEN_TAG)
    assert len(broken) == 1 and "multi:latest" in broken[0].message
    assert "none of the index's platforms is in the repository: linux/amd64" in broken[0].message
    assert r.warnings == []  # the broken tag says it all


def _multi(b: StoreBuilder) -> tuple[Pushed, Pushed, Pushed]:
    amd = b.image("multi", layers=[b.layer("amd")], platform="linux/amd64")
    arm = b.image("multi", layers=[b.layer("arm")], platform="linux/arm64/v8")
    idx = b.index(
        "multi",
        children=[amd, arm],
        tags=["v1", "latest"],
        platforms=["linux/amd64", "linux/arm64/v8"],
    )
    return amd, arm, idx


@pytest.mark.parametrize("how", ["deleted_by_digest", "never_pushed"])
def test_partial_index_is_a_warning_naming_the_absent_platform(
    builder: StoreBuilder, how: str
) -> None:
    if how == "deleted_by_digest":
        _amd, arm, idx = _multi(builder)
        builder.delete_manifest("multi", arm.digest)
        absent = arm.digest
    else:  # a v3 sparse index: the other platform was never pushed
        amd = builder.image("multi", layers=[builder.layer("amd")], platform="linux/amd64")
        never = builder.absent(b'{"never":"pushed"}')
        idx = builder.index(
            "multi", children=[amd, never], tags=["v1"], platforms=["linux/amd64", "linux/s390x"]
        )
        absent = never.digest
    r = run(builder)
    assert r.problems == [] and r.healthy
    assert [(w.kind, w.path, w.digest) for w in r.warnings] == [
        (Kind.PARTIAL_INDEX, builder.revision_link("multi", idx.digest), idx.digest)
    ]
    msg = r.warnings[0].message
    assert absent in msg and "multi:v1" in msg and "a pull serves the other 1" in msg
    assert ("linux/arm64/v8" if how == "deleted_by_digest" else "linux/s390x") in msg
    res = runner.invoke(cli.app, ["check", str(builder.root), "--json"])
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["healthy"] is True and out["problems"] == []
    assert [w["kind"] for w in out["warnings"]] == ["partial_index"]
    res = runner.invoke(cli.app, ["check", str(builder.root)])
    assert res.exit_code == 0
    assert "Healthy: no problems found (1 warning below)." in res.stdout
    assert "partial_index (1)" in res.stdout


def test_partial_nested_index(builder: StoreBuilder) -> None:
    amd = builder.image("multi", layers=[builder.layer("amd")], platform="linux/amd64")
    s390 = builder.image("multi", layers=[builder.layer("s390")], platform="linux/s390x")
    inner = builder.index("multi", children=[amd, s390], platforms=["linux/amd64", "linux/s390x"])
    ppc = builder.image("multi", layers=[builder.layer("ppc")], platform="linux/ppc64le")
    builder.index("multi", children=[inner, ppc], tags=["v1"])
    builder.delete_manifest("multi", s390.digest)
    r = run(builder)
    assert r.problems == []
    assert [w.digest for w in r.warnings] == [inner.digest]
    assert "(untagged)" in r.warnings[0].message  # the inner index itself has no tag


def test_index_with_every_child_deleted_is_a_broken_tag(builder: StoreBuilder) -> None:
    amd, arm, _idx = _multi(builder)
    builder.delete_manifest("multi", amd.digest)
    builder.delete_manifest("multi", arm.digest)
    r = run(builder)
    broken = of_kind(r, Kind.BROKEN_TAG)
    assert sorted(f.path for f in broken) == [
        "repositories/multi/_manifests/tags/latest/current/link",
        "repositories/multi/_manifests/tags/v1/current/link",
    ]
    assert all("none of the index's platforms is in the repository" in f.message for f in broken)
    assert r.warnings == []


def test_damage_in_a_present_platform_still_breaks_a_partial_index(builder: StoreBuilder) -> None:
    amd, arm, _idx = _multi(builder)
    builder.delete_manifest("multi", arm.digest)
    builder.remove_blob(amd.layers[0].digest)
    r = run(builder)
    broken = of_kind(r, Kind.BROKEN_TAG)
    assert len(broken) == 2
    assert all(f"layer {amd.layers[0].digest} has no blob data" in f.message for f in broken)
    assert [w.kind for w in r.warnings] == [Kind.PARTIAL_INDEX]


def test_tag_pointing_at_a_manifest_of_another_repository(builder: StoreBuilder) -> None:
    img = builder.image("a", tags=["1"])
    builder.tag("b", "1", img.digest)
    r = run(builder)
    assert [(f.repository, f.digest) for f in of_kind(r, Kind.UNLINKED_BLOB)] == [("b", img.digest)]
    assert [f.repository for f in of_kind(r, Kind.BROKEN_TAG)] == ["b"]


def test_missing_index_child_breaks_the_index_tag(builder: StoreBuilder) -> None:
    amd = builder.image("multi")
    arm = builder.image("multi", platform="linux/arm64/v8")
    builder.index("multi", children=[amd, arm], tags=["v1"])
    builder.remove_blob(arm.digest)
    r = run(builder)
    assert {(f.digest, f.repository) for f in of_kind(r, Kind.DANGLING)} == {(arm.digest, "multi")}
    broken = of_kind(r, Kind.BROKEN_TAG)
    assert len(broken) == 1 and f"child {arm.digest} has no blob data" in broken[0].message


def test_unreadable_and_missing_tag_links_break_the_tag(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["nl", "empty"])
    builder.write("repositories/app/_manifests/tags/nl/current/link", (img.digest + "\n").encode())
    builder.write("repositories/app/_manifests/tags/empty/current/link", b"")
    builder.write_link(
        f"repositories/app/_manifests/tags/gone/index/sha256/{hexof(img.digest)}/link", img.digest
    )
    r = run(builder)
    assert {Kind.BAD_LINK, Kind.EMPTY_LINK, Kind.MISSING_LINK} <= kinds(r)
    broken = {f.message.split(" ")[0]: f for f in of_kind(r, Kind.BROKEN_TAG)}
    assert set(broken) == {"app:nl", "app:empty", "app:gone"}
    assert "cannot be read" in broken["app:nl"].message
    assert "no current link" in broken["app:gone"].message


def test_bad_layer_links_break_the_tag(builder: StoreBuilder) -> None:
    a, c = builder.layer("a"), builder.layer("c")
    builder.image("app", tags=["v1"], layers=[a, c])
    builder.write(builder.layer_link("app", a.digest), b"garbage")
    builder.write_link(builder.layer_link("app", c.digest), a.digest)
    r = run(builder)
    assert {Kind.BAD_LINK, Kind.LINK_MISMATCH} <= kinds(r)
    assert Kind.UNLINKED_BLOB not in kinds(r)
    (broken,) = of_kind(r, Kind.BROKEN_TAG)
    assert f"the _layers link of layer {a.digest} cannot be read" in broken.message
    assert f"the _layers link of layer {c.digest} names {a.digest}" in broken.message


def test_unparseable_manifest_breaks_the_tag(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    blob_path(builder, img.digest).write_bytes(b"\x00not json")
    r = run(builder)
    assert Kind.UNPARSEABLE_MANIFEST in kinds(r)
    (broken,) = of_kind(r, Kind.BROKEN_TAG)
    assert "cannot be parsed" in broken.message and broken.digest == img.digest


def test_broken_tag_message_names_three_problems_then_counts(builder: StoreBuilder) -> None:
    layers = [builder.layer(f"l{i}") for i in range(5)]
    builder.image("app", tags=["v1"], layers=layers)
    for ly in layers:
        builder.remove_blob(ly.digest)
    (broken,) = of_kind(run(builder), Kind.BROKEN_TAG)
    assert broken.message.endswith("; and 2 more")


def test_foreign_layers_are_not_required(builder: StoreBuilder) -> None:
    builder.image("win", tags=["1"], layers=[builder.foreign_layer()], media_type=DOCKER)
    assert run(builder).healthy


def test_flipped_byte_is_caught_only_when_verifying(builder: StoreBuilder) -> None:
    layer = builder.layer("precious")
    builder.image("app", tags=["v1"], layers=[layer])
    flip_byte(blob_path(builder, layer.digest))
    assert run(builder).healthy
    r = run(builder, verify_digests=True)
    (bad,) = of_kind(r, Kind.DIGEST_MISMATCH)
    actual = sha256(blob_path(builder, layer.digest).read_bytes())
    assert bad.digest == layer.digest
    assert bad.path == f"blobs/sha256/{hexof(layer.digest)[:2]}/{hexof(layer.digest)}/data"
    assert actual in bad.message and "read twice" in bad.message
    (broken,) = of_kind(r, Kind.BROKEN_TAG)
    assert f"layer {layer.digest} is corrupt" in broken.message


def test_orphan_blobs_are_verified_too(builder: StoreBuilder) -> None:
    orphan = builder.orphan_blob(b"x" * 5000)
    flip_byte(blob_path(builder, orphan.digest))
    r = run(builder, verify_digests=True)
    assert [f.digest for f in of_kind(r, Kind.DIGEST_MISMATCH)] == [orphan.digest]


# Hash in worker processes even for a small store, in many small chunks.
FORKED = Tuning(processes=4, hash_min_blobs=1, hash_chunk_files=2)


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
def test_large_blob_is_hashed_in_chunks_in_parallel(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    big = builder.orphan_blob(bytes(range(256)) * (3 * 4096 + 7))  # > 3 MiB
    small = [builder.orphan_blob(f"s{i}".encode() * 1000) for i in range(20)]
    flip_byte(blob_path(builder, small[3].digest))
    calls: list[tuple[str, int, int]] = []
    pids = tmp_path / "pids"
    orig = hashing.hash_chunk

    def spy(*args: Any) -> Any:
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.005)  # make the workers overlap
        return orig(*args)

    monkeypatch.setattr(hashing, "hash_chunk", spy)
    monkeypatch.setattr(hashing, "WHOLE", 1 << 20)  # the big blob is read in pieces
    monkeypatch.setattr(hashing, "PIECE", 1 << 16)  # many pieces, many progress calls
    r = run(builder, verify_digests=True, tuning=FORKED, progress=lambda *a: calls.append(a))
    assert [f.digest for f in of_kind(r, Kind.DIGEST_MISMATCH)] == [small[3].digest]
    total = big.size + sum(s.size for s in small)
    assert r.verified_bytes == total and r.verified_blobs == 21
    assert calls[0] == ("verify", 0, total) and calls[-1] == ("verify", total, total)
    assert all(p == "verify" and 0 <= d <= t == total for p, d, t in calls)
    assert r.throughput is not None and r.throughput > 0
    workers = set(pids.read_text().split())
    assert len(workers) > 1  # this process and helpers shared the chunks


@pytest.mark.parametrize("fork", [False, pytest.param(True, marks=needs_fork)])
def test_a_blob_is_read_twice_before_it_is_called_corrupt(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch, fork: bool, tmp_path: Path
) -> None:
    tuning = Tuning(processes=2, hash_min_blobs=1, hash_chunk_files=1) if fork else Tuning()
    flaky = builder.orphan_blob(b"flaky")
    bad = builder.orphan_blob(b"bad")
    fine = builder.orphan_blob(b"fine")
    first_reads = tmp_path / "first"  # a file: workers are other processes
    first_reads.touch()
    second_reads: dict[str, int] = {}
    orig_chunk = hashing.hash_chunk
    orig_actual = verify_mod._actual

    def first(folders: Any, chunk: Any, on_bytes: Any, accept: Any) -> Any:
        suspects, done = orig_chunk(folders, chunk, on_bytes, accept)
        with open(first_reads, "a") as f:
            f.writelines(f"{d}\n" for d, _ in chunk)
        for d, _ in chunk:
            if d in (flaky.digest, bad.digest):  # a transient bad read; a bad blob
                suspects.append((d, "sha256:" + "1" * 64))
        return suspects, done

    def again(storage: Any, path: str, digest: str) -> str | None:
        second_reads[digest] = second_reads.get(digest, 0) + 1
        if digest == bad.digest:
            return "sha256:" + "2" * 64  # different every time
        return orig_actual(storage, path, digest)

    monkeypatch.setattr(hashing, "hash_chunk", first)
    monkeypatch.setattr(verify_mod, "_actual", again)
    r = run(builder, verify_digests=True, tuning=tuning)
    assert sorted(first_reads.read_text().split()) == sorted(
        [flaky.digest, bad.digest, fine.digest]
    )
    assert second_reads == {flaky.digest: 1, bad.digest: 1}  # only suspects are read again
    assert r.reread_ok == [flaky.digest]
    (mismatch,) = of_kind(r, Kind.DIGEST_MISMATCH)
    assert mismatch.digest == bad.digest and "read again" in mismatch.message
    assert "sha256:" + "1" * 64 in mismatch.message and "sha256:" + "2" * 64 in mismatch.message


@needs_fork
def test_worker_processes_report_every_kind_of_bad_blob(
    builder: StoreBuilder, tmp_path: Path
) -> None:
    layer = builder.layer("precious")
    builder.image("app", tags=["v1"], layers=[layer])
    unsigned = builder.schema1("legacy", layers=[builder.layer("legacy")], tags=["plain"])
    builder.write(
        f"blobs/sha256/{hexof(unsigned.digest)[:2]}/{hexof(unsigned.digest)}/data",
        sign_schema1(unsigned.data),
    )
    gone, linked, grown, shrunk, fifo = (builder.orphan_blob(f"b{i}".encode()) for i in range(5))
    ok = [builder.orphan_blob(f"ok{i}".encode() * 300) for i in range(30)]
    flip_byte(blob_path(builder, layer.digest))
    snap = builder.scan()
    blob_path(builder, gone.digest).unlink()
    outside = tmp_path / "outside"
    outside.write_bytes(b"b1")
    blob_path(builder, linked.digest).unlink()
    blob_path(builder, linked.digest).symlink_to(outside)
    with open(blob_path(builder, grown.digest), "ab") as f:
        f.write(b"more")
    blob_path(builder, shrunk.digest).write_bytes(b"b")
    blob_path(builder, fifo.digest).unlink()
    os.mkfifo(blob_path(builder, fifo.digest))  # must not hang the open

    r = check(snap, verify_digests=True, tuning=FORKED)
    assert {f.digest for f in of_kind(r, Kind.DIGEST_MISMATCH)} == {
        layer.digest,
        grown.digest,
        shrunk.digest,
    }
    assert [f.digest for f in of_kind(r, Kind.SYMLINK)] == [linked.digest]
    unreadable = {f.digest: f.message for f in of_kind(r, Kind.UNREADABLE)}
    assert set(unreadable) == {gone.digest, fifo.digest}
    assert "not a regular file" in unreadable[fifo.digest]
    assert r.verified_blobs == len(snap.blobs) and not r.reread_ok
    assert not {f.digest for f in r.problems} & {unsigned.digest, *(b.digest for b in ok)}


@needs_fork
def test_chunks_of_a_worker_that_dies_are_hashed_here(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = [builder.orphan_blob(f"blob {i}".encode()) for i in range(40)]
    flip_byte(blob_path(builder, blobs[-1].digest))
    parent = os.getpid()
    orig = hashing.hash_chunk

    def dying(folders: Any, chunk: Any, on_bytes: Any, accept: Any) -> Any:
        if os.getpid() != parent and any(d == blobs[-1].digest for d, _ in chunk):
            os._exit(3)  # a worker killed mid-way
        return orig(folders, chunk, on_bytes, accept)

    monkeypatch.setattr(hashing, "hash_chunk", dying)
    r = run(builder, verify_digests=True, tuning=FORKED)
    assert [f.digest for f in of_kind(r, Kind.DIGEST_MISMATCH)] == [blobs[-1].digest]
    assert r.verified_blobs == 40


def test_chunks_put_large_blobs_first_and_cover_every_blob() -> None:
    items = [(f"sha256:{i:064x}", size) for i, size in enumerate([10, 20 << 20, 5, 40 << 20])]
    items += [(f"sha256:{i:064x}", 100) for i in range(4, 300)]
    chunks = hashing.plan_chunks(items, sum(s for _, s in items))
    flat = [it for c in chunks for it in c]
    assert sorted(flat) == sorted(items)
    assert [s for _, s in flat[:2]] == [40 << 20, 20 << 20]
    assert all(len(c) <= Tuning().hash_chunk_files for c in chunks)
    many = [(f"sha256:{i:064x}", 1) for i in range(1_000_000)]
    assert len(hashing.plan_chunks(many, len(many))) <= 2000


def test_unreadable_blob_is_reported(builder: StoreBuilder) -> None:
    blob = builder.orphan_blob(b"data")
    p = blob_path(builder, blob.digest)
    snap = builder.scan()
    p.unlink()  # vanishes between the scan and the verification
    r = check(snap, verify_digests=True)
    (f,) = of_kind(r, Kind.UNREADABLE)
    assert f.digest == blob.digest and "cannot read" in f.message
    assert not of_kind(r, Kind.DIGEST_MISMATCH)


def test_schema1_verified_against_its_canonical_payload(builder: StoreBuilder) -> None:
    layer = builder.layer("legacy")
    unsigned = builder.schema1("legacy", layers=[layer], tags=["plain"])
    # A signed schema1 stored with its JWS: the digest is the payload's, not the file's.
    signed = sign_schema1(unsigned.data)
    digest = unsigned.digest
    assert sha256(signed) != digest
    builder.write(f"blobs/sha256/{hexof(digest)[:2]}/{hexof(digest)}/data", signed)
    r = run(builder, verify_digests=True)
    assert r.healthy, r.problems
    # A damaged signed schema1 is still caught.
    blob_path(builder, digest).write_bytes(signed.replace(b'"legacy"', b'"legacz"', 1))
    r = run(builder, verify_digests=True)
    assert [f.digest for f in of_kind(r, Kind.DIGEST_MISMATCH)] == [digest]


def test_repo_glob_restricts_every_check(builder: StoreBuilder) -> None:
    bad = builder.layer("bad")
    builder.image("team/broken", tags=["v1"], layers=[bad])
    builder.image("team/fine", tags=["v1"])
    builder.image("other", tags=["v1"])
    builder.write("repositories/team/broken/NOTES.txt", b"hi")
    flip_byte(blob_path(builder, bad.digest))
    builder.remove_blob(builder.layer("x").digest, keep_folder=True)  # a global problem
    everything = run(builder, verify_digests=True)
    assert {Kind.DIGEST_MISMATCH, Kind.BROKEN_TAG, Kind.UNKNOWN_ENTRY, Kind.MISSING_DATA} <= (
        kinds(everything)
    )
    fine = run(builder, verify_digests=True, repo_glob="team/f*")
    assert fine.healthy, fine.problems
    assert fine.repositories == 1
    assert 0 < fine.verified_blobs < everything.verified_blobs
    broken = run(builder, verify_digests=True, repo_glob="team/*")
    assert kinds(broken) == {Kind.DIGEST_MISMATCH, Kind.BROKEN_TAG, Kind.UNKNOWN_ENTRY}
    with pytest.raises(Exception, match="no repository matches"):
        run(builder, repo_glob="nothing*")


# --- real-registry fixtures -----------------------------------------------------------------


def fixture_snap(name: str, tmp_path: Path) -> Any:
    root = rr.extract_fixture(name, tmp_path / name)
    return root, scan(LocalStorage(resolve_root(root)))


@pytest.mark.parametrize("name", HEALTHY_FIXTURES)
def test_fixture_is_healthy(name: str, tmp_path: Path) -> None:
    root, snap = fixture_snap(name, tmp_path)
    r = check(snap, verify_digests=True)
    assert r.healthy, [f.as_dict() for f in r.problems]
    assert r.verified_blobs == len(rr.load_fixture_meta(name)["blobs"])
    res = runner.invoke(cli.app, ["check", str(root), "--verify-digests"])
    assert res.exit_code == 0, res.output
    assert "Healthy" in res.output


def test_partial_fixture_warns_naming_each_absent_platform(tmp_path: Path) -> None:
    """Written by 2.8.2: tagged indexes, one child each then deleted by digest via the API."""
    root, snap = fixture_snap("partial", tmp_path)
    meta = rr.load_fixture_meta("partial")
    r = check(snap)
    assert r.healthy and r.problems == []
    assert {(w.kind, w.repository, w.digest) for w in r.warnings} == {
        (Kind.PARTIAL_INDEX, c["repo"], c["index"]) for c in meta["deleted_children"]
    }
    for c in meta["deleted_children"]:
        (w,) = [w for w in r.warnings if w.digest == c["index"]]
        assert f"{c['platform']} ({c['digest']})" in w.message
        assert f"{c['repo']}:v1" in w.message
    res = runner.invoke(cli.app, ["check", str(root)])
    assert res.exit_code == 0, res.output
    assert "Warnings (2), not damage:" in res.output


def test_schema1_fixture_has_a_schema1_manifest(tmp_path: Path) -> None:
    _root, snap = fixture_snap("schema1", tmp_path)
    meta = rr.load_fixture_meta("schema1")
    digests = [i["digest"] for i in meta["images"] if i["kind"] == "schema1"]
    assert digests and all(snap.manifests[d].kind == "schema1" for d in digests)
    assert check(snap, verify_digests=True).healthy


def test_flipped_byte_in_a_fixture_is_caught_only_when_verifying(tmp_path: Path) -> None:
    root = rr.extract_fixture("shared", tmp_path / "shared")
    meta = rr.load_fixture_meta("shared")
    layer = next(i for i in meta["images"] if i["state"] == "tagged")["layers"][0]
    data = root / "docker/registry/v2" / f"blobs/sha256/{hexof(layer)[:2]}/{hexof(layer)}/data"
    flip_byte(data)
    assert runner.invoke(cli.app, ["check", str(root)]).exit_code == 0
    res = runner.invoke(cli.app, ["check", str(root), "--verify-digests", "--json"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert [p["digest"] for p in out["problems"] if p["kind"] == "digest_mismatch"] == [layer]
    # the base layer is in every repository: every tag is broken
    broken = {p["repository"] for p in out["problems"] if p["kind"] == "broken_tag"}
    assert broken == set(meta["tags"])


DAMAGE_KINDS = {
    "missing-blob-data": [Kind.DANGLING],
    "bit-flip": [],  # only with --verify-digests
    "link-mismatch": [Kind.LINK_MISMATCH],
    "stray-tmp-file": [Kind.UNKNOWN_ENTRY],
    "garbage-layer-link": [Kind.BAD_LINK],
    "dangling-revision": [Kind.DANGLING],
    "stray-file": [Kind.UNKNOWN_ENTRY],
    "manifest-not-json": [Kind.UNPARSEABLE_MANIFEST],
    "empty-link": [Kind.EMPTY_LINK],
    "trailing-newline-link": [Kind.BAD_LINK],
    "symlink-outside": [Kind.SYMLINK],
}


def rel(path: str) -> str:
    return path.removeprefix("docker/registry/v2/")


@pytest.mark.parametrize("verify", [False, True])
def test_every_damage_is_reported_with_its_kind(tmp_path: Path, verify: bool) -> None:
    _root, snap = fixture_snap("damaged", tmp_path)
    meta = rr.load_fixture_meta("damaged")
    assert {d["id"] for d in meta["damage"]} == set(DAMAGE_KINDS)
    r = check(snap, verify_digests=verify)
    found = {(f.kind, f.path) for f in r.problems}
    for d in meta["damage"]:
        expected = list(DAMAGE_KINDS[d["id"]])
        if d["id"] == "bit-flip" and verify:
            expected = [Kind.DIGEST_MISMATCH]
        for kind in expected:
            assert (kind, rel(d["path"])) in found, (d["id"], kind)
    mismatches = {f.digest for f in of_kind(r, Kind.DIGEST_MISMATCH)}
    flipped = next(d["digest"] for d in meta["damage"] if d["id"] == "bit-flip")
    not_json = next(d["digest"] for d in meta["damage"] if d["id"] == "manifest-not-json")
    assert mismatches == ({flipped, not_json} if verify else set())
    missing = next(d for d in meta["damage"] if d["id"] == "missing-blob-data")
    assert (Kind.MISSING_DATA, rel(missing["path"]).removesuffix("/data")) in found
    # Exactly the tags the real registry could not serve are broken (dmg/ok:stable is fine).
    pulled = {
        f"{b['repo']}:{b['tag']}" for b in meta["reference_gc"]["default_real"]["broken_tags"]
    }
    broken = {f.message.split(" ")[0] for f in of_kind(r, Kind.BROKEN_TAG)}
    assert broken == pulled
    assert "dmg/ok:stable" not in broken
    assert not r.healthy


def test_damaged_cli_exit_code_and_json(tmp_path: Path) -> None:
    root = rr.extract_fixture("damaged", tmp_path / "damaged")
    res = runner.invoke(cli.app, ["check", str(root), "--json"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert {"problems", "healthy", "verified_blobs", "verified_bytes"} <= set(out)
    assert out["healthy"] is False and out["verified_blobs"] == 0
    for p in out["problems"]:
        assert {"path", "kind", "message", "repository"} <= set(p)
        assert p["kind"] in {str(k) for k in Kind}
    assert any(
        p["kind"] == "broken_tag" and p["repository"] == "dmg/alpha" for p in out["problems"]
    )
    text = runner.invoke(cli.app, ["check", str(root)])
    assert text.exit_code == 1
    assert "broken_tag (6): tags that cannot be pulled" in text.stdout
    assert "dmg/alpha:1.0 cannot be pulled" in text.stdout
    only_ok = runner.invoke(cli.app, ["check", str(root), "--repo", "dmg/ok", "--json"])
    assert only_ok.exit_code == 0
    assert json.loads(only_ok.stdout)["healthy"] is True


# --- CLI ------------------------------------------------------------------------------------


def test_cli_check_healthy_and_verified(builder: StoreBuilder) -> None:
    healthy_store(builder)
    res = runner.invoke(cli.app, ["check", str(builder.root), "--verify-digests", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["healthy"] is True and out["problems"] == []
    assert out["verified_blobs"] == len(builder.scan().blobs)
    assert out["verified_bytes"] == sum(b.known_size for b in builder.scan().blobs.values())
    assert isinstance(out["verified_bytes"], int)
    text = runner.invoke(cli.app, ["check", str(builder.root), "--verify-digests"])
    assert text.exit_code == 0
    assert "all match their digests" in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 80


def test_cli_check_problems_exit_1(builder: StoreBuilder) -> None:
    layer = builder.layer()
    builder.image("app", tags=["v1"], layers=[layer])
    builder.remove_blob(layer.digest)
    res = runner.invoke(cli.app, ["check", str(builder.root), "--json"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    by_kind = {p["kind"]: p for p in out["problems"]}
    assert set(by_kind) == {"dangling", "broken_tag"}
    assert by_kind["dangling"]["digest"] == layer.digest
    assert by_kind["broken_tag"]["repository"] == "app"


def test_cli_check_bad_input_exit_2(builder: StoreBuilder, tmp_path: Path) -> None:
    builder.image("app", tags=["v1"])
    res = runner.invoke(cli.app, ["check", str(builder.root), "--repo", "nope/*"])
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0 and "no repository matches" in res.stderr
    res = runner.invoke(cli.app, ["check", str(tmp_path / "missing")])
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0


def test_cli_transfer_progress_bar_on_a_terminal(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from regfs.cli import console

    builder.image("app", tags=["v1"])
    buf = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=buf, force_terminal=True, width=100))
    res = runner.invoke(cli.app, ["check", str(builder.root), "--verify-digests"])
    assert res.exit_code == 0, res.output
    shown = buf.getvalue()
    assert "verify" in shown and "/s" in shown  # bytes and a transfer speed


def test_check_help_lists_options() -> None:
    res = runner.invoke(cli.app, ["check", "--help"])
    assert res.exit_code == 0
    for opt in ("--verify-digests", "--repo", "--json"):
        assert opt in res.stdout


def test_verify_reads_through_no_symlink(builder: StoreBuilder, tmp_path: Path) -> None:
    blob = builder.orphan_blob(b"real")
    outside = tmp_path / "outside"
    outside.write_bytes(b"real")
    p = blob_path(builder, blob.digest)
    snap = builder.scan()
    p.unlink()
    p.symlink_to(outside)
    r = check(snap, verify_digests=True)
    assert [f.digest for f in of_kind(r, Kind.SYMLINK)] == [blob.digest]
    assert hashlib.sha256(outside.read_bytes()).hexdigest() == hexof(blob.digest)


def test_a_stray_file_directly_under_v2_is_reported(builder: StoreBuilder) -> None:
    """`v2/stray.txt` (issue 11): check names it; it does not block gc, which never goes there."""
    builder.image("app", tags=["v1"])
    builder.write("stray.txt", b"notes")
    (builder.v2 / "old-copy").mkdir()
    res = CliRunner().invoke(cli.app, ["check", str(builder.root), "--json"])
    assert res.exit_code == 1
    found = {(p["kind"], p["path"], p["blocks_gc"]) for p in json.loads(res.stdout)["problems"]}
    assert ("unknown_entry", "stray.txt", False) in found
    assert ("unknown_entry", "old-copy", False) in found
    gc = CliRunner().invoke(cli.app, ["gc", str(builder.root), "--dry-run", "--min-age", "0"])
    assert gc.exit_code == 0, gc.stdout
    assert (builder.v2 / "stray.txt").read_bytes() == b"notes"
