"""One garbage collection from ROOT to result: lock, scan, plan, guard, confirm, execute.

Every deleting run (gc, rm, retain, a planned run executed later) ends the same way:
:func:`decide` applies the one rule set (:func:`rules`), a dry run stops there, a real run
that passes is confirmed, journaled and executed (:func:`execute_outcome`).
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from regfs.errors import RefusedError, UsageError
from regfs.gc import s3relinks
from regfs.gc.compose import compose
from regfs.gc.execute import Executor, Ops
from regfs.gc.garbage import gc_candidates, gc_part
from regfs.gc.journal import Journal, state_store
from regfs.gc.live import Reason, guard
from regfs.gc.lock import LOCK, Lock, pid_alive, read_holder
from regfs.gc.multipart import with_multipart
from regfs.gc.outcome import GcOutcome, GcRefused
from regfs.gc.plan import GcOptions, GcPlan, new_run_id
from regfs.gc.probe import check_url
from regfs.gc.refresh import refreshed
from regfs.gc.relinks import expected_revisions, pushed_since, relinked_digests
from regfs.gc.rm import RmPlan
from regfs.gc.s3exec import S3Executor
from regfs.gc.steps import ExecResult, Kept, Status, Step
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.reports.multipart import multipart_leftovers
from regfs.scan import Progress, ScanMode, Snapshot, scan
from regfs.scan.listing import listed_view
from regfs.storage.base import StateStore, Storage, StorageError
from regfs.storage.local import LocalStorage, resolve_root
from regfs.storage.s3 import S3Storage
from regfs.storage.s3state import S3StateStore

# A confirmation that took longer than this (seconds) runs the guard again before deleting.
RECHECK_AFTER = 1.0
# What a run works on: a registry folder or a bucket.
Store = LocalStorage | S3Storage


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


def blocking_reasons(plan: GcPlan) -> list[Reason]:
    """The findings that stop ``plan``, as refusal reasons."""
    return [
        Reason("scan_problem", f"{f.kind}: {f.path}: {f.message}", path=f.path)
        for f in plan.blocking
    ]


def held_lock(state: StateStore | str) -> Reason | None:
    """The lock held by a live process (a dry run checks, it does not take it)."""
    store = state_store(state)
    path = store.path(LOCK)
    holder = read_holder(store)
    if holder is None:
        return None
    if holder.host == socket.gethostname() and holder.pid > 0 and not pid_alive(holder.pid):
        return None  # stale: a real run takes it over
    return Reason(
        "lock",
        f"another regfs holds the lock: {holder.describe()}; remove {path} only if you are "
        "sure it is not running",
        pid=holder.pid if holder.pid > 0 else None,
        path=path,
    )


def assess(
    plan: GcPlan,
    *,
    force: bool,
    lock: Reason | None,
    registry_url: str | None,
    skip_live_check: bool,
) -> tuple[list[Reason], list[Reason]]:
    """The scan problems (unless ``force``), the lock and the live-registry guard, dry or
    real: (refusals, what the guard let pass)."""
    refusals = [] if force else blocking_reasons(plan)
    if lock is not None:
        refusals.append(lock)
    notes: list[Reason] = []
    if not skip_live_check:
        v = guard(plan.v2, young_uploads=plan.young_uploads, registry_url=registry_url)
        refusals += v.refusals
        notes = v.notes
    return refusals, notes


def rules(
    plan: GcPlan,
    *,
    force: bool,
    lock: Reason | None,
    registry_url: str | None,
    skip_live_check: bool,
) -> tuple[list[Reason], list[Reason]]:
    """The one rule set of every deleting run, dry or real: (refusals, guard notes).

    :func:`assess`; for a removal (an :class:`RmPlan`, alone or with a gc composed in) the
    tags it breaks and then the scan problems of its gc, each unless ``force``.
    """
    removal = isinstance(plan, RmPlan)
    refusals, notes = assess(
        plan,
        force=force or removal,
        lock=lock,
        registry_url=registry_url,
        skip_live_check=skip_live_check,
    )
    if isinstance(plan, RmPlan) and not force:
        refusals += [Reason("breaks_tag", b.describe()) for b in plan.breaks]
        refusals += blocking_reasons(plan)
    return refusals, notes


@contextlib.contextmanager
def locked(state: StateStore, command: str, dry_run: bool) -> Iterator[Reason | None]:
    """Take the lock for a real run; yield why it is unavailable (a dry run only looks)."""
    if dry_run:
        yield held_lock(state)
        return
    lock = Lock(state, command)
    try:
        lock.acquire()
    except RefusedError as exc:
        # Described as a dry run describes it, so that both give the same reasons.
        yield held_lock(state) or Reason("lock", exc.message, path=exc.path)
        return
    try:
        yield None
    finally:
        lock.release()


@dataclass(frozen=True, slots=True)
class Run:
    """How a real run goes once its plan is made: the storage, the confirmation, progress,
    the seam for injected failures and the command line the journal and lock record."""

    storage: Store
    confirm: Callable[[GcPlan], bool] | None = None
    progress: Progress | None = None
    ops: Ops | None = None
    command: str = "regfs gc"


def decide(
    outcome: GcOutcome,
    run: Run,
    *,
    force: bool,
    lock: Reason | None,
    registry_url: str | None,
    skip_live_check: bool,
) -> GcOutcome:
    """The one tail of every run: the rules decide (``would_refuse``, ``guard``); a dry run
    stops there; a real run refused raises :class:`GcRefused`; one that passes is
    executed (:func:`execute_outcome`), the rules decided again after a slow confirmation."""

    def decide_now(lock: Reason | None) -> tuple[list[Reason], list[Reason]]:
        return rules(
            outcome.plan,
            force=force,
            lock=lock,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
        )

    refusals, outcome.guard = decide_now(lock)
    outcome.would_refuse = refusals or None
    if outcome.dry_run:
        return outcome
    if refusals:
        raise GcRefused(outcome, refusals)
    return execute_outcome(outcome, run, recheck=lambda: decide_now(None)[0])


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


def state_of(storage: Store) -> StateStore:
    """regfs's own state next to the store: ``.regfs/`` in ROOT or under the bucket prefix."""
    if isinstance(storage, S3Storage):
        return S3StateStore(storage)
    return storage.state


