"""Plans compose: parts from a removal and gc become one plan (one run id), folders planned
once at the end over every part's actions, symbolic links kept off, sorted once."""

from __future__ import annotations

from pathlib import Path

from builder import StoreBuilder
from gc_helpers import age_tree
from test_storage_memory_gc import build

from regfs.gc.compose import compose, part_of
from regfs.gc.folders import folder_actions
from regfs.gc.garbage import gc_candidates, gc_part
from regfs.gc.plan import GcOptions, GcPlan, Part, PartKind
from regfs.gc.refresh import refreshed
from regfs.gc.rm import rm_part, without
from regfs.gc.steps import Action, Step, step_rank
from regfs.gc.targets import parse_target, select
from regfs.layout import revision_dir
from regfs.model.snapshot import Snapshot
from regfs.scan import ScanMode, scan
from regfs.storage.local import LocalStorage

NOW = 2_000_000_000.0
OPTS = GcOptions(min_age=0)


def _store(tmp_path: Path) -> tuple[LocalStorage, Snapshot]:
    b = StoreBuilder(tmp_path / "t")
    build(b)
    (b.v2 / "repositories/multi/_uploads").mkdir(parents=True)  # already empty
    age_tree(b.root)
    storage = LocalStorage(str(b.v2))
    return storage, scan(storage, mode=ScanMode.LAZY, workers=1)


def _parts(storage: LocalStorage, snap: Snapshot, target: str) -> tuple[Snapshot, list[Part]]:
    rm = rm_part(snap, select(snap, [parse_target(target)]), min_age=0, now=NOW)
    cands = gc_candidates(without(snap, rm), OPTS, now=NOW)
    fresh = refreshed(storage, snap, cands)
    return fresh, [rm, gc_part(without(fresh, rm), cands)]


def _plan() -> GcPlan:
    return GcPlan("20330518T033320Z-0123abcd", "v2", OPTS, NOW, [], [], [])


def test_parts_become_one_plan(tmp_path: Path) -> None:
    storage, snap = _store(tmp_path)
    fresh, parts = _parts(storage, snap, "app:v1")
    rm, gc = parts
    plan = compose(fresh, _plan(), parts)
    ranks = [step_rank(a.step) for a in plan.actions]
    assert ranks == sorted(ranks)
    paths = [a.path for a in plan.actions]
    assert len(paths) == len(set(paths)), "nothing planned twice"
    assert set(plan.origin) == set(paths)
    assert [plan.actions[i] for i in part_of(plan, {PartKind.RM})] == [
        a for a in plan.actions if a in rm.actions
    ]
    assert {a.path for a in gc.actions} == {
        plan.actions[i].path for i in part_of(plan, {PartKind.GC})
    }
    for step in Step:  # within a step: the removal's actions before gc's
        kinds = [plan.origin[a.path] for a in plan.by_step(step)]
        assert kinds == sorted(kinds, key=[PartKind.RM, PartKind.GC, PartKind.FOLDERS].index)
    # Folders: once, last, from every part's actions together.
    folders = plan.by_step(Step.FOLDER)
    others = [a for a in plan.actions if a.step is not Step.FOLDER]
    assert folders == folder_actions(fresh, others, None)
    assert all(plan.origin[f.path] is PartKind.FOLDERS for f in folders)
    assert "repositories/multi/_uploads" in {f.path for f in folders}  # gc tidies everywhere
    assert plan.manifests == rm.manifests + gc.manifests


def test_a_removal_alone_tidies_only_its_own_repositories(tmp_path: Path) -> None:
    storage, snap = _store(tmp_path)
    _fresh, (rm, _gc) = _parts(storage, snap, "gone/repo")
    plan = compose(snap, _plan(), [rm])
    assert rm.scope == frozenset({"gone/repo"})
    assert "repositories/multi/_uploads" not in {a.path for a in plan.by_step(Step.FOLDER)}
    assert set(plan.origin.values()) <= {PartKind.RM, PartKind.FOLDERS}


def test_a_path_two_parts_plan_is_planned_once(tmp_path: Path) -> None:
    _storage, snap = _store(tmp_path)
    repo = snap.repositories["app"]
    d = next(iter(repo.revisions))
    a = Action(Step.REVISION, revision_dir("app", d), "app", d)
    first = Part(PartKind.RM, actions=[a], scope=frozenset({"app"}))
    second = Part(PartKind.GC, actions=[a])
    plan = compose(snap, _plan(), [first, second])
    assert plan.by_step(Step.REVISION) == [a] and plan.origin[a.path] is PartKind.RM
