"""One garbage collection from ROOT to result: lock, scan, plan, guard, confirm, execute."""

from __future__ import annotations

import contextlib
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from regfs.errors import RefusedError, UsageError
from regfs.gc import s3relinks
from regfs.gc.execute import ExecResult, Executor, Ops
from regfs.gc.journal import Journal, state_store
from regfs.gc.live import Reason, guard
from regfs.gc.lock import LOCK, Lock, pid_alive, read_holder
from regfs.gc.multipart import with_multipart
from regfs.gc.plan import GcOptions, GcPlan, build_plan
from regfs.gc.probe import check_url
from regfs.gc.relinks import pushed_since, relinked_digests
from regfs.gc.rm import RmPlan, Selection, build_rm_plan, gc_notes, parse_target, select, without
from regfs.gc.s3exec import S3Executor
from regfs.gc.steps import Kept, Status, Step
from regfs.layout.folders import parse_folder
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.reports.multipart import multipart_leftovers
from regfs.scan import Progress, Refresher, ScanMode, Snapshot, scan
from regfs.scan.listing import listed_view
from regfs.storage.base import StateStore, Storage, StorageError
from regfs.storage.local import LocalStorage, resolve_root
from regfs.storage.s3 import S3Storage
from regfs.storage.s3state import S3StateStore

# A confirmation that took longer than this (seconds) runs the guard again before deleting.
RECHECK_AFTER = 1.0
# What a run works on: a registry folder or a bucket.
Store = LocalStorage | S3Storage


class RunStatus(StrEnum):
    """Where a gc or rm run ended (the ``status`` of its --json document)."""

    PLANNED = "planned"  # a dry run, or a plan not (yet) executed
    REFUSED = "refused"  # refused for safety (a dry run: a real run would refuse)
    DONE = "done"  # executed to the end
    FAILED = "failed"  # a deletion step failed; the run stopped there
    INTERRUPTED = "interrupted"  # stopped between two steps (Ctrl-C)


@dataclass(slots=True)
class GcOutcome:
    """One gc (or one removal of rm): its plan, what the safety rules said, what was done."""

    plan: GcPlan
    snapshot: Snapshot
    dry_run: bool
    executed: ExecResult | None = None
    # Why a run refuses (a dry run: would refuse); the same rules for both. None: it does not.
    would_refuse: list[Reason] | None = None
    # What the live-registry guard looked at and let pass, one line each.
    guard: list[Reason] = field(default_factory=list)
    live_check_skipped: bool = False

    @property
    def status(self) -> RunStatus:
        """How the run ended; the one place it is decided (JSON and exit code read it)."""
        if self.dry_run or self.executed is None:
            return RunStatus.REFUSED if self.would_refuse else RunStatus.PLANNED
        if self.executed.failed:
            return RunStatus.FAILED
        return RunStatus.INTERRUPTED if self.executed.interrupted else RunStatus.DONE


class GcRefused(RefusedError):
    """A real run refused for safety; ``outcome`` holds the plan and every reason."""

    def __init__(self, outcome: GcOutcome | RmOutcome, reasons: list[Reason]) -> None:
        super().__init__(_summary(reasons), reasons=[r.message for r in reasons])
        self.outcome = outcome
        self.details = reasons


def _summary(reasons: list[Reason]) -> str:
    kinds = {r.kind for r in reasons}
    if kinds <= {"scan_problem"}:
        return (
            "the scan met problems that leave the reference graph incomplete; nothing "
            "deleted (fix them, or use --force to keep everything they might reference)"
        )
    if kinds == {"lock"}:
        return reasons[0].message
    if kinds == {"breaks_tag"}:
        return (
            "the removal would break tags that stay (an index lists what it removes); nothing "
            "deleted (remove the index or its tags too, or use --force)"
        )
    if kinds <= {"breaks_tag", "scan_problem"}:
        return "refused for safety (every reason below); nothing deleted"
    return "something may write to ROOT while gc deletes; nothing deleted"


def _scan(
    storage: Store, progress: Progress | None, *, tag_links: bool, tuning: Tuning
) -> Snapshot:
    """The fast scan gc and rm plan from (:func:`scan_for_plan` without its storage)."""
    return scan_for_plan(storage, progress, tag_links=tag_links, tuning=tuning)[0]


