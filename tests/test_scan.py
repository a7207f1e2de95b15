"""regfs.scan: the walk, and every anomaly it reports as a finding."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from builder import EMPTY_SHA256, StoreBuilder, hexof, sha256

from regfs.model.findings import Finding, Kind
from regfs.model.manifest import ManifestKind
from regfs.scan import Link, ScanMode, Snapshot, iter_links, parse_started_at, scan
from regfs.storage.local import LocalStorage

H = "0123456789abcdef" * 4
D = "sha256:" + H


def kinds(snap: Snapshot) -> list[tuple[Kind, str]]:
    return [(f.kind, f.path) for f in snap.findings]


def only(snap: Snapshot, kind: Kind) -> Finding:
    found = [f for f in snap.findings if f.kind is kind]
    assert len(found) == 1, snap.findings
    return found[0]


# --- a healthy store ----------------------------------------------------------------------------


def test_healthy_store_has_no_findings(builder: StoreBuilder) -> None:
    base = builder.layer("base")
    img = builder.image("org/app", tags=["v1", "latest"], layers=[base])
    arm = builder.image("org/app", layers=[base, builder.layer("arm")], platform="linux/arm64/v8")
    idx = builder.index(
        "org/app", children=[img, arm], tags=["multi"], platforms=["linux/amd64", "linux/arm64/v8"]
    )
    sig = builder.referrer("org/app", subject=img)
    other = builder.image("other", tags=["x"], layers=[base], media_type="docker")
    snap = builder.scan(now=1234.0)

    assert snap.findings == []
    assert snap.blocking == []
    assert snap.v2 == str(builder.v2)
    assert snap.scanned_at == 1234.0
    assert snap.blobs_complete
    assert snap.unparseable == {}
    assert snap.blobs_without_data == set()
    assert list(snap.repositories) == ["org/app", "other"]
    repo = snap.repositories["org/app"]
    assert (repo.has_manifests, repo.has_layers, repo.has_uploads) == (True, True, False)
    assert not repo.incomplete
    assert set(repo.revisions) == {img.digest, arm.digest, idx.digest, sig.digest}
    assert all(link.digest == d for d, link in repo.revisions.items())
    assert set(repo.tags) == {"v1", "latest", "multi"}
    assert repo.tags["v1"].current is not None
    assert repo.tags["v1"].current.digest == img.digest
    assert set(repo.tags["v1"].index) == {img.digest}
    assert repo.tags["multi"].current is not None
    assert repo.tags["multi"].current.digest == idx.digest
    # Layer links: every config and layer, never a manifest.
    expected_layers = set()
    for m in (img, arm, sig):
        expected_layers |= m.blob_digests - {m.digest}
    assert set(repo.layers) == expected_layers
    assert set(snap.repositories["other"].layers) == other.blob_digests - {other.digest}
    # Blobs: every distinct blob once, with its size.
    all_blobs = img.blob_digests | arm.blob_digests | sig.blob_digests | other.blob_digests
    assert set(snap.blobs) == all_blobs | {idx.digest}
    assert snap.blobs[img.digest].size == img.size
    assert snap.blobs[base.digest].size == base.size
    assert snap.blobs[base.digest].mtime > 0
    # Manifests parsed once each.
    assert set(snap.manifests) == {img.digest, arm.digest, idx.digest, sig.digest, other.digest}
    assert snap.manifests[idx.digest].kind is ManifestKind.OCI_INDEX
    assert snap.manifests[other.digest].kind is ManifestKind.DOCKER_V2
    assert snap.manifests[sig.digest].subject == img.digest


def test_missing_top_level_folders(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    (v2 / "blobs").mkdir(parents=True)
    snap = scan(LocalStorage(v2))
    assert snap.repositories == {}
    assert snap.blobs == {}
    assert snap.findings == []
    shutil.rmtree(v2 / "blobs")
    (v2 / "repositories").mkdir()
    assert scan(LocalStorage(v2)).findings == []


def test_workers_do_not_change_the_result(builder: StoreBuilder) -> None:
    for i in range(12):
        builder.image(f"r{i}", tags=["v1"])
    builder.write_link(builder.revision_link("r3", D), "sha256:bad")
    one = builder.scan(workers=1, now=0.0)
    many = builder.scan(workers=8, now=0.0)
    assert one.findings == many.findings
    assert one.blobs == many.blobs
    assert one.manifests == many.manifests
    assert list(one.repositories) == list(many.repositories)


def test_progress_is_reported(builder: StoreBuilder) -> None:
    builder.image("a", tags=["v1"])
    builder.image("b", tags=["v1"])
    calls: list[tuple[str, int, int]] = []
    builder.scan(progress=lambda phase, done, total: calls.append((phase, done, total)))
    scan_calls = [c for c in calls if c[0] == "scan"]
    assert scan_calls[-1][1] == scan_calls[-1][2] == len(scan_calls)
    assert calls[-1] == ("manifests", 2, 2)


def test_findings_are_sorted_by_path(builder: StoreBuilder) -> None:
    builder.image("b", tags=["v1"])
    builder.write("repositories/b/_manifests/junk", b"")
    builder.write("repositories/a/_layers/junk", b"")
    builder.write("blobs/sha256/zz/x", b"")
    snap = builder.scan()
    paths = [f.path for f in snap.findings]
    assert paths == sorted(paths)
    assert len(paths) == 3


# --- link files ---------------------------------------------------------------------------------


@pytest.fixture
def app(builder: StoreBuilder) -> StoreBuilder:
    layer = builder.layer("l")
    img = builder.image("app", tags=["v1"], layers=[layer])
    builder.img = img  # type: ignore[attr-defined]
    builder.lay = layer  # type: ignore[attr-defined]
    return builder


def _revision(b: StoreBuilder) -> tuple[str, str]:
    d = b.img.digest  # type: ignore[attr-defined]
    return d, b.revision_link("app", d)


def test_empty_revision_link(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    app.write(rel, b"")
    snap = app.scan()
    f = only(snap, Kind.EMPTY_LINK)
    assert (f.path, f.digest, f.repository, f.blocks_gc) == (rel, d, "app", True)
    assert snap.repositories["app"].revisions[d].digest is None
    assert snap.blocking == [f]


def test_newline_terminated_link(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    app.write(rel, d.encode() + b"\n")
    snap = app.scan()
    f = only(snap, Kind.BAD_LINK)
    assert f.path == rel
    assert f.digest == d
    assert "newline" in f.message
    assert f.blocks_gc
    link = snap.repositories["app"].revisions[d]
    assert link == Link(None, link.mtime)
    assert link.mtime > 0


def test_crlf_terminated_link(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    app.write(rel, d.encode() + b"\r\n")
    assert "newline" in only(app.scan(), Kind.BAD_LINK).message


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",
        b"sha256:" + b"a" * 63,  # wrong length
        b"sha256:" + b"a" * 65,
        b"sha256:" + b"A" * 64,  # uppercase
        b" sha256:" + b"a" * 64,
        b"\x00" * 71,
    ],
)
def test_bad_revision_link(app: StoreBuilder, content: bytes) -> None:
    d, rel = _revision(app)
    app.write(rel, content)
    snap = app.scan()
    f = only(snap, Kind.BAD_LINK)
    assert (f.path, f.digest, f.repository, f.blocks_gc) == (rel, d, "app", True)
    assert snap.repositories["app"].revisions[d].digest is None


def test_non_ascii_link(app: StoreBuilder) -> None:
    _, rel = _revision(app)
    app.write(rel, "sha256:\u00e9".encode())
    f = only(app.scan(), Kind.BAD_LINK)
    assert "not ASCII" in f.message


def test_unknown_algorithm_in_link(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    app.write(rel, b"md5:d41d8cd98f00b204e9800998ecf8427e")
    f = only(app.scan(), Kind.UNKNOWN_ALGORITHM)
    assert (f.path, f.digest, f.blocks_gc) == (rel, d, True)
    assert "'md5'" in f.message


def test_link_content_disagreeing_with_its_folder(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    other = app.image("app")  # a second revision the first link now names
    app.write_link(rel, other.digest)
    snap = app.scan()
    f = only(snap, Kind.LINK_MISMATCH)
    assert (f.path, f.digest, f.repository, f.blocks_gc) == (rel, d, "app", True)
    assert other.digest in f.message
    repo = snap.repositories["app"]
    assert repo.revisions[d].digest == other.digest
    assert repo.revision_digests() == {d, other.digest}


def test_layer_link_problems_do_not_block_gc(app: StoreBuilder) -> None:
    layer = app.lay  # type: ignore[attr-defined]
    rel = app.layer_link("app", layer.digest)
    app.write(rel, b"")
    snap = app.scan()
    f = only(snap, Kind.EMPTY_LINK)
    assert (f.path, f.digest, f.blocks_gc) == (rel, layer.digest, False)
    app.write(rel, layer.digest.encode() + b"\n")
    f = only(app.scan(), Kind.BAD_LINK)
    assert not f.blocks_gc


def test_tag_current_link_problems_block_gc(app: StoreBuilder) -> None:
    rel = "repositories/app/_manifests/tags/v1/current/link"
    app.write(rel, b"")
    snap = app.scan()
    f = only(snap, Kind.EMPTY_LINK)
    assert (f.path, f.digest, f.repository, f.blocks_gc) == (rel, None, "app", True)
    current = snap.repositories["app"].tags["v1"].current
    assert current is not None
    assert current.digest is None
    app.write(rel, b"latest")
    f = only(app.scan(), Kind.BAD_LINK)
    assert f.blocks_gc
    assert f.digest is None


def test_tag_index_link_problems_do_not_block_gc(app: StoreBuilder) -> None:
    d, _ = _revision(app)
    rel = f"repositories/app/_manifests/tags/v1/index/sha256/{hexof(d)}/link"
    app.write(rel, b"sha256:nope")
    snap = app.scan()
    f = only(snap, Kind.BAD_LINK)
    assert (f.path, f.digest, f.blocks_gc) == (rel, d, False)


def test_tag_without_current_link(app: StoreBuilder) -> None:
    (app.path("repositories/app/_manifests/tags/v1/current/link")).unlink()
    snap = app.scan()
    f = only(snap, Kind.MISSING_LINK)
    assert f.path == "repositories/app/_manifests/tags/v1/current/link"
    assert not f.blocks_gc
    assert snap.repositories["app"].tags["v1"].current is None


def test_digest_folder_with_a_stray_file_but_no_link(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    app.path(rel).rename(app.path(rel + ".tmp"))
    snap = app.scan()
    assert kinds(snap) == [
        (Kind.MISSING_LINK, rel[: -len("/link")]),
        (Kind.UNKNOWN_ENTRY, rel + ".tmp"),
    ]
    assert d not in snap.repositories["app"].revisions


def test_tmp_file_next_to_a_link(app: StoreBuilder) -> None:
    d, rel = _revision(app)
    app.write(rel + ".tmp", d.encode())
    snap = app.scan()
    f = only(snap, Kind.UNKNOWN_ENTRY)
    assert (f.path, f.digest, f.blocks_gc) == (rel + ".tmp", d, False)
    assert snap.repositories["app"].revisions[d].digest == d


# --- deleted revisions ----------------------------------------------------------------------------


def test_deleted_revision_leaves_an_empty_folder_and_no_finding(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1", "stable"])
    keep = builder.image("app", tags=["v2"])
    builder.delete_manifest("app", img.digest)
    assert builder.path(builder.revision_link("app", img.digest)).parent.is_dir()
    snap = builder.scan()
    assert snap.findings == []
    repo = snap.repositories["app"]
    assert set(repo.revisions) == {keep.digest}
    assert set(repo.tags) == {"v2"}
    assert snap.empty_dirs == [builder.revision_link("app", img.digest)[: -len("/link")]]
    # The blob stays: only gc removes blobs.
    assert img.digest in snap.blobs


# --- blobs ----------------------------------------------------------------------------------------


def test_blob_folder_without_data(builder: StoreBuilder) -> None:
    blob = builder.orphan_blob(b"gone")
    builder.remove_blob(blob.digest, keep_folder=True)
    snap = builder.scan()
    f = only(snap, Kind.MISSING_DATA)
    folder = f"blobs/sha256/{hexof(blob.digest)[:2]}/{hexof(blob.digest)}"
    assert (f.path, f.digest, f.blocks_gc) == (folder, blob.digest, False)
    assert snap.blobs_without_data == {blob.digest}
    assert blob.digest not in snap.blobs


def test_zero_byte_blob_data(builder: StoreBuilder) -> None:
    d = sha256(b"not empty")
    rel = f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data"
    builder.write(rel, b"")
    snap = builder.scan()
    f = only(snap, Kind.EMPTY_BLOB)
    assert (f.path, f.digest, f.blocks_gc) == (rel, d, False)
    assert snap.blobs[d].size == 0


def test_the_empty_blob_is_not_a_finding(builder: StoreBuilder) -> None:
    empty = builder.blob(b"")
    assert empty.digest == EMPTY_SHA256
    builder.image("app", tags=["v1"], layers=[empty])
    snap = builder.scan()
    assert snap.findings == []
    assert snap.blobs[EMPTY_SHA256].size == 0


def test_bad_names_in_blobs(builder: StoreBuilder) -> None:
    good = builder.orphan_blob(b"good")
    builder.write("blobs/sha256/zz/x/data", b"x")  # not a hex prefix
    builder.write("blobs/sha256/abc/x/data", b"x")  # three characters
    builder.write("blobs/sha256/README", b"x")  # a file among prefixes
    builder.write(f"blobs/sha256/ff/{'0' * 64}/data", b"x")  # hex disagrees with the prefix
    builder.write("blobs/sha256/ab/abcd/data", b"x")  # short hex
    builder.write("blobs/md5/d4/x/data", b"x")  # unknown algorithm
    builder.write("blobs/stray", b"x")
    gd = f"blobs/sha256/{hexof(good.digest)[:2]}/{hexof(good.digest)}"
    builder.write(f"{gd}/data.tmp", b"x")
    snap = builder.scan()
    assert sorted(kinds(snap), key=lambda x: x[1]) == sorted(
        [
            (Kind.BAD_NAME, "blobs/sha256/zz"),
            (Kind.BAD_NAME, "blobs/sha256/abc"),
            (Kind.BAD_NAME, "blobs/sha256/README"),
            (Kind.BAD_NAME, f"blobs/sha256/ff/{'0' * 64}"),
            (Kind.BAD_NAME, "blobs/sha256/ab/abcd"),
            (Kind.UNKNOWN_ENTRY, "blobs/md5"),
            (Kind.UNKNOWN_ENTRY, "blobs/stray"),
            (Kind.UNKNOWN_ENTRY, f"{gd}/data.tmp"),
        ],
        key=lambda x: x[1],
    )
    assert not any(f.blocks_gc for f in snap.findings)
    assert set(snap.blobs) == {good.digest}


# --- unknown entries and bad names in repositories ------------------------------------------------


def test_unknown_entries_in_repositories(app: StoreBuilder) -> None:
    app.write("repositories/stray.txt", b"")
    app.path("repositories/_layers").mkdir()  # reserved name where a repository name belongs
    app.path("repositories/app/_trash").mkdir()
    app.write("repositories/app/_manifests/notes", b"")
    app.path("repositories/app/_manifests/tags/v1/history").mkdir()
    app.write("repositories/app/_manifests/tags/v1/current/link.tmp", b"")
    app.write("repositories/app/_manifests/tags/stray", b"")
    app.write("repositories/app/_layers/stray", b"")
    app.write("repositories/app/_uploads/stray", b"")
    snap = app.scan()
    assert sorted(kinds(snap)) == sorted(
        [
            (Kind.UNKNOWN_ENTRY, "repositories/stray.txt"),
            (Kind.UNKNOWN_ENTRY, "repositories/_layers"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_trash"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_manifests/notes"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_manifests/tags/v1/history"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_manifests/tags/v1/current/link.tmp"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_manifests/tags/stray"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_layers/stray"),
            (Kind.UNKNOWN_ENTRY, "repositories/app/_uploads/stray"),
        ]
    )
    assert not any(f.blocks_gc for f in snap.findings)
    in_repo = [f for f in snap.findings if "/app/_" in f.path and "_trash" not in f.path]
    assert len(in_repo) == 6
    assert all(f.repository == "app" for f in in_repo)
    # The tag still resolves.
    cur = snap.repositories["app"].tags["v1"].current
    assert cur is not None and cur.digest == app.img.digest  # type: ignore[attr-defined]


def test_unknown_algorithm_and_bad_digest_folders(app: StoreBuilder) -> None:
    app.write_link("repositories/app/_layers/md5/d41d8cd98f00b204e9800998ecf8427e/link", D)
    app.write_link("repositories/app/_manifests/revisions/sha256/NOTHEX/link", D)
    app.write("repositories/app/_manifests/revisions/sha256/" + "a" * 64, b"")  # a file
    snap = app.scan()
    assert sorted(kinds(snap)) == sorted(
        [
            (Kind.UNKNOWN_ALGORITHM, "repositories/app/_layers/md5"),
            (Kind.BAD_NAME, "repositories/app/_manifests/revisions/sha256/NOTHEX"),
            (Kind.BAD_NAME, "repositories/app/_manifests/revisions/sha256/" + "a" * 64),
        ]
    )


def test_bad_repository_and_tag_names(builder: StoreBuilder) -> None:
    builder.image("Bad_Repo", tags=["v1"])
    builder.image("app", tags=["-v1"])
    snap = builder.scan()
    assert sorted(kinds(snap)) == [
        (Kind.BAD_NAME, "repositories/Bad_Repo"),
        (Kind.BAD_NAME, "repositories/app/_manifests/tags/-v1"),
    ]
    # Still scanned: the registry ignores them, but their blobs are accounted for.
    assert set(snap.repositories) == {"Bad_Repo", "app"}
    assert "-v1" in snap.repositories["app"].tags


# --- repositories ---------------------------------------------------------------------------------


def test_nested_repositories(builder: StoreBuilder) -> None:
    parent = builder.image("org/app", tags=["v1"])
    child = builder.image("org/app/worker", tags=["v1"])
    deep = builder.image("org/app/worker/x/y", tags=["v1"])
    snap = builder.scan()
    assert snap.findings == []
    assert list(snap.repositories) == ["org/app", "org/app/worker", "org/app/worker/x/y"]
    assert set(snap.repositories["org/app"].revisions) == {parent.digest}
    assert set(snap.repositories["org/app/worker"].revisions) == {child.digest}
    assert set(snap.repositories["org/app/worker/x/y"].revisions) == {deep.digest}
    assert "org" not in snap.repositories


def test_repository_with_only_layers(builder: StoreBuilder) -> None:
    blob = builder.orphan_blob(b"pushed, never tagged", repo="blobsonly")
    snap = builder.scan()
    repo = snap.repositories["blobsonly"]
    assert (repo.has_layers, repo.has_manifests, repo.has_uploads) == (True, False, False)
    assert set(repo.layers) == {blob.digest}
    assert repo.revisions == {} and repo.tags == {}
    assert snap.findings == []


def test_repository_with_only_manifests(builder: StoreBuilder) -> None:
    img = builder.image("v3style", tags=["v1"])
    shutil.rmtree(builder.path("repositories/v3style/_layers"))
    snap = builder.scan()
    repo = snap.repositories["v3style"]
    assert (repo.has_layers, repo.has_manifests) == (False, True)
    assert set(repo.revisions) == {img.digest}
    assert repo.layers == {}
    assert img.digest in snap.manifests


def test_repository_with_only_uploads(builder: StoreBuilder) -> None:
    uid = builder.upload("fresh", started_at="2024-05-06T07:08:09Z")
    snap = builder.scan()
    repo = snap.repositories["fresh"]
    assert (repo.has_layers, repo.has_manifests, repo.has_uploads) == (False, False, True)
    assert list(repo.uploads) == [uid]


def test_files_named_like_repository_parts_do_not_make_a_repository(
    builder: StoreBuilder,
) -> None:
    builder.write("repositories/notarepo/_manifests", b"")
    snap = builder.scan()
    assert snap.repositories == {}
    assert kinds(snap) == [(Kind.UNKNOWN_ENTRY, "repositories/notarepo/_manifests")]


# --- symlinks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [ScanMode.FULL, ScanMode.LAZY], ids=["thorough", "fast"])
def test_symlinked_repository_is_read_through(
    builder: StoreBuilder, tmp_path: Path, mode: ScanMode
) -> None:
    """The registry follows symbolic links and serves what is behind them: so does the scan,
    for marking, and reports each link (it blocks gc; nothing at or below it is deleted)."""
    outside = StoreBuilder(tmp_path / "outside")
    evil = outside.image("evil", tags=["v1"])
    inner = outside.image("org/inner", tags=["v1"])
    builder.image("app", tags=["v1"])
    for img in (evil, inner):  # their blobs live in this store, as the registry needs
        for d in img.blob_digests:
            src = outside.path(f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data")
            builder.write(f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data", src.read_bytes())
    # A folder outside the tree that holds a _manifests folder, and one holding a repository.
    os.symlink(outside.path("repositories/evil"), builder.path("repositories/evil"))
    os.symlink(outside.path("repositories/org"), builder.path("repositories/org"))
    snap = scan(LocalStorage(builder.v2), mode=mode)
    assert list(snap.repositories) == ["app", "evil", "org/inner"]
    assert evil.digest in snap.manifests and inner.digest in snap.manifests
    assert snap.repositories["evil"].tags["v1"].current is not None
    assert sorted(kinds(snap)) == [
        (Kind.SYMLINK, "repositories/evil"),
        (Kind.SYMLINK, "repositories/org"),
    ]
    assert all(f.blocks_gc for f in snap.findings)


def test_symlink_loop_among_repositories_is_unreadable(builder: StoreBuilder) -> None:
    builder.image("org/app", tags=["v1"])
    os.symlink(builder.path("repositories"), builder.path("repositories/org/loop"))
    snap = builder.scan()
    assert list(snap.repositories) == ["org/app"]
    assert sorted(kinds(snap)) == [
        (Kind.SYMLINK, "repositories"),  # the link's target: never deleted
        (Kind.SYMLINK, "repositories/org/loop"),
        (Kind.UNREADABLE, "repositories/org/loop"),
    ]


def test_dangling_symlink_serves_nothing(builder: StoreBuilder, tmp_path: Path) -> None:
    builder.image("app", tags=["v1"])
    os.symlink(tmp_path / "nowhere", builder.path("repositories/gone"))
    snap = builder.scan()
    assert list(snap.repositories) == ["app"]
    assert kinds(snap) == [(Kind.SYMLINK, "repositories/gone")]


@pytest.mark.parametrize("top", ["repositories", "blobs"])
def test_symlinked_top_level_folder_is_read_through(
    builder: StoreBuilder, tmp_path: Path, top: str
) -> None:
    builder.image("app", tags=["v1"])
    outside = tmp_path / "outside"
    shutil.move(builder.path(top), outside)
    os.symlink(outside, builder.path(top))
    snap = builder.scan()
    assert list(snap.repositories) == ["app"]
    assert len(snap.manifests) == 1
    assert snap.blobs_complete
    f = only(snap, Kind.SYMLINK)
    assert (f.path, f.blocks_gc) == (top, True)


def test_symlinks_inside_a_repository(app: StoreBuilder, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_bytes(app.img.digest.encode())  # type: ignore[attr-defined]
    d, rel = _revision(app)
    app.path(rel).unlink()
    os.symlink(target / "file", app.path(rel))
    tags = app.path("repositories/app/_manifests/tags")
    shutil.move(tags / "v1", target / "v1")
    os.symlink(target / "v1", tags / "v1")
    os.symlink(target, app.path("repositories/app/_uploads"))
    snap = app.scan()
    got = {(k, p) for k, p in kinds(snap)}
    assert (Kind.SYMLINK, rel) in got
    assert (Kind.SYMLINK, "repositories/app/_manifests/tags/v1") in got
    assert (Kind.SYMLINK, "repositories/app/_uploads") in got
    # Read through, as the registry does.
    repo = snap.repositories["app"]
    assert repo.revisions[d].digest == d
    assert repo.tags["v1"].current is not None and repo.tags["v1"].current.digest == d
    assert all(f.blocks_gc for f in snap.findings if f.kind is Kind.SYMLINK)


@pytest.mark.parametrize("mode", [ScanMode.FULL, ScanMode.FAST, ScanMode.LAZY])
def test_symlinked_tag_current_folder_is_reported(
    builder: StoreBuilder, tmp_path: Path, mode: ScanMode
) -> None:
    """A tag's ``current`` folder that is a symbolic link (outside the store, or to another
    tag's ``current``) is read through and reported in every mode, with a target inside the
    store: the fast path reads ``current/link`` by path, which alone would follow it unseen
    (and a retention run would then remove the tag folder a kept tag is served through)."""
    img = builder.image("app", tags=["v1", "v2", "v3"])
    tags = builder.path("repositories/app/_manifests/tags")
    shutil.move(tags / "v1" / "current", tmp_path / "current")
    os.symlink(tmp_path / "current", tags / "v1" / "current")
    shutil.rmtree(tags / "v2" / "current")
    os.symlink("../v3/current", tags / "v2" / "current")
    snap = scan(LocalStorage(builder.v2), mode=mode)
    got = sorted(kinds(snap))
    assert got == [
        (Kind.SYMLINK, "repositories/app/_manifests/tags/v1/current"),
        (Kind.SYMLINK, "repositories/app/_manifests/tags/v2/current"),
        (Kind.SYMLINK, "repositories/app/_manifests/tags/v3/current"),  # the target
    ]
    assert all(f.blocks_gc for f in snap.findings)
    for tag in ("v1", "v2", "v3"):
        cur = snap.repositories["app"].tags[tag].current
        assert cur is not None and cur.digest == img.digest, tag


@pytest.mark.parametrize("mode", [ScanMode.FULL, ScanMode.LAZY], ids=["thorough", "fast"])
def test_symlinked_blob_data_is_a_stored_blob(
    builder: StoreBuilder, tmp_path: Path, mode: ScanMode
) -> None:
    img = builder.image("app", tags=["v1"])
    folder = builder.path(f"blobs/sha256/{hexof(img.digest)[:2]}/{hexof(img.digest)}")
    shutil.move(folder / "data", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", folder / "data")
    snap = scan(LocalStorage(builder.v2), mode=mode)
    assert img.digest in snap.manifests  # read through the link
    assert kinds(snap).count((Kind.SYMLINK, f"{folder.relative_to(builder.v2)}/data")) == 1
    assert Kind.MISSING_DATA not in {k for k, _ in kinds(snap)}


def test_symlinked_blob_data_pointing_nowhere(builder: StoreBuilder, tmp_path: Path) -> None:
    d = sha256(b"payload")
    folder = builder.path(f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}")
    folder.mkdir(parents=True)
    os.symlink(tmp_path / "nowhere", folder / "data")
    snap = builder.scan()
    assert sorted(kinds(snap)) == sorted(
        [
            (Kind.SYMLINK, f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data"),
            (Kind.MISSING_DATA, f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}"),
        ]
    )
    assert d not in snap.blobs


# --- permission errors --------------------------------------------------------------------------


def test_unreadable_revisions_folder(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    rel = "repositories/app/_manifests/revisions/sha256"
    deny(app.path(rel))
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert (f.path, f.repository, f.blocks_gc) == (rel, "app", True)
    assert snap.repositories["app"].incomplete


def test_unreadable_revision_digest_folder(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    d, rel = _revision(app)
    deny(app.path(rel).parent)
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert f.blocks_gc
    repo = snap.repositories["app"]
    assert repo.incomplete
    assert repo.revisions[d].digest is None  # known to exist, content unknown


def test_unreadable_link_file(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    d, rel = _revision(app)
    deny(app.path(rel))
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert (f.path, f.digest, f.blocks_gc) == (rel, d, True)
    assert "reading link" in f.message
    assert snap.repositories["app"].revisions[d].digest is None


def test_unreadable_tags(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    deny(app.path("repositories/app/_manifests/tags/v1"))
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert (f.path, f.blocks_gc) == ("repositories/app/_manifests/tags/v1", True)
    assert snap.repositories["app"].incomplete
    assert snap.repositories["app"].tags["v1"].current is None


def test_unreadable_layers_folder(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    deny(app.path("repositories/app/_layers"))
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert f.path == "repositories/app/_layers"
    assert snap.repositories["app"].incomplete


def test_unreadable_repositories_folder(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    deny(app.path("repositories"))
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert (f.path, f.blocks_gc) == ("repositories", True)
    assert snap.repositories == {}


def test_unreadable_blob_prefix(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    d = app.lay.digest  # type: ignore[attr-defined]
    prefix = f"blobs/sha256/{hexof(d)[:2]}"
    deny(app.path(prefix))
    snap = app.scan()
    f = only(snap, Kind.UNREADABLE)
    assert (f.path, f.blocks_gc) == (prefix, True)
    assert not snap.blobs_complete
    assert d not in snap.blobs


def test_unreadable_manifest_blob(app: StoreBuilder, deny: Callable[[Path], None]) -> None:
    d, _ = _revision(app)
    data = f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data"
    deny(app.path(data))
    snap = app.scan()
    f = only(snap, Kind.UNPARSEABLE_MANIFEST)
    assert (f.path, f.digest, f.repository, f.blocks_gc) == (data, d, "app", True)
    assert "cannot read manifest" in f.message
    assert d in snap.unparseable


def test_unreadable_upload(builder: StoreBuilder, deny: Callable[[Path], None]) -> None:
    uid = builder.upload("app", started_at="2020-01-01T00:00:00Z")
    deny(builder.path(f"repositories/app/_uploads/{uid}"))
    snap = builder.scan()
    assert {(f.kind, f.blocks_gc) for f in snap.findings} >= {(Kind.UNREADABLE, False)}
    assert not any(f.blocks_gc for f in snap.findings)


# --- manifests ------------------------------------------------------------------------------------


def test_unparseable_manifest(builder: StoreBuilder) -> None:
    d = builder.push_manifest("app", b'{"schemaVersion": 2, "mediaType": "text/plain"}', ["v1"])
    snap = builder.scan()
    f = only(snap, Kind.UNPARSEABLE_MANIFEST)
    assert f.path == f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data"
    assert (f.digest, f.repository, f.blocks_gc) == (d, "app", True)
    assert "unrecognized manifest media type" in snap.unparseable[d]
    assert d not in snap.manifests


def test_revision_whose_blob_is_missing_is_not_a_scan_finding(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    builder.remove_blob(img.digest)
    snap = builder.scan()
    assert snap.findings == []  # dangling references are the graph's to report
    assert img.digest not in snap.manifests
    assert img.digest not in snap.unparseable


def test_index_children_are_read_even_when_not_revisions(builder: StoreBuilder) -> None:
    img = builder.image("app")
    idx = builder.index("app", children=[img], tags=["v1"])
    # Drop the child's revision link: it is then reachable only through the index.
    shutil.rmtree(builder.path(builder.revision_link("app", img.digest)).parent)
    snap = builder.scan()
    assert set(snap.manifests) == {idx.digest, img.digest}


def test_a_manifest_shared_by_repositories_is_read_once(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = builder.layer("shared")
    a = builder.image("a", tags=["v1"], layers=[layer], label="same")
    b = builder.image("b", tags=["v1"], layers=[layer], label="same")
    assert a.digest == b.digest
    reads: list[str] = []
    orig = LocalStorage.read_file

    def spy(self: LocalStorage, rel: str, limit: int, **kw: Any) -> tuple[bytes, int, float]:
        reads.append(rel)
        return orig(self, rel, limit, **kw)

    monkeypatch.setattr(LocalStorage, "read_file", spy)
    snap = builder.scan()
    data = f"blobs/sha256/{hexof(a.digest)[:2]}/{hexof(a.digest)}/data"
    assert reads.count(data) == 1
    assert set(snap.manifests) == {a.digest}


# --- uploads --------------------------------------------------------------------------------------


def test_uploads_are_parsed(builder: StoreBuilder) -> None:
    uid = builder.upload("app", started_at="2020-01-02T03:04:05Z", data=b"12345", mtime=1.6e9)
    nano = builder.upload("app", started_at="2021-06-07T08:09:10.123456789Z")
    snap = builder.scan()
    assert snap.findings == []
    ups = snap.repositories["app"].uploads
    assert ups[uid].uuid == uid
    assert ups[uid].started_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ups[uid].size == 5
    assert ups[uid].mtime == 1.6e9
    assert ups[nano].started_at == datetime(2021, 6, 7, 8, 9, 10, 123456, tzinfo=UTC)


def test_finished_upload_leaves_an_empty_uploads_folder(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    builder.finished_upload("app")
    snap = builder.scan()
    assert snap.findings == []
    assert snap.repositories["app"].has_uploads
    assert snap.repositories["app"].uploads == {}
    assert "repositories/app/_uploads" in snap.empty_dirs


@pytest.mark.parametrize("text", ["yesterday", "", "2020-13-01T00:00:00Z", "\xff"])
def test_bad_startedat(builder: StoreBuilder, text: str) -> None:
    uid = builder.upload("app", started_at="x")
    rel = f"repositories/app/_uploads/{uid}/startedat"
    builder.write(rel, text.encode("latin-1"))
    snap = builder.scan()
    f = only(snap, Kind.BAD_UPLOAD)
    assert (f.path, f.repository, f.blocks_gc) == (rel, "app", False)
    assert snap.repositories["app"].uploads[uid].started_at is None


def test_upload_without_startedat_is_an_upload_not_a_problem(builder: StoreBuilder) -> None:
    """A cancelled upload keeps only ``hashstates/...`` (2.8.2 and v3 alike)."""
    uid = builder.upload("app", startedat_file=False, mtime=1.6e9)
    cancelled = f"repositories/app/_uploads/{uid}"
    builder.path(f"{cancelled}/data").unlink()
    snap = builder.scan()
    assert snap.findings == []
    up = snap.repositories["app"].uploads[uid]
    assert (up.started_at, up.size, up.mtime) == (None, 0, 1.6e9)
    assert (up.started, up.started_from) == (1.6e9, "mtime")
    assert not [p for p in snap.empty_dirs if p.startswith(cancelled)]


def test_upload_folder_without_files_is_an_empty_folder(builder: StoreBuilder) -> None:
    """What an interrupted removal leaves: nothing to resume (the registry answers 404 for the
    id), no evidence of an upload at work; gc removes it as an empty folder."""
    builder.image("app", tags=["v1"])
    builder.path("repositories/app/_uploads/bare").mkdir(parents=True)
    builder.path("repositories/app/_uploads/nested/hashstates/sha256").mkdir(parents=True)
    snap = builder.scan()
    assert snap.findings == []
    assert snap.repositories["app"].uploads == {}
    assert {
        "repositories/app/_uploads/bare",
        "repositories/app/_uploads/nested/hashstates/sha256",
    } <= set(snap.empty_dirs)


def test_empty_folders_inside_an_upload_are_part_of_it(builder: StoreBuilder) -> None:
    uid = builder.upload("app")
    builder.path(f"repositories/app/_uploads/{uid}/hashstates/sha512").mkdir()
    snap = builder.scan()
    assert uid in snap.repositories["app"].uploads
    assert not [p for p in snap.empty_dirs if "/_uploads/" in p]


def test_uuid7_upload_ids_carry_their_start(builder: StoreBuilder) -> None:
    v7 = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"  # RFC 9562's example: 2022-02-22T19:22:22Z
    uid = builder.upload("app", uuid=v7, startedat_file=False)
    up = builder.scan().repositories["app"].uploads[uid]
    assert (up.started_from, up.started) == ("upload_id", 1645557742.0)
    # startedat, when there is one, is what counts.
    other = v7.replace("8f", "90")
    with_file = builder.upload("app", uuid=other, started_at="2020-01-02T03:04:05Z")
    up = builder.scan().repositories["app"].uploads[with_file]
    assert (up.started_from, up.started) == ("startedat", 1577934245.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-01-02T03:04:05Z", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2020-01-02T03:04:05.5Z", datetime(2020, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2020-01-02T03:04:05.123456789Z", datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2020-01-02T03:04:05.000000001Z", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            "2020-01-02T03:04:05.123456789+02:00",
            datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2020-01-02T03:04:05", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2020-01-02T03:04:05Z\n", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_started_at(text: str, expected: datetime) -> None:
    got = parse_started_at(text)
    assert got == expected
    assert got.tzinfo is not None


@pytest.mark.parametrize("text", ["", "now", "2020-01-02T03:04:05Zjunk", "2020-02-30T00:00:00Z"])
def test_parse_started_at_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_started_at(text)


# --- blocks_gc ----------------------------------------------------------------------------------


def test_which_findings_block_gc(builder: StoreBuilder, tmp_path: Path) -> None:
    img = builder.image("app", tags=["v1"])
    builder.write(builder.revision_link("app", img.digest), b"")  # EMPTY_LINK revision: blocks
    builder.push_manifest("app", b"{}")  # UNPARSEABLE_MANIFEST: blocks
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", builder.path("repositories/link"))  # SYMLINK: blocks
    builder.write("repositories/app/_layers/x", b"")  # UNKNOWN_ENTRY: does not
    builder.orphan_blob(b"a")
    builder.write(f"blobs/sha256/{hexof(sha256(b'b'))[:2]}/{hexof(sha256(b'b'))}/data", b"")
    bad = builder.upload("app")
    builder.write(f"repositories/app/_uploads/{bad}/startedat", b"yesterday")  # BAD_UPLOAD: not
    builder.image("Bad", tags=["v1"])  # BAD_NAME: does not
    snap = builder.scan()
    blocking = {f.kind: f.blocks_gc for f in snap.findings}
    assert blocking == {
        Kind.EMPTY_LINK: True,
        Kind.UNPARSEABLE_MANIFEST: True,
        Kind.SYMLINK: True,
        Kind.UNKNOWN_ENTRY: False,
        Kind.EMPTY_BLOB: False,
        Kind.BAD_UPLOAD: False,
        Kind.BAD_NAME: False,
    }
    assert {f.kind for f in snap.blocking} == {
        Kind.EMPTY_LINK,
        Kind.UNPARSEABLE_MANIFEST,
        Kind.SYMLINK,
    }


def test_finding_as_dict(builder: StoreBuilder) -> None:
    f = Finding(Kind.EMPTY_LINK, "p", "m", D, "app", True)
    assert f.as_dict() == {
        "kind": "empty_link",
        "path": "p",
        "message": "m",
        "digest": D,
        "repository": "app",
        "blocks_gc": True,
    }
    assert Finding(Kind.SYMLINK, "p", "m").as_dict() == {
        "kind": "symlink",
        "path": "p",
        "message": "m",
        "blocks_gc": False,
    }


# --- iter_links -----------------------------------------------------------------------------------


def test_iter_links(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    snap = builder.scan()
    got = sorted(
        (role, key, link.digest) for role, key, link in iter_links(snap.repositories["app"])
    )
    layers = sorted(img.blob_digests - {img.digest})
    assert got == sorted(
        [("layer", d, d) for d in layers]
        + [
            ("revision", img.digest, img.digest),
            ("tag", "v1", img.digest),
            ("tag_index", img.digest, img.digest),
        ]
    )


@pytest.mark.parametrize("mode", list(ScanMode))
def test_forked_shards_give_the_same_snapshot(
    tmp_path: Path, mode: ScanMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes (forked shards, results as tuples) see exactly what one process sees."""
    import realreg as rr

    from regfs.parallel.tuning import Tuning
    from regfs.scan import scan
    from regfs.storage.local import LocalStorage, resolve_root

    root = rr.extract_fixture("damaged", tmp_path / "r")
    for i in range(70):  # enough entries for the sharded path to be taken
        (root / "docker/registry/v2/repositories" / f"extra{i}" / "_uploads").mkdir(parents=True)
    st = LocalStorage(resolve_root(root))
    # Small manifest chunks, so the manifest phase is shared with the helper too.
    monkeypatch.setattr("regfs.scan.loader.MANIFEST_CHUNK", 2)
    # Count the helpers forked: the pool quietly runs everything in this process when it
    # cannot fork safely (another thread alive), and the comparison below would still hold.
    import multiprocessing.context

    started: list[int] = []
    real_start = multiprocessing.context.ForkProcess.start

    def counting_start(self: multiprocessing.context.ForkProcess) -> None:
        started.append(os.getpid())
        real_start(self)

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", counting_start)
    one = scan(st, workers=1, tuning=Tuning(processes=1), mode=mode)
    assert started == []  # one process: nothing forked
    two = scan(st, workers=1, tuning=Tuning(processes=2), mode=mode)
    assert started, "no helper was forked: the sharded path was not taken"
    assert one.mode is two.mode is mode
    assert one.lazy == two.lazy == (mode in (ScanMode.LAZY, ScanMode.TAG_NAMES))
    assert one.blobs == two.blobs
    assert one.repositories == two.repositories
    assert one.manifests == two.manifests
    assert one.unparseable == two.unparseable
    assert one.findings == two.findings
    assert one.empty_dirs == two.empty_dirs
    assert one.blobs_without_data == two.blobs_without_data


