"""The scan on a real S3 server (SeaweedFS), over every fixture scenario the real registry wrote
into a bucket: the same report as the folder fixture (modulo what a bucket cannot hold), the
orphaned blobs the reference ``garbage-collect --dry-run`` names on that bucket, few requests,
and unreadable or throttled keys failing closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faultproxy
import pytest
import realreg as rr
import s3bed
from s3compare import comparable_orphans

from regfs import render
from regfs.model.findings import Kind
from regfs.reports.orphans import orphans
from regfs.scan import ScanMode, scan
from regfs.storage.local import LocalStorage, resolve_root
from regfs.storage.s3client import Retry

pytestmark = pytest.mark.registry


_storage = s3bed.storage


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", rr.ALL_FIXTURES)
def test_a_bucket_scans_as_its_folder_does(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path, name: str
) -> None:
    tree = scenarios.get(name)
    storage = _storage(weed, tree.s3.prefix)
    snap = scan(storage, mode=ScanMode.FULL)
    assert snap.v2 == f"s3://{weed.bucket}/{tree.s3.prefix}/docker/registry/v2"
    disk = scan(LocalStorage(resolve_root(rr.extract_fixture(name, tmp_path / "root"))))
    s3_doc = render.orphans_dict(orphans(snap))
    fs_doc = render.orphans_dict(orphans(disk))
    assert comparable_orphans(s3_doc) == comparable_orphans(fs_doc)
    # Requests: one listing per shard, a GET per tag's current link, per manifest, per upload's
    # startedat, and per link the ETag did not prove (the damaged ones): no HEAD, no walk.
    counts = storage.stats.requests
    assert set(counts) <= {"ListObjectsV2", "GetObject"}
    tags = sum(len(r.tags) for r in snap.repositories.values())
    uploads = sum(len(r.uploads) for r in snap.repositories.values())
    reads = tags + len(snap.manifests) + len(snap.unparseable) + uploads
    assert counts["GetObject"] <= reads + (8 if name == "damaged" else 0)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", [n for n in rr.ALL_FIXTURES if n != "damaged"])
def test_orphaned_blobs_are_the_reference_gc_on_the_same_bucket(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, name: str
) -> None:
    tree = scenarios.get(name)
    ref = rr.reference_gc(None, dry_run=True, s3=tree.s3.storage, schema1=tree.schema1)
    assert ref.exit_code == 0, ref.output
    report = orphans(scan(_storage(weed, tree.s3.prefix)))
    assert sorted(b.digest for b in report.orphaned_blobs) == sorted(ref.blobs)


def test_damaged_bucket_reference_gives_up_regfs_reports(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios
) -> None:
    tree = scenarios.get("damaged")
    ref = rr.reference_gc(None, dry_run=True, s3=tree.s3.storage)
    assert ref.exit_code != 0
    report = orphans(scan(_storage(weed, tree.s3.prefix)))
    assert not report.healthy
    kinds = {p.kind for p in report.problems}
    assert {Kind.UNPARSEABLE_MANIFEST, Kind.LINK_MISMATCH, Kind.BAD_LINK, Kind.EMPTY_LINK} <= kinds


proxy = s3bed.proxy


def test_throttling_is_retried_and_the_report_is_the_same(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, proxy: faultproxy.FaultProxy
) -> None:
    prefix = scenarios.get("shared").s3.prefix
    clean = render.orphans_dict(orphans(scan(_storage(weed, prefix))))
    proxy.inject("slowdown", op="ListObjectsV2", times=4)
    proxy.inject("drop", op="GetObject", times=3)
    proxy.inject("error500", op="GetObject", times=2)
    storage = _storage(weed, prefix, proxy.url, retry=Retry(attempts=12, base=0.001, cap=0.01))
    assert render.orphans_dict(orphans(scan(storage))) == clean
    assert sum(storage.stats.retries.values()) == 9


def test_a_manifest_that_stays_unreadable_fails_closed(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, proxy: faultproxy.FaultProxy
) -> None:
    tree = scenarios.get("shared")
    clean = orphans(scan(_storage(weed, tree.s3.prefix)))
    assert clean.orphaned_blobs
    # Every read of one manifest's data answers SlowDown: the scan cannot know its references.
    target = _a_manifest(tree)
    proxy.inject("slowdown", op="GetObject", times=-1, match=lambda _o, _m, p: target in p)
    report = orphans(scan(_storage(weed, tree.s3.prefix, proxy.url)))
    assert not report.healthy
    unread = [p for p in report.problems if p.kind is Kind.UNPARSEABLE_MANIFEST]
    assert unread and target in unread[0].path and unread[0].blocks_gc
    # Never a wrong report: nothing the unreadable manifest may reference is called orphaned.
    assert {b.digest for b in report.orphaned_blobs} <= {b.digest for b in clean.orphaned_blobs}


def test_a_listing_that_stays_throttled_fails_closed(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, proxy: faultproxy.FaultProxy
) -> None:
    prefix = scenarios.get("shared").s3.prefix
    proxy.inject("slowdown", op="ListObjectsV2", times=-1)
    report = orphans(scan(_storage(weed, prefix, proxy.url)))
    assert not report.healthy and report.orphaned_blobs == []
    assert any(p.kind is Kind.UNREADABLE and p.blocks_gc for p in report.problems)


def _a_manifest(tree: Any) -> str:
    """The hex of a tagged image's manifest of ``tree`` (its blob key contains it)."""
    image = next(i for i in tree.meta["images"] if i["tag"] and i["state"] == "tagged")
    return str(image["digest"]).split(":", 1)[1]
