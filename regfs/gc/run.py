"""One garbage collection from ROOT to result: lock, scan, plan, then the tail every
deleting run shares (:func:`regfs.gc.finish.decide`: the rules of :mod:`regfs.gc.rules`,
confirmation, journal, execution); and the scan every deleting run plans from."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from regfs.errors import UsageError
from regfs.gc.compose import compose
from regfs.gc.execute import Ops
from regfs.gc.finish import Run, Store, decide
from regfs.gc.garbage import gc_candidates, gc_part
from regfs.gc.multipart import with_multipart
from regfs.gc.outcome import GcOutcome
from regfs.gc.plan import GcOptions, GcPlan, new_run_id
from regfs.gc.probe import check_url
from regfs.gc.refresh import refreshed
from regfs.gc.rules import locked
from regfs.gc.steps import Kept, Step
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.reports.multipart import multipart_leftovers
from regfs.scan import Progress, ScanMode, Snapshot, scan
from regfs.scan.listing import listed_view
from regfs.storage.base import Storage, StorageError
from regfs.storage.local import LocalStorage, resolve_root
from regfs.storage.locate import state_of
from regfs.storage.s3 import S3Storage


def scan_for_plan(
    storage: Store, progress: Progress | None, *, tag_links: bool, tuning: Tuning
) -> tuple[Snapshot, Storage]:
    """The fast scan gc, rm and retain plan from (the executor re-checks every folder it
    touches), and the storage its refresh stats the plan's candidates through.

    A bucket is listed once (:func:`regfs.scan.listing.listed_view`) and scanned through that
    view, which also answers the refresh: the listing already holds every size and date,
    so no candidate costs a HEAD at planning (the executor's re-check HEADs what it deletes).
    """
    mode = ScanMode.LAZY if tag_links else ScanMode.TAG_NAMES
    if storage.prefers_listing:
        view = listed_view(storage, mode, threads=tuning.threads, progress=progress)
        snap = scan(
            view,
            workers=tuning.threads,
            progress=progress,
            mode=mode,
            tuning=tuning.with_processes(1),
        )
        return snap, view
    snap = scan(
        storage,
        workers=1,
        progress=progress,
        mode=mode,
        # Forked shards as ``tuning`` says: the work is small system calls and parsing,
        # which threads cannot overlap under the GIL (measured in benchmarks/README.md).
        tuning=tuning,
    )
    return snap, storage


def open_root(root: str | Store | None) -> Store:
    """The store a run works on: ``root`` itself when it is one (a bucket, or a folder
    already opened), else the folder ROOT names.

    Raises:
        RootError: ROOT is unusable.
    """
    if isinstance(root, LocalStorage | S3Storage):
        return root
    return LocalStorage(resolve_root(root))


def plan_multipart(plan: GcPlan, storage: Store, snap: Snapshot) -> None:
    """On a bucket: the abandoned multipart uploads into ``plan`` (:mod:`regfs.gc.multipart`);
    when they cannot be listed, nothing of them is planned and the plan says why."""
    if not isinstance(storage, S3Storage):
        return
    try:
        found = multipart_leftovers(
            storage, snap, older_than=plan.options.uploads_older_than, now=plan.created
        )
    except StorageError as exc:
        reason = f"multipart uploads could not be listed: {exc.strerror or exc}"
        plan.kept.append(Kept(Step.UPLOAD, "repositories", reason))
        return
    with_multipart(plan, found)


def collect(
    root: str | Store | None,
    options: GcOptions,
    *,
    dry_run: bool,
    registry_url: str | None = None,
    skip_live_check: bool = False,
    confirm: Callable[[GcPlan], bool] | None = None,
    progress: Progress | None = None,
    ops: Ops | None = None,
    now: float | None = None,
    command: str = "regfs gc",
    check_safety: bool = True,
    tuning: Tuning = SERIAL,
) -> GcOutcome:
    """Run (or, with ``dry_run``, only plan) a garbage collection.

    A dry run and a real run decide refusal with the same rules (:func:`rules`): the dry
    run returns the reasons in ``would_refuse``, the real run raises :class:`GcRefused`.
    ``check_safety=False`` only plans (a preview inside another command). ``tuning``: how
    many processes share the scan.

    Raises:
        RootError: ROOT is unusable.
        UsageError: a malformed ``registry_url`` (before anything is read), or the run was
            not confirmed.
        GcRefused: the graph is incomplete (without ``force``), something may write to ROOT,
            or another regfs holds the lock. Nothing is deleted.
    """
    url = check_url(registry_url) if registry_url else None
    storage = open_root(root)
    # A dry run writes nothing under ROOT, not even the lock.
    with locked(state_of(storage), command, dry_run or not check_safety) as lock:
        snap, seen = scan_for_plan(
            storage, progress, tag_links=options.delete_untagged, tuning=tuning
        )
        plan = plan_gc(seen, snap, options, now=now)
        plan_multipart(plan, storage, snap)
        outcome = GcOutcome(plan, snap, dry_run, live_check_skipped=skip_live_check)
        if not check_safety:
            return outcome
        return decide(
            outcome,
            Run(storage, confirm, progress, ops, command),
            force=options.force,
            lock=lock,
            registry_url=url,
            skip_live_check=skip_live_check,
        )


def plan_gc(
    storage: Storage, snap: Snapshot, options: GcOptions, *, now: float | None = None
) -> GcPlan:
    """gc's plan of ``snap``: candidates (pure), their refresh through ``storage`` (on a
    copy), the gc part (pure), composed."""
    now = time.time() if now is None else now
    cands = gc_candidates(snap, options, now=now)
    fresh = refreshed(storage, snap, cands)
    plan = GcPlan(new_run_id(now), str(snap.v2), options, now, [], [], [])
    return compose(fresh, plan, [gc_part(fresh, cands)])


def execute_planned(
    planned: GcOutcome,
    storage: Store,
    *,
    force: bool | None = None,
    registry_url: str | None = None,
    skip_live_check: bool = False,
    confirm: Callable[[GcPlan], bool] | None = None,
    progress: Progress | None = None,
    ops: Ops | None = None,
    command: str = "regfs gc",
) -> GcOutcome:
    """Execute the plan of a dry run (:func:`collect`, or the run of ``regfs rm``): that
    plan object, under the lock, after the safety rules have been decided again now, on
    ``storage`` (the storage the plan was made from).

    The plan may have been made a while ago: the executor re-checks every item before it
    touches it (changed, re-linked or pushed again since the scan: kept), as in any run.
    ``force`` defaults to the plan's own option; for a removal it lets a removal that breaks
    tags that stay, or whose gc met scan problems, proceed.

    Raises:
        UsageError: a malformed ``registry_url``, a plan that is not a dry run's, or the
            run was not confirmed.
        GcRefused: something may write to ROOT, another regfs holds the lock, the graph is
            incomplete (without ``force``) or the removal breaks a tag that stays. Nothing
            is deleted.
    """
    if not planned.dry_run or planned.executed is not None:
        raise UsageError("only a dry run's plan can be executed (and only once)")
    url = check_url(registry_url) if registry_url else None
    plan = planned.plan
    outcome = GcOutcome(plan, planned.snapshot, False, live_check_skipped=skip_live_check)
    with locked(state_of(storage), command, False) as lock:
        return decide(
            outcome,
            Run(storage, confirm, progress, ops, command),
            force=plan.options.force if force is None else force,
            lock=lock,
            registry_url=url,
            skip_live_check=skip_live_check,
        )


def command_line(argv: list[str]) -> str:
    """``argv`` as a shell would read it back (for the journal and the lock)."""
    return " ".join(shlex.quote(a) for a in argv)