# --- the lazy fast scan and its refresher ------------------------------------------------------


def test_lazy_scan_knows_blobs_and_layer_links_by_name_until_refreshed(
    builder: StoreBuilder,
) -> None:
    from regfs.model.snapshot import LAZY_BLOB, SizeUnknown
    from regfs.scan import Refresher

    base = builder.layer("base")
    img = builder.image("app", tags=["v1"], layers=[base])
    orphan = builder.orphan_blob(b"orphan bytes")
    snap = builder.scan(mode=ScanMode.LAZY)
    assert snap.lazy
    assert snap.blobs[orphan.digest] is LAZY_BLOB
    layer_link = snap.repositories["app"].layers[base.digest]
    assert layer_link.not_read and not layer_link.unreadable
    assert (layer_link.digest, layer_link.mtime) == (base.digest, 0.0)
    assert not snap.blobs[orphan.digest].stated
    with pytest.raises(SizeUnknown):
        _ = snap.blobs[orphan.digest].known_size
    # Manifests were read all the same: the graph is complete.
    assert set(snap.manifests) == {img.digest}

    refresh = Refresher(builder.storage(), snap)
    refresh.blobs([orphan.digest])
    refresh.layer_links([("app", base.digest)])
    st = os.lstat(
        builder.path(f"blobs/sha256/{hexof(orphan.digest)[:2]}/{hexof(orphan.digest)}/data")
    )
    assert (snap.blobs[orphan.digest].size, snap.blobs[orphan.digest].mtime) == (
        st.st_size,
        st.st_mtime,
    )
    assert snap.repositories["app"].layers[base.digest].mtime > 0.0
    assert not snap.repositories["app"].layers[base.digest].not_read
    # The shared placeholder was replaced, never mutated.
    assert (LAZY_BLOB.size, LAZY_BLOB.mtime) == (None, 0.0)
    assert snap.blobs[base.digest] is LAZY_BLOB  # not asked about: still by name only
    assert snap.findings == []