def left_paths(plan: GcPlan, result: ExecResult) -> list[str]:
    """The paths of the plan's actions a run did not finish (failed, or never started):
    what the journal names as left after a failed or interrupted run."""
    finished = {id(r.action) for r in result.results if r.status is not Status.FAILED}
    return [a.path for a in plan.actions if id(a) not in finished]


def execute_outcome(
    outcome: GcOutcome, run: Run, *, recheck: Callable[[], list[Reason]] | None = None
) -> GcOutcome:
    """Confirmation, journal, execution (the rules have passed; when the confirmation took
    longer than :data:`RECHECK_AFTER`, ``recheck`` decides again)."""
    plan = outcome.plan
    if not plan.actions:
        outcome.executed = ExecResult()
        return outcome
    asked = time.monotonic()
    if run.confirm is not None and not run.confirm(plan):
        raise UsageError("not confirmed; nothing deleted")
    if recheck is not None and time.monotonic() - asked > RECHECK_AFTER:
        # A prompt waited: the world may have changed since the guard looked.
        refusals = recheck()
        if refusals:
            outcome.would_refuse = refusals
            raise GcRefused(outcome, refusals)
    journal = Journal(state_of(run.storage), plan.run_id)
    journal.write_plan(plan, run.command)
    executor = _executor(plan, run, journal, expected_revisions(plan, outcome.snapshot))
    try:
        result = executor.run()
    finally:
        journal.close()
    journal.finish(
        {
            "done": len(result.with_status(Status.DONE)),
            "skipped": len(result.with_status(Status.SKIPPED)),
            "gone": len(result.with_status(Status.GONE)),
            "failed": result.failed.detail if result.failed else None,
            "interrupted": result.interrupted,
            "reclaimed_bytes": result.reclaimed_bytes,
            "left": left_paths(plan, result),
        }
    )
    outcome.executed = result
    return outcome


def _executor(
    plan: GcPlan, run: Run, journal: Journal, expected: Callable[[Step], dict[str, set[str]]]
) -> Executor | S3Executor:
    """The executor for the run's storage (a bucket has its own: batched, conditional)."""
    storage = run.storage
    trash_run = plan.run_id if plan.options.trash else None
    if isinstance(storage, S3Storage):
        return S3Executor(
            plan,
            journal=journal,
            trash_run=trash_run,
            storage=storage,
            progress=run.progress,
            relinked=lambda wanted: s3relinks.relinked_digests(storage, wanted),
            pushed=lambda step: s3relinks.pushed_since(storage, expected(step)),
        )
    return Executor(
        plan,
        journal=journal,
        trash_run=trash_run,
        storage=storage,
        ops=run.ops,
        progress=run.progress,
        relinked=lambda wanted: relinked_digests(storage, wanted),
        pushed=lambda step: pushed_since(storage, expected(step)),
    )


def command_line(argv: list[str]) -> str:
    """``argv`` as a shell would read it back (for the journal and the lock)."""
    return " ".join(shlex.quote(a) for a in argv)
