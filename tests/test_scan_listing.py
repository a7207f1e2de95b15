"""regfs.scan.listing: a store that prefers listing (a bucket) is listed once and walked in
memory; the snapshot is the one a folder walk of the same registry gives, with far fewer reads.
(The same on a real S3 server, over registry-written buckets: tests/test_scan_s3.py.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from builder import StoreBuilder
from gc_helpers import age_tree
from test_storage_listed import Bucketish, _files
from test_storage_memory_gc import build, to_memory

from regfs import render
from regfs.model.findings import Kind
from regfs.model.snapshot import Repository
from regfs.parallel.tuning import Tuning
from regfs.reports.check import check
from regfs.reports.orphans import orphans
from regfs.scan import ScanMode, scan
from regfs.scan.listing import LIST_PHASE, PREFETCH_PHASE, listed_view, wanted
from regfs.storage.base import ObjectInfo
from regfs.storage.local import LocalStorage

NOW = 2_000_000_000.0


def _both(tmp_path: Path) -> tuple[LocalStorage, Bucketish]:
    b = StoreBuilder(tmp_path / "t")
    build(b)
    # What a bucket cannot hold: an empty folder (a deleted manifest's) is dropped on disk too.
    b.image("tags/many", tags=[f"t{i}" for i in range(5)], layers=[b.layer("x")])
    age_tree(b.root)
    disk = LocalStorage(b.v2)
    return disk, Bucketish(to_memory(b.v2))


def _as_in_a_bucket(repos: dict[str, Repository]) -> dict[str, Repository]:
    """A bucket has no empty folders: a ``_manifests`` folder left empty by a deleted manifest
    is not there."""
    return {
        n: replace(r, has_manifests=False)
        if r.has_manifests and not r.revisions and not r.tags
        else r
        for n, r in repos.items()
    }


@pytest.mark.parametrize("mode", list(ScanMode))
def test_a_listed_scan_is_the_walked_scan(tmp_path: Path, mode: ScanMode) -> None:
    disk, bucket = _both(tmp_path)
    walked = scan(disk, mode=mode, now=NOW, workers=1)
    listed = scan(bucket, mode=mode, now=NOW, tuning=Tuning(threads=4))
    assert listed.v2 == bucket.location and listed.mode is mode
    assert listed.repositories == _as_in_a_bucket(walked.repositories)
    assert listed.blobs == walked.blobs
    assert listed.manifests == walked.manifests
    assert listed.blobs_without_data == walked.blobs_without_data
    # A bucket has no empty folders: the walk's are its only extra.
    assert walked.findings == listed.findings
    assert set(listed.empty_dirs) <= set(walked.empty_dirs)
    if mode is ScanMode.FULL:
        assert render.orphans_dict(orphans(listed, now=NOW)) == render.orphans_dict(
            orphans(walked, now=NOW)
        )
        assert render.check_dict(check(listed)) == render.check_dict(check(walked))


def test_proven_links_are_not_read_and_each_manifest_once(tmp_path: Path) -> None:
    _disk, bucket = _both(tmp_path)
    snap = scan(bucket, mode=ScanMode.FULL, now=NOW, tuning=Tuning(threads=4))
    # Every revision, layer and history link proven by its ETag, every tag's current link by
    # the ETag of a digest in its history: no link read.
    assert not [r for r in bucket.reads if r.endswith("/link")]
    data = [r for r in bucket.reads if r.endswith("/data")]
    assert len(data) == len(set(data)) == len(snap.manifests)
    # Current links whose ETag proves nothing are read, each once, and give the same snapshot.
    current = [p for p, _ in _files(bucket) if p.endswith("/current/link")]
    again = Bucketish(bucket)
    again.etags = {p: "f" * 32 + "-1" for p in current}
    same = scan(again, mode=ScanMode.FULL, now=NOW, tuning=Tuning(threads=4))
    links = [r for r in again.reads if r.endswith("/link")]
    assert sorted(links) == sorted(set(links))
    assert len(links) == sum(len(r.tags) for r in snap.repositories.values())
    assert same.repositories == snap.repositories and same.manifests == snap.manifests


def test_a_names_only_scan_reads_no_tag_link(tmp_path: Path) -> None:
    _disk, bucket = _both(tmp_path)
    scan(bucket, mode=ScanMode.TAG_NAMES, now=NOW, tuning=Tuning(threads=4))
    assert not [r for r in bucket.reads if r.endswith("/link")]


def test_what_each_mode_fetches() -> None:
    h = "ab" * 32
    files = [
        ObjectInfo(f"repositories/a/_manifests/revisions/sha256/{h}/link", "file", 71, 1.0),
        ObjectInfo("repositories/a/_manifests/tags/v1/current/link", "file", 71, 1.0),
        ObjectInfo(f"repositories/a/_manifests/tags/v1/index/sha256/{h}/link", "file", 71, 1.0),
        ObjectInfo(f"repositories/a/_layers/sha256/{h}/link", "file", 71, 1.0),
        ObjectInfo("repositories/a/_uploads/u1/startedat", "file", 20, 1.0),
        ObjectInfo("repositories/a/_uploads/u1/data", "file", 20, 1.0),
        ObjectInfo(f"blobs/sha256/ab/{h}/data", "file", 20, 1.0),
        ObjectInfo("repositories/a/stray/startedat", "file", 20, 1.0),
    ]
    label = {
        "revisions": files[0].path,
        "current": files[1].path,
        "index": files[2].path,
        "_layers": files[3].path,
        "_uploads": files[4].path,
    }
    got = {m: {k for k, v in label.items() if v in set(wanted(files, m))} for m in ScanMode}
    assert got[ScanMode.FULL] == {"revisions", "current", "index", "_layers", "_uploads"}
    assert got[ScanMode.FAST] == got[ScanMode.LAZY] == {"revisions", "current", "_uploads"}
    assert got[ScanMode.TAG_NAMES] == {"revisions", "_uploads"}


def test_progress_sees_the_listing_and_the_fetch(tmp_path: Path) -> None:
    _disk, bucket = _both(tmp_path)
    seen: list[tuple[str, int, int]] = []
    view = listed_view(
        bucket, ScanMode.FULL, threads=2, progress=lambda p, d, t: seen.append((p, d, t))
    )
    assert (LIST_PHASE, view.entries, 0) in seen
    fetched = [s for s in seen if s[0] == PREFETCH_PHASE]
    assert fetched[0][1] == 0 and fetched[-1][1] == fetched[-1][2] > 0


def test_a_part_that_cannot_be_listed_is_unreadable_and_blocks(tmp_path: Path) -> None:
    _disk, bucket = _both(tmp_path)
    bucket.failing = {"repositories/app/_manifests", "blobs/sha256"}
    snap = scan(bucket, mode=ScanMode.FULL, now=NOW, tuning=Tuning(threads=2))
    unreadable = {f.path for f in snap.findings if f.kind is Kind.UNREADABLE and f.blocks_gc}
    assert {"repositories/app/_manifests", "blobs/sha256"} <= unreadable
    assert not snap.blobs_complete
    report = orphans(snap, now=NOW)
    assert not report.healthy and report.orphaned_blobs == []