def test_refresher_drops_what_vanished_since_the_lazy_scan(builder: StoreBuilder) -> None:
    from regfs.scan import Refresher

    base = builder.layer("base")
    builder.image("app", tags=["v1"], layers=[base])
    orphan = builder.orphan_blob(b"gone soon")
    snap = builder.scan(mode=ScanMode.LAZY)
    folder = f"blobs/sha256/{hexof(orphan.digest)[:2]}/{hexof(orphan.digest)}"
    os.unlink(builder.path(f"{folder}/data"))
    shutil.rmtree(builder.path(f"repositories/app/_layers/sha256/{hexof(base.digest)}"))

    refresh = Refresher(builder.storage(), snap)
    refresh.blobs([orphan.digest])
    refresh.layer_links([("app", base.digest)])
    assert orphan.digest not in snap.blobs
    assert orphan.digest in snap.blobs_without_data
    assert base.digest not in snap.repositories["app"].layers
    assert (Kind.MISSING_DATA, folder) in kinds(snap)


def test_thorough_scans_ignore_the_refresher(builder: StoreBuilder) -> None:
    from regfs.scan import Refresher

    orphan = builder.orphan_blob(b"x")
    snap = builder.scan()
    before = snap.blobs[orphan.digest]
    Refresher(builder.storage(), snap).blobs([orphan.digest])
    assert snap.blobs[orphan.digest] is before