def scan_for_plan(
    storage: Store, progress: Progress | None, *, tag_links: bool, tuning: Tuning
) -> tuple[Snapshot, Storage]:
    """The fast scan gc and rm plan from (the executor re-checks every folder it touches),
    and the storage its refresher stats the plan's candidates through.

    A bucket is listed once (:func:`regfs.scan.listing.listed_view`) and scanned through that
    view, which also answers the refresher: the listing already holds every size and date,
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


def blocking_reasons(plan: GcPlan) -> list[Reason]:
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
    """The one rule set of gc and rm, dry or real: (refusals, what the guard let pass)."""
    refusals = [] if force else blocking_reasons(plan)
    if lock is not None:
        refusals.append(lock)
    notes: list[Reason] = []
    if not skip_live_check:
        v = guard(plan.v2, young_uploads=plan.young_uploads, registry_url=registry_url)
        refusals += v.refusals
        notes = v.notes
    return refusals, notes


@contextlib.contextmanager
def _locked(state: StateStore, command: str, dry_run: bool) -> Iterator[Reason | None]:
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

    A dry run and a real run decide refusal with the same rules (:func:`assess`): the dry
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
    with _locked(state_of(storage), command, dry_run or not check_safety) as lock:
        snap, seen = scan_for_plan(
            storage, progress, tag_links=options.delete_untagged, tuning=tuning
        )
        plan = build_plan(snap, options, now=now, refresh=Refresher(seen, snap))
        plan_multipart(plan, storage, snap)
        outcome = GcOutcome(plan, snap, dry_run, live_check_skipped=skip_live_check)
        if not check_safety:
            return outcome
        refusals, outcome.guard = assess(
            plan,
            force=options.force,
            lock=lock,
            registry_url=url,
            skip_live_check=skip_live_check,
        )
        outcome.would_refuse = refusals or None
        if dry_run:
            return outcome
        if refusals:
            raise GcRefused(outcome, refusals)
        return _execute(
            outcome,
            storage,
            confirm=confirm,
            progress=progress,
            ops=ops,
            command=command,
            recheck=lambda: assess(
                plan,
                force=options.force,
                lock=None,
                registry_url=url,
                skip_live_check=skip_live_check,
            )[0],
        )


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
    """Execute the plan of a dry run (:func:`collect`, or the removal of :func:`remove`):
    that plan object, under the lock, after the safety rules have been decided again now,
    on ``storage`` (the storage the plan was made from).

    The plan may have been made a while ago: the executor re-checks every item before it
    touches it (changed, re-linked or pushed again since the scan: kept), as in any run.
    ``force`` defaults to the plan's own option; for a removal plan it only lets a removal
    that breaks tags that stay proceed (scan problems always refuse a removal, as in rm).

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
    removal = isinstance(plan, RmPlan)
    forced = plan.options.force if force is None else force
    outcome = GcOutcome(plan, planned.snapshot, False, live_check_skipped=skip_live_check)

    def rules(lock: Reason | None) -> tuple[list[Reason], list[Reason]]:
        refusals, notes = assess(
            plan,
            force=forced and not removal,
            lock=lock,
            registry_url=url,
            skip_live_check=skip_live_check,
        )
        if isinstance(plan, RmPlan) and not forced:
            refusals += [Reason("breaks_tag", b.describe()) for b in plan.breaks]
        return refusals, notes

    with _locked(state_of(storage), command, False) as lock:
        refusals, outcome.guard = rules(lock)
        outcome.would_refuse = refusals or None
        if refusals:
            raise GcRefused(outcome, refusals)
        return _execute(
            outcome,
            storage,
            confirm=confirm,
            progress=progress,
            ops=ops,
            command=command,
            recheck=lambda: rules(None)[0],
        )


def expected_revisions(plan: GcPlan, snap: Snapshot) -> Callable[[Step], dict[str, set[str]]]:
    """``step -> {repository: revisions}``: the revision links a run expects to find when
    ``step`` starts. Until the revisions step, what the scan saw; from then on, minus those the
    plan removes. Any other revision link is a manifest pushed (again) since the scan, and a
    planned one still there was pushed again or changed: what it references must stay."""
    seen = {name: set(repo.revisions) for name, repo in snap.repositories.items()}
    after: dict[str, set[str]] | None = None

    def expected(step: Step) -> dict[str, set[str]]:
        nonlocal after
        if step in (Step.TAG, Step.TAG_INDEX, Step.REVISION):
            return seen
        if after is None:
            after = {name: set(revs) for name, revs in seen.items()}
            for a in plan.by_step(Step.REVISION):
                # The folder names the revision (``.../revisions/<alg>/<hex>``).
                folder = parse_folder(a.path)
                if folder is not None and folder.digest:
                    after.get(a.repository or "", set()).discard(folder.digest)
        return after

    return expected


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


def _execute(
    outcome: GcOutcome,
    storage: Store,
    *,
    confirm: Callable[[GcPlan], bool] | None,
    progress: Progress | None,
    ops: Ops | None,
    command: str,
    recheck: Callable[[], list[Reason]] | None = None,
) -> GcOutcome:
    """Confirmation, journal, execution: shared by gc and rm (the guard has passed; when
    the confirmation took longer than :data:`RECHECK_AFTER`, ``recheck`` decides again)."""
    plan = outcome.plan
    if not plan.actions:
        outcome.executed = ExecResult()
        return outcome
    asked = time.monotonic()
    if confirm is not None and not confirm(plan):
        raise UsageError("not confirmed; nothing deleted")
    if recheck is not None and time.monotonic() - asked > RECHECK_AFTER:
        # A prompt waited: the world may have changed since the guard looked.
        refusals = recheck()
        if refusals:
            outcome.would_refuse = refusals
            raise GcRefused(outcome, refusals)
    journal = Journal(state_of(storage), plan.run_id)
    journal.write_plan(plan, command)
    expected = expected_revisions(plan, outcome.snapshot)
    executor: Executor | S3Executor
    if isinstance(storage, S3Storage):
        executor = S3Executor(
            plan,
            journal=journal,
            trash_run=plan.run_id if plan.options.trash else None,
            storage=storage,
            progress=progress,
            relinked=lambda wanted: s3relinks.relinked_digests(storage, wanted),
            pushed=lambda step: s3relinks.pushed_since(storage, expected(step)),
        )
    else:
        executor = Executor(
            plan,
            journal=journal,
            trash_run=plan.run_id if plan.options.trash else None,
            storage=storage,
            ops=ops,
            progress=progress,
            relinked=lambda wanted: relinked_digests(storage, wanted),
            pushed=lambda step: pushed_since(storage, expected(step)),
        )
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


