"""regfs.reports.orphans: orphaned blobs, untagged manifests and their bytes, stale uploads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from builder import StoreBuilder

from regfs.defaults import UPLOADS_OLDER_THAN as DEFAULT_UPLOAD_AGE
from regfs.graph.mark import Dangling, Mode, mark
from regfs.layout import blob_data
from regfs.model.findings import Kind
from regfs.reports.orphans import (
    OrphanBlob,
    StaleUpload,
    UntaggedManifest,
    blob_repositories,
    manifest_closure,
    orphaned_blobs,
    orphans,
    stale_uploads,
    sum_sizes,
    untagged_manifests,
)

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def test_orphaned_blobs(builder: StoreBuilder) -> None:
    shared = builder.layer("shared")
    keep = builder.image("app", tags=["v1"], layers=[shared])
    gone = builder.image("app", tags=["v2"], layers=[shared, builder.layer("exclusive")])
    loose = builder.orphan_blob(b"loose bytes")
    builder.delete_manifest("app", gone.digest)
    snap = builder.scan()
    got = orphaned_blobs(snap, mark(snap, Mode.DEFAULT))
    expected = (gone.blob_digests - keep.blob_digests) | {loose.digest}
    assert [b.digest for b in got] == sorted(expected)
    by = {b.digest: b for b in got}
    assert by[loose.digest] == OrphanBlob(loose.digest, 11, snap.blobs[loose.digest].mtime)
    assert by[gone.digest].size == gone.size
    assert shared.digest not in by


def test_no_orphans_in_a_healthy_store(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    builder.referrer("app", subject=img)
    snap = builder.scan()
    assert orphaned_blobs(snap, mark(snap, Mode.DEFAULT)) == []


def test_protected_blobs_are_not_orphans(builder: StoreBuilder) -> None:
    leftover = builder.orphan_blob(repo="app")
    builder.push_manifest("app", b"not json", ["v1"])
    snap = builder.scan()
    assert orphaned_blobs(snap, mark(snap, Mode.DEFAULT)) == []
    report = orphans(snap, now=NOW)
    assert report.protected_blobs == 1
    assert leftover.digest not in {b.digest for b in report.orphaned_blobs}


# --- untagged manifests -------------------------------------------------------------------------


def _untagged(builder: StoreBuilder) -> tuple[list[UntaggedManifest], int]:
    snap = builder.scan()
    return untagged_manifests(snap, mark(snap, Mode.DEFAULT), mark(snap, Mode.UNTAGGED))


def test_untagged_manifest_with_exclusive_bytes(builder: StoreBuilder) -> None:
    base = builder.layer("base")
    builder.image("app", tags=["v1"], layers=[base])
    own = builder.layer("own layer")
    dead = builder.image("app", layers=[base, own])
    assert dead.config is not None
    rows, freed = _untagged(builder)
    excl = dead.size + dead.config.size + own.size
    assert rows == [UntaggedManifest("app", dead.digest, "image", dead.size, excl, ())]
    assert freed == excl


def test_bytes_shared_by_two_untagged_manifests(builder: StoreBuilder) -> None:
    common = builder.layer("common to both")
    a = builder.image("app", layers=[common], label="a")
    b = builder.image("app", layers=[common], label="b")
    assert a.config is not None and b.config is not None
    rows, freed = _untagged(builder)
    by = {r.digest: r for r in rows}
    assert set(by) == {a.digest, b.digest}
    # The common layer is freed, but belongs to neither alone.
    assert by[a.digest].exclusive_bytes == a.size + a.config.size
    assert by[b.digest].exclusive_bytes == b.size + b.config.size
    assert freed == a.size + a.config.size + b.size + b.config.size + common.size


def test_layers_shared_across_repositories_are_not_freed(builder: StoreBuilder) -> None:
    layer = builder.layer("mounted")
    builder.image("other", tags=["v1"], layers=[layer], label="other")
    dead = builder.image("app", layers=[layer], label="app")
    assert dead.config is not None
    rows, freed = _untagged(builder)
    assert [r.digest for r in rows] == [dead.digest]
    assert freed == dead.size + dead.config.size
    assert rows[0].exclusive_bytes == freed


def test_history_tags(builder: StoreBuilder) -> None:
    old = builder.image("app", tags=["v1", "stable"])
    builder.image("app", tags=["v1", "stable"])
    rows, _ = _untagged(builder)
    assert [(r.digest, r.history_tags) for r in rows] == [(old.digest, ("stable", "v1"))]


def test_untagged_index_and_its_children_and_referrers(builder: StoreBuilder) -> None:
    a = builder.image("app", platform="linux/amd64")
    b = builder.image("app", platform="linux/arm64/v8")
    idx = builder.index("app", children=[a, b], platforms=["linux/amd64", "linux/arm64/v8"])
    sig = builder.referrer("app", subject=idx)
    rows, freed = _untagged(builder)
    kinds = {r.digest: r.kind for r in rows}
    assert kinds == {
        a.digest: "image",
        b.digest: "image",
        idx.digest: "index",
        sig.digest: "artifact",
    }
    assert freed == sum(
        builder.scan().blobs[d].known_size
        for d in a.blob_digests | b.blob_digests | idx.blob_digests | sig.blob_digests
    )


def test_tagged_index_children_are_not_untagged(builder: StoreBuilder) -> None:
    a = builder.image("app")
    builder.index("app", children=[a], tags=["v1"])
    builder.referrer("app", subject=a)
    rows, freed = _untagged(builder)
    assert rows == []
    assert freed == 0


def test_missing_and_unparseable_untagged_manifests(builder: StoreBuilder) -> None:
    gone = builder.image("app")
    builder.remove_blob(gone.digest)
    bad = builder.push_manifest("other", b"{}")  # unparseable: kept, so never "untagged"
    builder.image("other")  # it might list this one: every revision of "other" is kept
    rows, _ = _untagged(builder)
    assert [(r.digest, r.kind, r.size) for r in rows] == [(gone.digest, "missing", 0)]
    assert bad not in {r.digest for r in rows}


# --- stale uploads ------------------------------------------------------------------------------


@pytest.fixture
def uploads(builder: StoreBuilder) -> dict[str, str]:
    # Files written "now" (2026 and later): much younger than NOW, so only startedat can age
    # these, and a copy that refreshes mtimes changes nothing.
    return {
        "old": builder.upload("app", started_at="2024-05-01T00:00:00Z", data=b"x" * 10),
        "day": builder.upload("app", started_at="2024-05-31T11:00:00.999999999Z"),
        "fresh": builder.upload("other", started_at="2024-06-01T11:59:00Z"),
        "bad": builder.upload("app", started_at="garbage"),
    }


def test_stale_uploads_respect_the_threshold(
    builder: StoreBuilder, uploads: dict[str, str]
) -> None:
    snap = builder.scan()
    week = stale_uploads(snap, DEFAULT_UPLOAD_AGE, now=NOW)
    assert week == [
        StaleUpload(
            "app",
            uploads["old"],
            f"repositories/app/_uploads/{uploads['old']}",
            datetime(2024, 5, 1, tzinfo=UTC),
            10,
            31 * 86400 + 12 * 3600,
            "startedat",
        )
    ]
    hour = stale_uploads(snap, 3600, now=NOW)
    assert {u.uuid for u in hour} == {uploads["old"], uploads["day"]}
    minute = stale_uploads(snap, 30, now=NOW)
    assert {u.uuid for u in minute} == {uploads["old"], uploads["day"], uploads["fresh"]}
    # An unreadable start time: aged by its files, written after NOW.
    assert uploads["bad"] not in {u.uuid for u in minute}


def test_stale_upload_boundary(builder: StoreBuilder) -> None:
    builder.upload("app", started_at="2024-06-01T11:00:00Z")
    snap = builder.scan()
    assert stale_uploads(snap, 3600, now=NOW) == []  # exactly the age: not older
    assert len(stale_uploads(snap, 3599, now=NOW)) == 1


@pytest.mark.parametrize("age", [0, -1])
def test_zero_is_no_limit_every_unfinished_upload_is_stale(
    builder: StoreBuilder, uploads: dict[str, str], age: float
) -> None:
    # As --min-age 0 keeps nothing back, --uploads-older-than 0 calls every upload stale,
    # one started a minute ago and one whose files were written after NOW included.
    got = stale_uploads(builder.scan(), age, now=NOW)
    assert {u.uuid for u in got} == set(uploads.values())
    assert {u.age_from for u in got} == {"startedat", "mtime"}
    assert all(u.age >= 0 for u in got)


def test_upload_without_startedat_is_aged_by_its_newest_file(builder: StoreBuilder) -> None:
    old = NOW - 30 * 86400
    cancelled = builder.upload("app", startedat_file=False, mtime=old)
    young = builder.upload("app", startedat_file=False, mtime=NOW - 60)
    snap = builder.scan()
    (got,) = stale_uploads(snap, DEFAULT_UPLOAD_AGE, now=NOW)
    assert (got.uuid, got.age_from, got.started_at, got.age) == (
        cancelled,
        "mtime",
        None,
        30 * 86400,
    )
    assert young in {u.uuid for u in stale_uploads(snap, 30, now=NOW)}
    assert young not in {u.uuid for u in stale_uploads(snap, 3600, now=NOW)}


def test_uuid7_upload_id_dates_an_upload_without_startedat(builder: StoreBuilder) -> None:
    """Registry v3 ids are UUIDv7: they carry the creation time, whatever the mtimes say."""
    ms = int((NOW - 10 * 86400) * 1000)
    v7 = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7abc-9def-0123456789ab"
    builder.upload("app", uuid=v7, startedat_file=False)  # files written now: after NOW
    (got,) = stale_uploads(builder.scan(), DEFAULT_UPLOAD_AGE, now=NOW)
    assert (got.uuid, got.age_from) == (v7, "upload_id")
    assert got.started_at == datetime.fromtimestamp(ms / 1000, UTC)
    assert got.age == pytest.approx(10 * 86400, abs=0.001)


def test_stale_uploads_default_to_scan_time(builder: StoreBuilder, uploads: dict[str, str]) -> None:
    snap = builder.scan(now=NOW)
    assert [u.uuid for u in stale_uploads(snap, DEFAULT_UPLOAD_AGE)] == [uploads["old"]]


def test_default_upload_age_is_a_week() -> None:
    assert DEFAULT_UPLOAD_AGE == 7 * 24 * 3600


# --- the whole report -----------------------------------------------------------------------------


def test_orphans_report(builder: StoreBuilder) -> None:
    keep = builder.image("app", tags=["v1"])
    dead = builder.image("app")
    loose = builder.orphan_blob(b"12345")
    broken = builder.image("broken", tags=["v1"])
    assert broken.config is not None
    builder.remove_blob(broken.config.digest)
    uid = builder.upload("app", started_at="2020-01-01T00:00:00Z", data=b"abc")
    builder.write("repositories/app/_manifests/junk", b"")
    snap = builder.scan()
    report = orphans(snap, now=NOW)
    assert [b.digest for b in report.orphaned_blobs] == [loose.digest]
    assert report.orphaned_bytes == 5
    assert [u.digest for u in report.untagged_manifests] == [dead.digest]
    assert report.untagged_bytes == sum(snap.blobs[d].known_size for d in dead.blob_digests)
    assert report.dangling == [
        Dangling(
            "broken", "config", broken.config.digest, blob_data(broken.config.digest), broken.digest
        )
    ]
    assert [u.uuid for u in report.stale_uploads] == [uid]
    assert report.stale_upload_bytes == 3
    assert [(f.kind, f.path) for f in report.problems] == [
        (Kind.UNKNOWN_ENTRY, "repositories/app/_manifests/junk")
    ]
    assert not report.healthy
    assert report.protected_blobs == 0
    assert report.marks_default is not None
    assert report.marks_default.mode is Mode.DEFAULT
    assert keep.digest in report.marks_default.marked


def test_orphans_upload_age_zero(builder: StoreBuilder) -> None:
    builder.upload("app", started_at="2000-01-01T00:00:00Z")
    builder.upload("app", started_at="2024-06-01T11:59:59Z")
    snap = builder.scan()
    assert len(orphans(snap, uploads_older_than=0, now=NOW).stale_uploads) == 2
    assert len(orphans(snap, now=NOW).stale_uploads) == 1


def test_cancelled_uploads_are_not_problems(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    builder.upload("app", startedat_file=False, mtime=NOW - 30 * 86400)
    builder.path("repositories/app/_uploads/empty").mkdir()
    report = orphans(builder.scan(), now=NOW)
    assert report.problems == []
    assert report.healthy
    assert len(report.stale_uploads) == 1  # the empty folder is an empty folder


def test_healthy(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    builder.image("app")  # untagged is not unhealthy
    builder.orphan_blob()  # nor is an orphan
    builder.upload("app", started_at="2000-01-01T00:00:00Z")  # nor a stale upload
    report = orphans(builder.scan(), now=NOW)
    assert report.healthy
    assert len(report.orphaned_blobs) == 1
    assert len(report.untagged_manifests) == 1
    assert len(report.stale_uploads) == 1


# --- helpers --------------------------------------------------------------------------------------


def test_manifest_closure_and_blob_repositories(builder: StoreBuilder) -> None:
    layer = builder.layer("shared")
    a = builder.image("a", tags=["v1"], layers=[layer], label="a")
    b = builder.image("b", tags=["v1"], layers=[layer], label="b")
    idx = builder.index("b", children=[b], tags=["multi"])
    snap = builder.scan()
    assert manifest_closure(snap, a.digest) == a.blob_digests
    assert manifest_closure(snap, idx.digest) == {idx.digest}
    assert manifest_closure(snap, "sha256:" + "0" * 64) == {"sha256:" + "0" * 64}
    repos = blob_repositories(snap, mark(snap, Mode.DEFAULT))
    assert repos[layer.digest] == {"a", "b"}
    assert repos[a.digest] == {"a"}
    assert repos[idx.digest] == {"b"}
    assert sum_sizes(snap, [a.digest, layer.digest, "sha256:" + "0" * 64]) == a.size + layer.size
