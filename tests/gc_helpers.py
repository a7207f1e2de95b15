"""Helpers shared by the gc test modules: tree fingerprints, aging, a healthy-graph assertion."""

from __future__ import annotations

import os
import time
from pathlib import Path

from builder import StoreBuilder

from regfs.graph.mark import Mode, mark
from regfs.scan import Snapshot, scan
from regfs.storage.local import LocalStorage

OLD = time.time() - 30 * 86400


def age_tree(root: Path, when: float = OLD) -> None:
    """Back-date every file and folder below ``root`` (links not followed)."""
    for cur, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(cur, name), (when, when), follow_symlinks=False)


def fingerprint(root: Path) -> dict[str, object]:
    """Every path below root except regfs's own state: file bytes, or 'dir' / 'symlink'."""
    out: dict[str, object] = {}
    for cur, dirs, files in os.walk(root):
        rel = os.path.relpath(cur, root)
        if rel.split(os.sep)[0] == ".regfs":
            continue
        for d in dirs:
            if d != ".regfs" or rel != ".":
                p = os.path.join(cur, d)
                out[os.path.relpath(p, root)] = "symlink" if os.path.islink(p) else "dir"
        for f in files:
            p = os.path.join(cur, f)
            out[os.path.relpath(p, root)] = "symlink" if os.path.islink(p) else Path(p).read_bytes()
    return out


def rescan(b: StoreBuilder) -> Snapshot:
    return scan(LocalStorage(b.v2), workers=2)


def assert_whole(snap: Snapshot) -> None:
    """No dangling reference anywhere and no problem: every surviving image is whole."""
    marks = mark(snap, Mode.DEFAULT)
    assert marks.dangling == []
    assert [f for f in snap.findings if f.blocks_gc] == []