@dataclass(slots=True)
class RmOutcome:
    """One ``regfs rm``: what the targets selected, the removal, and the gc after it."""

    selection: Selection
    removal: GcOutcome
    # `regfs gc` after the removal: the plan (dry run or no --gc) or the run (with --gc).
    gc: GcOutcome | None = None
    # Why that gc reclaims nothing the removal let go, or would refuse (for the operator).
    gc_notes: list[str] = field(default_factory=list)

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
    registry_url: str | None = None,
    skip_live_check: bool = False,
    confirm: Callable[[GcPlan], bool] | None = None,
    progress: Progress | None = None,
    ops: Ops | None = None,
    now: float | None = None,
    command: str = "regfs rm",
    tuning: Tuning = SERIAL,
) -> RmOutcome:
    """Remove tags, manifests or repositories; then report or run what gc would reclaim.

    Both steps are decided before anything is deleted, by the same rules in a dry run: a
    removal that breaks a tag that stays (a child of a tagged index: ``breaks_tag``) and, with
    ``run_gc``, a gc that would refuse (blocking scan problems) are refusals unless
    ``gc_options.force``, next to the live-registry guard and the lock.

    Raises:
        UsageError: a malformed target, or one that matches nothing (nothing is touched).
        GcRefused: the removal breaks a tag that stays, the gc after it would refuse, something
            may write to ROOT, or another regfs holds the lock. Nothing is deleted.
    """
    parsed = [parse_target(t) for t in targets]
    if not parsed:
        raise UsageError("no target given")
    url = check_url(registry_url) if registry_url else None
    storage = open_root(root)
    gopts = gc_options or GcOptions()
    with _locked(state_of(storage), command, dry_run) as lock:
        snap, seen = scan_for_plan(storage, progress, tag_links=True, tuning=tuning)
        sel = select(snap, parsed)
        plan = build_rm_plan(snap, sel, trash=trash, min_age=gopts.min_age, now=now)
        outcome = GcOutcome(plan, snap, dry_run, live_check_skipped=skip_live_check)
        refusals, outcome.guard = assess(
            plan, force=False, lock=lock, registry_url=url, skip_live_check=skip_live_check
        )
        # The gc that follows, planned on the tree as the removal leaves it.
        after = without(snap, plan)
        gc_plan = build_plan(after, gopts, now=now, refresh=Refresher(seen, after))
        planned_gc = GcOutcome(gc_plan, after, True)
        notes = gc_notes(snap, plan, gc_plan, gopts)
        if not gopts.force:
            refusals += [Reason("breaks_tag", b.describe()) for b in plan.breaks]
            if run_gc:
                planned_gc.would_refuse = blocking_reasons(gc_plan) or None
                refusals += planned_gc.would_refuse or []
        outcome.would_refuse = refusals or None
        if dry_run:
            return RmOutcome(sel, outcome, planned_gc, notes)
        if refusals:
            raise GcRefused(RmOutcome(sel, outcome, planned_gc, notes), refusals)
        removal = _execute(
            outcome,
            storage,
            confirm=confirm,
            progress=progress,
            ops=ops,
            command=command,
            recheck=lambda: assess(
                plan, force=False, lock=None, registry_url=url, skip_live_check=skip_live_check
            )[0],
        )
    if removal.executed is not None and (removal.executed.failed or removal.executed.interrupted):
        return RmOutcome(sel, removal)
    # The gc after the removal scans afresh: a folder is opened again from ROOT.
    again = storage if isinstance(storage, S3Storage) else root
    if run_gc:
        try:
            gc = collect(
                again,
                gopts,
                dry_run=False,
                registry_url=url,
                skip_live_check=skip_live_check,
                confirm=None,
                progress=progress,
                ops=ops,
                now=now,
                command=command + " (gc)",
                tuning=tuning,
            )
        except GcRefused as exc:
            assert isinstance(exc.outcome, GcOutcome)
            raise GcRefused(RmOutcome(sel, removal, exc.outcome), exc.details) from None
    else:
        gc = collect(
            again,
            gopts,
            dry_run=True,
            progress=progress,
            now=now,
            check_safety=False,
            tuning=tuning,
        )
    return RmOutcome(sel, removal, gc, gc_notes(snap, plan, gc.plan, gopts))


def command_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
