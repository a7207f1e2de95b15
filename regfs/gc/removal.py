"""One ``regfs rm`` from ROOT to result: lock, scan, select, plan, guard, confirm, execute.

The removal and, with ``--gc``, the gc after it are one plan (:mod:`regfs.gc.compose`): one
run id, one lock, one journal, one ``regfs restore``; a dry run shows exactly the plan a real
run executes. The gc part is planned on the snapshot as the removal leaves it, and the
executor's re-checks (pushed again, re-linked since the scan) cover a removal step that was
skipped; a skipped removal step also stops every gc step planned on it (see
:func:`regfs.gc.execute.Executor`'s ``after_skip``). Without ``--gc``, what gc would then
reclaim is shown as a preview of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Unpack

from regfs.errors import UsageError
from regfs.gc.compose import compose
from regfs.gc.finish import Store
from regfs.gc.garbage import gc_candidates, gc_part
from regfs.gc.outcome import GcOutcome, GcRefused, RunStatus
from regfs.gc.plan import GcOptions, GcPlan, Part, PartKind, new_run_id
from regfs.gc.refresh import build_plan, refreshed
from regfs.gc.rm import RmPart, RmPlan, gc_notes, rm_part, without
from regfs.gc.run import collect, execute_planned, locked_scan
from regfs.gc.runoptions import RunOptions, check_options
from regfs.gc.steps import ExecResult
from regfs.gc.targets import Selection, Target, parse_target, select
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.scan import Progress, Refresher, Snapshot
from regfs.storage.base import Storage
from regfs.storage.s3 import S3Storage


@dataclass(slots=True)
class RmOutcome:
    """One ``regfs rm``: what the targets selected, the run, and gc's share of it.

    ``run`` is the one plan that runs (the removal, and with ``--gc`` the gc composed in)
    and its execution; ``removal`` and ``gc`` are its two parts as reports (folders belong to
    the removal: they are planned once). Without ``--gc``, ``gc`` is what gc would then
    reclaim: a plan of its own, not run.
    """

    selection: Selection
    removal: GcOutcome
    gc: GcOutcome | None = None
    # Why that gc reclaims nothing the removal let go, or would refuse (for the operator).
    gc_notes: list[str] = field(default_factory=list)
    run: GcOutcome | None = None
    # How the run was planned: its parts (removal, gc) and gc's options.
    parts: list[Part] = field(default_factory=list)
    options: GcOptions | None = None

    @property
    def status(self) -> RunStatus:
        """How the whole command ended: refused when the removal or its gc is (or would
        be); else the removal's failure or interruption, else the gc's; else the removal's
        status (``rm --json``'s ``status`` is the removal's alone)."""
        parts = [self.removal] + ([self.gc] if self.gc is not None else [])
        statuses = [p.status for p in parts]
        if RunStatus.REFUSED in statuses:
            return RunStatus.REFUSED
        for status in statuses:
            if status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
                return status
        return statuses[0]


def remove(
    root: str | Store | None,
    targets: list[str],
    *,
    dry_run: bool,
    trash: bool = False,
    run_gc: bool = False,
    gc_options: GcOptions | None = None,
    now: float | None = None,
    tuning: Tuning = SERIAL,
    **kw: Unpack[RunOptions],
) -> RmOutcome:
    """Remove tags, manifests or repositories (with ``run_gc``, and what gc then reclaims,
    in the same run); without ``run_gc``, report what gc would reclaim.

    Decided before anything is deleted, by the same rules in a dry run: a removal that
    breaks a tag that stays (``breaks_tag``) and, with ``run_gc``, a gc that meets blocking
    scan problems are refusals unless ``gc_options.force``, next to the live-registry guard
    and the lock. ``kw``: the :class:`~regfs.gc.runoptions.RunOptions` (``command``
    defaults to ``regfs rm``).

    Raises:
        UsageError: a malformed target, or one that matches nothing (nothing is touched).
        GcRefused: refused for safety (its ``outcome`` is the :class:`RmOutcome`). Nothing
            is deleted.
    """
    check_options(kw, "remove")
    parsed = [parse_target(t) for t in targets]
    if not parsed:
        raise UsageError("no target given")
    gopts = gc_options or GcOptions()
    with locked_scan(
        root, kw, command="regfs rm", dry_run=dry_run, tag_links=True, now=now, tuning=tuning
    ) as frame:
        skipped = frame.tail.skip_live_check
        planned = _plan(
            frame.seen, frame.snap, parsed, trash, run_gc, gopts, frame.now, dry_run, skipped
        )
        try:
            frame.tail.decide(
                planned.removal if planned.run is None else planned.run, force=gopts.force
            )
        except GcRefused as exc:
            raise GcRefused(_again(planned), exc.details) from None
    # After the lock: the preview of what gc would then reclaim takes its own look.
    return _finish(planned, _again_root(root, frame.storage), tuning, kw.get("progress"), now)


def execute_removal(
    planned: RmOutcome,
    storage: Store,
    *,
    root: str | Store | None,
    tuning: Tuning = SERIAL,
    **kw: Unpack[RunOptions],
) -> RmOutcome:
    """Execute the run of a dry ``rm`` (:func:`remove` with ``dry_run``): that plan, under
    the lock, the rules decided again now (:func:`regfs.gc.run.execute_planned`); then the
    report of the removal and its gc as :func:`remove` gives it. ``kw``: the
    :class:`~regfs.gc.runoptions.RunOptions` (``command`` defaults to ``regfs rm``).

    Raises:
        UsageError: not a dry run's plan, a malformed ``registry_url``, not confirmed.
        GcRefused: refused for safety (its ``outcome`` is the :class:`RmOutcome`).
    """
    check_options(kw, "execute_removal")
    if planned.run is None or planned.options is None:
        raise UsageError("only a dry run's plan can be executed (and only once)")
    kw.setdefault("command", "regfs rm")
    try:
        done = execute_planned(planned.run, storage, force=planned.options.force, **kw)
    except GcRefused as exc:
        assert isinstance(exc.outcome, GcOutcome)
        raise GcRefused(_again(planned, exc.outcome), exc.details) from None
    progress = kw.get("progress")
    return _finish(_again(planned, done), _again_root(root, storage), tuning, progress, None)


def _plan(
    storage: Storage,
    snap: Snapshot,
    targets: list[Target],
    trash: bool,
    run_gc: bool,
    gopts: GcOptions,
    now: float,
    dry_run: bool,
    skip_live_check: bool,
) -> RmOutcome:
    """The one plan of an ``rm`` (the removal, with ``run_gc`` its gc composed in)."""
    sel = select(snap, targets)
    part = rm_part(snap, sel, min_age=gopts.min_age, now=now)
    parts: list[Part] = [part]
    fresh = snap
    if run_gc:
        # gc planned on the tree as the removal leaves it, refreshed through the storage.
        cands = gc_candidates(without(snap, part), gopts, now=now)
        fresh = refreshed(storage, snap, cands)
        parts.append(gc_part(without(fresh, part), cands))
    options = (
        dataclasses.replace(gopts, trash=trash)
        if run_gc
        else GcOptions(trash=trash, min_age=gopts.min_age)
    )
    plan = RmPlan(new_run_id(now), str(snap.v2), options, now, [], [], [])
    plan.referrers, plan.breaks = part.referrers, part.breaks
    compose(fresh, plan, parts)
    outcome = GcOutcome(plan, snap, dry_run, live_check_skipped=skip_live_check)
    preview = None if run_gc else _gc_preview(storage, snap, part, gopts, now)
    return RmOutcome(sel, outcome, preview, [], outcome, parts, gopts)


def _again_root(root: str | Store | None, storage: Store) -> str | Store | None:
    """Where the fresh look after the removal scans: a bucket as it is, a folder opened
    again from ROOT."""
    return storage if isinstance(storage, S3Storage) else root


def _again(planned: RmOutcome, run: GcOutcome | None = None) -> RmOutcome:
    """``planned`` (its run replaced by ``run``) as the report of its parts."""
    assert planned.run is not None and planned.options is not None
    return _result(planned, run or planned.run)


def _finish(
    result: RmOutcome,
    root: str | Store | None,
    tuning: Tuning,
    progress: Progress | None,
    now: float | None,
) -> RmOutcome:
    """After a real run without ``--gc``: what gc would reclaim now, from a fresh scan."""
    run = result.run
    result = _again(result, run)
    if run is None or run.executed is None or run.dry_run or result.options is None:
        return result
    if any(p.kind is PartKind.GC for p in result.parts):
        return result
    if run.executed.failed or run.executed.interrupted:
        return dataclasses.replace(result, gc=None, gc_notes=[])
    gopts = result.options
    gc = collect(
        root,
        gopts,
        dry_run=True,
        progress=progress,
        now=now,
        check_safety=False,
        tuning=tuning,
    )
    notes = gc_notes(run.snapshot, run.plan, gc.plan, gopts)
    return dataclasses.replace(result, gc=gc, gc_notes=notes)


def _gc_preview(
    storage: Storage, snap: Snapshot, part: RmPart, options: GcOptions, now: float
) -> GcOutcome:
    """What gc would reclaim once the removal ran: a plan of its own on the tree as the
    removal leaves it (shown, not run)."""
    after = without(snap, part)
    plan = build_plan(after, options, now=now, refresh=Refresher(storage, after))
    return GcOutcome(plan, after, True)


def _result(planned: RmOutcome, run: GcOutcome) -> RmOutcome:
    """The outcome of ``run`` as the removal and its gc (a part of it, or the preview)."""
    sel, parts, options = planned.selection, planned.parts, planned.options or GcOptions()
    if not any(p.kind is PartKind.GC for p in parts):
        preview = planned.gc if planned.gc is not None and planned.gc.dry_run else None
        notes = gc_notes(run.snapshot, run.plan, preview.plan, options) if preview else []
        return RmOutcome(sel, run, preview, notes, run, parts, options)
    rm_options = GcOptions(trash=run.plan.options.trash, min_age=options.min_age)
    removal = _share(run, parts, {PartKind.RM, PartKind.FOLDERS}, rm_options)
    gc = _share(run, parts, {PartKind.GC}, options)
    gc.would_refuse = [r for r in run.would_refuse or [] if r.kind == "scan_problem"] or None
    if run.executed is None:  # the gc part was not looked at by the guard on its own
        gc.guard, gc.live_check_skipped = [], False
    notes = gc_notes(run.snapshot, removal.plan, gc.plan, options)
    return RmOutcome(sel, removal, gc, notes, run, parts, options)


def _share(
    run: GcOutcome, parts: list[Part], kinds: set[PartKind], options: GcOptions
) -> GcOutcome:
    """The actions (planned and done) that parts of ``kinds`` made, as a run of their own
    (same run id): what the report of each part reads."""
    plan = run.plan
    mine = [p for p in parts if p.kind in kinds]
    # compose kept each part's "kept" in order, then what it kept off symbolic links
    later = plan.kept[sum(len(p.kept) for p in parts) :]
    view = (RmPlan if PartKind.RM in kinds else GcPlan)(
        plan.run_id,
        plan.v2,
        options,
        plan.created,
        actions=[a for a in plan.actions if plan.origin.get(a.path) in kinds],
        kept=[k for p in mine for k in p.kept]
        + [k for k in later if plan.origin.get(k.path) in kinds],
        blocking=[f for p in mine for f in p.blocking],
        manifests=[m for p in mine for m in p.manifests],
        young_uploads=[u for p in mine for u in p.young_uploads],
        origin={path: kind for path, kind in plan.origin.items() if kind in kinds},
    )
    if isinstance(view, RmPlan) and isinstance(plan, RmPlan):
        view.referrers, view.breaks = plan.referrers, plan.breaks
    executed = None
    if run.executed is not None:
        ex = run.executed
        results = [r for r in ex.results if plan.origin.get(r.action.path) in kinds]
        failed = ex.failed if any(r is ex.failed for r in results) else None
        executed = ExecResult(results, ex.interrupted, failed, ex.seconds)
    return GcOutcome(
        view,
        run.snapshot,
        run.dry_run,
        executed,
        run.would_refuse,
        list(run.guard),
        run.live_check_skipped,
    )
