"""regfs.scan.codec: scan results survive the trip through plain tuples unchanged."""

from __future__ import annotations

import pickle
from pathlib import Path

import realreg as rr

from regfs.scan import codec, scan
from regfs.storage.local import LocalStorage, resolve_root


def test_round_trip_of_a_real_fixture(tmp_path: Path) -> None:
    root = rr.extract_fixture("damaged", tmp_path / "r")
    snap = scan(LocalStorage(resolve_root(root)), workers=1)
    for repo in snap.repositories.values():
        packed = pickle.loads(pickle.dumps(codec.pack_repo(repo)))
        assert codec.unpack_repo(packed) == repo
    assert codec.unpack_blobs(codec.pack_blobs(snap.blobs)) == snap.blobs
    for d, m in snap.manifests.items():
        assert codec.unpack_manifest(codec.pack_manifest(m)) == m, d
    for value in ("unparseable: x", None):
        assert codec.unpack_manifest(codec.pack_manifest(value)) == value
    assert codec.unpack_findings(codec.pack_findings(snap.findings)) == snap.findings
    assert snap.findings  # the damaged tree has findings of many kinds
