"""regfs.scan.interpret: link bodies, manifest bytes and blob sizes to model values, no I/O."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import regfs.scan.interpret as interpret
from regfs.model.findings import Kind
from regfs.model.manifest import Manifest
from regfs.model.snapshot import Blob, Link, Repository, ScanMode
from regfs.scan.interpret import (
    EMPTY_SHA256,
    MANIFEST_READ_LIMIT,
    Shard,
    blob_of,
    link_of,
    manifest_of,
    merge,
    snapshot_of,
)
from regfs.scan.out import Out

D = "sha256:" + "ab" * 32
E = "sha256:" + "cd" * 32
REL = "repositories/app/_layers/sha256/" + "ab" * 32 + "/link"


def kinds(out: Out) -> list[Kind]:
    return [f.kind for f in out.findings]


def test_the_interpreter_imports_nothing_that_does_io() -> None:
    """Pure: no os, io, storage or walk import (what it needs is handed to it)."""
    for name in ("interpret", "out"):
        path = Path(interpret.__file__).with_name(f"{name}.py")
        tree = ast.parse(path.read_text())
        mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        bad = {
            m
            for m in mods
            if m.split(".")[0] in {"os", "io", "shutil", "pathlib_io", "stat"}
            or m.startswith(("regfs.storage", "regfs.scan.walk", "regfs.parallel"))
        }
        assert bad == set(), name


def test_a_link_naming_its_folder() -> None:
    out = Out()
    assert link_of(D.encode(), 5.0, REL, D, out, repo="app", blocks=False) == Link(D, 5.0)
    assert out.findings == []


def test_a_link_naming_another_digest_is_reported_and_kept_as_read() -> None:
    out = Out()
    assert link_of(E.encode(), 5.0, REL, D, out, repo="app", blocks=True) == Link(E, 5.0)
    assert kinds(out) == [Kind.LINK_MISMATCH]
    assert out.findings[0].blocks_gc


def test_empty_garbage_and_newline_links() -> None:
    for raw, kind in [
        (b"", Kind.EMPTY_LINK),
        (b"\xff\xfe", Kind.BAD_LINK),
        (b"sha256:zz", Kind.BAD_LINK),
        (D.encode() + b"\n", Kind.BAD_LINK),
        (b"md5:" + b"a" * 32, Kind.UNKNOWN_ALGORITHM),
    ]:
        out = Out()
        link = link_of(raw, 7.0, REL, D, out, repo="app", blocks=False)
        assert link == Link(None, 7.0), raw
        assert kinds(out) == [kind], raw
        assert out.findings[0].path == REL
    out = Out()
    link_of(D.encode() + b"\n", 7.0, REL, D, out, repo="app", blocks=False)
    assert "newline" in out.findings[0].message


@given(st.binary(max_size=80))
def test_any_link_body_gives_a_link_and_at_most_one_finding(raw: bytes) -> None:
    out = Out()
    link = link_of(raw, 1.0, REL, None, out, repo="app", blocks=False)
    assert link.mtime == 1.0
    assert (link.digest is None) == (len(out.findings) == 1)


def test_zero_byte_blobs_are_reported_unless_empty_by_digest() -> None:
    out = Out()
    assert blob_of(D, 0, 3.0, "blobs/x/data", out) == Blob(0, 3.0)
    assert blob_of(EMPTY_SHA256, 0, 3.0, "blobs/y/data", out) == Blob(0, 3.0)
    assert [(f.kind, f.path) for f in out.findings] == [(Kind.EMPTY_BLOB, "blobs/x/data")]


def test_manifest_bytes() -> None:
    body = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
        "layers": [],
    }
    raw = json.dumps(body).encode()
    assert isinstance(manifest_of(raw, len(raw)), Manifest)
    assert manifest_of(b"{}", 2) == manifest_of(b"{}", 2)
    assert str(manifest_of(b"{}", 2)).startswith("unparseable manifest: ")
    assert manifest_of(raw, MANIFEST_READ_LIMIT + 1) == (
        f"manifest larger than {MANIFEST_READ_LIMIT} bytes"
    )


def test_shards_merge_in_order_into_a_snapshot_with_sorted_findings() -> None:
    a, b = Out(), Out()
    a.add(Kind.BAD_NAME, "repositories/z", "z")
    b.add(Kind.MISSING_DATA, "blobs/sha256/ab", "m", digest=D)
    b.empty.append("blobs/sha256/cd")
    shards = [
        Shard([(Repository("z"), a)], []),
        Shard([(Repository("a"), Out())], [({E: Blob(1, 2.0)}, {D}, b, False)]),
    ]
    out = Out()
    merged = merge(shards, out, True)
    assert not merged.blobs_complete
    snap = snapshot_of("/v2", merged, {}, {}, out, scanned_at=9.0, mode=ScanMode.FAST)
    assert list(snap.repositories) == ["a", "z"]
    assert snap.blobs == {E: Blob(1, 2.0)} and snap.blobs_without_data == {D}
    assert [f.path for f in snap.findings] == ["blobs/sha256/ab", "repositories/z"]
    assert snap.empty_dirs == ["blobs/sha256/cd"]
    assert snap.mode is ScanMode.FAST and not snap.lazy and snap.scanned_at == 9.0


def test_scan_modes_say_what_they_read() -> None:
    assert [m for m in ScanMode if m.thorough] == [ScanMode.FULL]
    assert [m for m in ScanMode if m.lazy] == [ScanMode.LAZY, ScanMode.TAG_NAMES]
    assert [m for m in ScanMode if not m.reads_tags] == [ScanMode.TAG_NAMES]
