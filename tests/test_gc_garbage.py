"""gc planning in two pure phases around the run's refresh: no I/O and no change to the
snapshot while planning (a storage that raises on any call during the pure phases, and a
deep copy of the snapshot compared after)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder
from gc_helpers import age_tree
from test_storage_memory_gc import build, to_memory

from regfs.gc.compose import compose
from regfs.gc.garbage import gc_candidates, gc_part, newest_links
from regfs.gc.plan import GcOptions, GcPlan, PartKind
from regfs.gc.refresh import build_plan, refreshed
from regfs.gc.rm import rm_part, without
from regfs.gc.steps import Step
from regfs.gc.targets import parse_target, select
from regfs.model.snapshot import iter_links
from regfs.scan import Refresher, ScanMode, scan
from regfs.storage.memory import MemoryStorage

NOW = 2_000_000_000.0


class Tripwire:
    """A storage that answers through ``inner`` until armed; armed, any call raises."""

    def __init__(self, inner: MemoryStorage) -> None:
        self.inner = inner
        self.armed = False
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if not callable(value):
            return value

        def call(*args: Any, **kw: Any) -> Any:
            if self.armed:
                raise AssertionError(f"storage.{name} called while planning")
            self.calls += 1
            return value(*args, **kw)

        return call


@pytest.fixture
def storage(tmp_path: Path) -> Tripwire:
    b = StoreBuilder(tmp_path / "t")
    build(b)
    b.image("young", tags=["t"], layers=[b.layer("young")])
    age_tree(b.root)
    return Tripwire(to_memory(b.v2))


@pytest.mark.parametrize("untagged", [False, True])
def test_pure_phases_touch_neither_storage_nor_snapshot(storage: Tripwire, untagged: bool) -> None:
    mode = ScanMode.LAZY if untagged else ScanMode.TAG_NAMES
    snap = scan(storage, mode=mode, workers=1)
    frozen = copy.deepcopy(snap)
    opts = GcOptions(delete_untagged=untagged, min_age=0)
    storage.armed = True
    cands = gc_candidates(snap, opts, now=NOW)
    storage.armed = False
    assert cands.blobs and snap == frozen
    before = storage.calls
    fresh = refreshed(storage, snap, cands)
    assert storage.calls > before, "the run's refresh goes through the storage"
    assert snap == frozen, "the refresh works on a copy"
    assert fresh is not snap and all(fresh.blobs[d].stated for d in cands.blobs if d in fresh.blobs)
    fresh_frozen = copy.deepcopy(fresh)
    storage.armed = True
    part = gc_part(fresh, cands)
    plan = compose(fresh, GcPlan("r", str(snap.v2), opts, NOW, [], [], []), [part])
    storage.armed = False
    assert fresh == fresh_frozen and snap == frozen
    assert {a.step for a in plan.actions} >= {Step.BLOB, Step.LAYER_LINK, Step.FOLDER}
    assert set(plan.origin.values()) == {PartKind.GC, PartKind.FOLDERS}
    # The same plan as the one-call form (which refreshes the same way).
    whole = build_plan(snap, opts, now=NOW, refresh=Refresher(storage, snap))
    assert [(a.step, a.path) for a in whole.actions] == [(a.step, a.path) for a in plan.actions]
    assert snap == frozen


def test_removal_and_its_gc_are_planned_without_io(storage: Tripwire) -> None:
    snap = scan(storage, mode=ScanMode.LAZY, workers=1)
    frozen = copy.deepcopy(snap)
    opts = GcOptions(min_age=0)
    storage.armed = True
    sel = select(snap, [parse_target("app")])
    part = rm_part(snap, sel, min_age=0, now=NOW)
    after = without(snap, part)
    cands = gc_candidates(after, opts, now=NOW)
    storage.armed = False
    fresh = refreshed(storage, snap, cands)
    storage.armed = True
    gc = gc_part(without(fresh, part), cands)
    plan = compose(fresh, GcPlan("r", str(snap.v2), opts, NOW, [], [], []), [part, gc])
    storage.armed = False
    assert snap == frozen
    assert {PartKind.RM, PartKind.GC, PartKind.FOLDERS} <= set(plan.origin.values())
    assert plan.by_step(Step.BLOB), "the repository's own blobs go with it"


def _newest_by_walk(snap: Any, wanted: set[str]) -> dict[str, float]:
    """The rule spelled out link by link: every link naming a wanted digest, by its folder
    (not a tag's, whose folder is its name) or by its content."""
    out: dict[str, float] = {}
    for repo in snap.repositories.values():
        for role, key, link in iter_links(repo):
            for d in {key if role != "tag" else None, link.digest}:
                if d is not None and d in wanted and link.mtime > out.get(d, 0.0):
                    out[d] = link.mtime
    return out


def test_newest_links_is_the_newest_link_naming_each_digest(builder: StoreBuilder) -> None:
    import os

    img = builder.image("app", tags=["v1", "v2"])
    other = builder.image("lib", tags=["v1"])
    layer = img.layers[0].digest
    # A link whose content names another digest than its folder (damage, or a mount).
    path = builder.write_link(
        f"repositories/lib/_layers/sha256/{layer.split(':')[1]}/link", other.digest
    )
    os.utime(path, (5e8, 5e8))
    for n, p in enumerate(sorted(builder.v2.rglob("link"))):
        if p != path:
            os.utime(p, (1e9 + n, 1e9 + n))
    snap = builder.scan()
    wanted = {img.digest, other.digest, layer, *img.blob_digests, *other.blob_digests}
    assert newest_links(snap, wanted) == _newest_by_walk(snap, wanted)
    assert newest_links(snap, {layer}) == _newest_by_walk(snap, {layer})
    assert newest_links(snap, set()) == {}
