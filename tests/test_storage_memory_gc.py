"""The in-memory backend runs the real pipeline: a tree copied into memory scans, plans and
collects exactly as the same tree on disk (fast unit tests can use it for the executor)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from builder import StoreBuilder
from gc_helpers import age_tree

from regfs.gc.execute import Executor
from regfs.gc.plan import GcOptions
from regfs.gc.refresh import build_plan
from regfs.scan import Refresher, ScanMode, scan
from regfs.storage.local import LocalStorage
from regfs.storage.memfs import MemoryFS
from regfs.storage.memory import MemoryStorage

NOW = 2_000_000_000.0


def build(b: StoreBuilder) -> None:
    base = b.layer("base")
    b.image("app", tags=["v1"], layers=[base, b.layer("old")])
    b.image("app", tags=["v1"], layers=[base, b.layer("new")])
    a = b.image("multi", layers=[b.layer("amd")])
    r = b.image("multi", layers=[b.layer("arm")], platform="linux/arm64")
    b.index("multi", children=[a, r], tags=["latest"], platforms=["linux/amd64", "linux/arm64"])
    for i in range(3):
        b.orphan_blob(f"orphan {i}".encode(), repo="app")
    gone = b.image("gone/repo", tags=["t"], layers=[b.layer("gone")])
    b.delete_manifest("gone/repo", gone.digest)
    b.upload("app", started_at="2020-01-02T03:04:05Z")
    age_tree(b.root)


def to_memory(v2: Path) -> MemoryStorage:
    fs = MemoryFS()
    mem = MemoryStorage(fs)
    for cur, dirs, files in os.walk(v2):
        rel = os.path.relpath(cur, v2)
        here = mem.base if rel == "." else f"{mem.base}/{rel}"
        fs.mkdir(here)
        for d in dirs:
            fs.mkdir(f"{here}/{d}")
            fs.node(f"{here}/{d}").mtime = os.lstat(os.path.join(cur, d)).st_mtime
        for f in files:
            p = os.path.join(cur, f)
            with open(p, "rb") as fh:
                fs.write(f"{here}/{f}", fh.read(), mtime=os.lstat(p).st_mtime)
    return mem


def files_of(storage: Any) -> set[tuple[str, str, int]]:
    out: set[tuple[str, str, int]] = set()
    for o in storage.list_prefix(""):
        assert not hasattr(o, "error"), o
        out.add((o.path, o.kind, o.size))
    return out


def test_memory_and_disk_scan_plan_and_collect_alike(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build(b)
    disk = LocalStorage(b.v2)
    mem = to_memory(b.v2)
    assert files_of(mem) == files_of(disk)
    opts = GcOptions(min_age=0, delete_untagged=True)
    plans = []
    for st in (disk, mem):
        snap = scan(st, mode=ScanMode.LAZY, workers=1)
        plan = build_plan(snap, opts, now=NOW, refresh=Refresher(st, snap))
        plans.append((snap, plan))
    (dsnap, dplan), (msnap, mplan) = plans
    assert set(msnap.repositories) == set(dsnap.repositories)
    assert set(msnap.blobs) == set(dsnap.blobs)
    assert [(a.step, a.path) for a in mplan.actions] == [(a.step, a.path) for a in dplan.actions]
    assert len(dplan.actions) > 10
    results = []
    for plan, st in ((dplan, disk), (mplan, mem)):
        out = Executor(plan, journal=None, trash_run=None, storage=st).run()
        results.append([(r.action.path, r.status) for r in out.results])
    assert results[0] == results[1]
    assert all(status == "done" for _path, status in results[0])
    assert files_of(mem) == files_of(disk)