def test_manifest_chunks_survive_the_trip_from_a_helper(builder: StoreBuilder) -> None:
    """What a forked helper sends for a chunk of manifests unpacks to the same results."""
    from regfs.scan.loader import read_manifest as _read_manifest
    from regfs.scan.shard import pack_read as _pack_read
    from regfs.scan.shard import unpack_read as _unpack_read

    base = builder.layer("base")
    img = builder.image("app", tags=["v1"], layers=[base])
    idx = builder.index("app", children=[img], tags=["multi"], platforms=["linux/amd64"])
    bad = builder.push_manifest("app", b"{}")
    storage = builder.storage()
    chunk = [img.digest, idx.digest, bad, "sha256:" + "0" * 64]
    results = [(d, *_read_manifest(storage, d)) for d in chunk]
    assert results[2][1] is not None and isinstance(results[2][1], str)  # unparseable: message
    assert results[3][1] is None  # no data
    assert _unpack_read(_pack_read(results)) == results


def test_a_names_only_scan_marks_tags_not_read_rather_than_unreadable(
    builder: StoreBuilder,
) -> None:
    img = builder.image("app", tags=["v1"], layers=[builder.layer("base")])
    names = builder.scan(mode=ScanMode.TAG_NAMES)
    cur = names.repositories["app"].tags["v1"].current
    assert cur is not None and cur.not_read and not cur.unreadable
    assert names.mode is ScanMode.TAG_NAMES
    full = builder.scan()
    cur = full.repositories["app"].tags["v1"].current
    assert cur is not None and not cur.not_read and cur.digest == img.digest
    history = builder.scan(mode=ScanMode.LAZY).repositories["app"].tags["v1"].index
    assert history[img.digest].not_read  # listed by name: the executor re-checks its content


def test_the_scan_reads_storage_only_through_its_read_methods() -> None:
    """Every storage call in regfs/scan is one of the read methods any backend provides (so a
    Storage protocol implementation slots in), and no scan module imports os or io."""
    import ast
    from pathlib import Path

    import regfs.scan

    allowed = {
        "list_dir",
        "list_kinds",
        "read_file",
        "lstat",
        "stat",
        "exists",
        "realpath",
        "location",
        "prefers_listing",
    }
    for path in sorted(Path(regfs.scan.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        used = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name | ast.Attribute)
            and (getattr(n.value, "id", None) or getattr(n.value, "attr", None)) == "storage"
        }
        assert used <= allowed, (path.name, used - allowed)
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not imported & {"os", "io", "shutil"}, path.name
