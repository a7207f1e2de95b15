"""One garbage collection from ROOT to result: lock, scan, plan, then the tail every
deleting run shares (:func:`regfs.gc.finish.decide`: the rules of :mod:`regfs.gc.rules`,
confirmation, journal, execution); and the frame every deleting run (gc, rm, retain) plans
and decides in (:func:`locked_scan`: the store, its lock, the scan taken under it, the tail)."""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Unpack

from regfs.errors import UsageError
from regfs.gc.compose import compose
from regfs.gc.finish import Run, Store, decide
from regfs.gc.garbage import gc_candidates, gc_part
from regfs.gc.live import Reason
from regfs.gc.multipart import with_multipart
from regfs.gc.outcome import GcOutcome
from regfs.gc.plan import GcOptions, GcPlan, new_run_id
from regfs.gc.probe import check_url
from regfs.gc.refresh import refreshed
from regfs.gc.rules import locked
from regfs.gc.runoptions import RunOptions, check_options
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


@dataclass(frozen=True, slots=True)
class Tail:
    """What a deleting run's plan is decided and carried out with
    (:func:`regfs.gc.finish.decide`): the run (store, confirmation, progress, ops, command),
    the lock (``None``: this run holds it, or a dry run found it free; else why it is
    unavailable), the live-registry guard's URL (checked) and whether the guard is
    skipped."""

    run: Run
    lock: Reason | None
    registry_url: str | None
    skip_live_check: bool

    def decide(self, outcome: GcOutcome, *, force: bool) -> GcOutcome:
        """``outcome`` decided by the rules, and (a real run that passes) executed.

        Raises:
            UsageError: the run was not confirmed.
            GcRefused: a real run refused for safety. Nothing is deleted.
        """
        return decide(
            outcome,
            self.run,
            force=force,
            lock=self.lock,
            registry_url=self.registry_url,
            skip_live_check=self.skip_live_check,
        )


@dataclass(frozen=True, slots=True)
class LockedScan:
    """A deleting run between its lock and its tail: the store it works on, the scan taken
    under the lock (``snap``) and the storage it was seen through (``seen``: a bucket's one
    listing, which answers the refresh), the run's time and its :class:`Tail`."""

    storage: Store
    snap: Snapshot
    seen: Storage
    now: float
    tail: Tail

    def outcome(self, plan: GcPlan, *, dry_run: bool) -> GcOutcome:
        """The outcome of ``plan`` made from this scan, before the tail decides it."""
        skipped = self.tail.skip_live_check
        return GcOutcome(plan, self.snap, dry_run, live_check_skipped=skipped)


def checked_url(options: RunOptions) -> str | None:
    """The live-registry guard's URL of ``options``, checked (``None`` when not given).

    Raises:
        UsageError: a malformed ``registry_url``.
    """
    url = options.get("registry_url")
    return check_url(url) if url else None


@contextlib.contextmanager
def run_tail(
    storage: Store, options: RunOptions, *, url: str | None, command: str, dry_run: bool
) -> Iterator[Tail]:
    """The lock of a run on ``storage`` (a dry run writes nothing, not even the lock: it
    only looks whether another holds it), and the :class:`Tail` the run ends in.
    ``command``: the command line when ``options`` has none."""
    run = Run(
        storage,
        options.get("confirm"),
        options.get("progress"),
        options.get("ops"),
        options.get("command", command),
    )
    with locked(state_of(storage), run.command, dry_run) as lock:
        yield Tail(run, lock, url, options.get("skip_live_check", False))


@contextlib.contextmanager
def locked_scan(
    root: str | Store | None,
    options: RunOptions,
    *,
    command: str,
    dry_run: bool,
    tag_links: bool,
    now: float | None,
    tuning: Tuning,
) -> Iterator[LockedScan]:
    """The frame of every deleting run: ``registry_url`` checked (before anything is read),
    ROOT opened (:func:`open_root`), the run's time (``now``, else the clock's, read before
    the lock), the lock (:func:`run_tail`) and, under it, the scan the run plans from
    (:func:`scan_for_plan`); the lock is released when the frame is left.

    Raises:
        UsageError: a malformed ``registry_url``.
        RootError: ROOT is unusable.
    """
    url = checked_url(options)
    storage = open_root(root)
    now = time.time() if now is None else now
    with run_tail(storage, options, url=url, command=command, dry_run=dry_run) as tail:
        progress = tail.run.progress
        snap, seen = scan_for_plan(storage, progress, tag_links=tag_links, tuning=tuning)
        yield LockedScan(storage, snap, seen, now, tail)


def collect(
    root: str | Store | None,
    options: GcOptions,
    *,
    dry_run: bool,
    now: float | None = None,
    check_safety: bool = True,
    tuning: Tuning = SERIAL,
    **kw: Unpack[RunOptions],
) -> GcOutcome:
    """Run (or, with ``dry_run``, only plan) a garbage collection.

    A dry run and a real run decide refusal with the same rules (:func:`rules`): the dry
    run returns the reasons in ``would_refuse``, the real run raises :class:`GcRefused`.
    ``check_safety=False`` only plans (a preview inside another command). ``tuning``: how
    many processes share the scan. ``kw``: the :class:`~regfs.gc.runoptions.RunOptions`
    (``command`` defaults to ``regfs gc``).

    Raises:
        RootError: ROOT is unusable.
        UsageError: a malformed ``registry_url`` (before anything is read), or the run was
            not confirmed.
        GcRefused: the graph is incomplete (without ``force``), something may write to ROOT,
            or another regfs holds the lock. Nothing is deleted.
    """
    check_options(kw, "collect")
    with locked_scan(
        root,
        kw,
        command="regfs gc",
        # A preview (check_safety=False) writes nothing under ROOT either, not even the lock.
        dry_run=dry_run or not check_safety,
        tag_links=options.delete_untagged,
        now=now,
        tuning=tuning,
    ) as frame:
        # gc's plan reads the clock after the scan (unless ``now`` is given), as it always has.
        plan = plan_gc(frame.seen, frame.snap, options, now=now)
        plan_multipart(plan, frame.storage, frame.snap)
        outcome = frame.outcome(plan, dry_run=dry_run)
        if not check_safety:
            return outcome
        return frame.tail.decide(outcome, force=options.force)


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
    **kw: Unpack[RunOptions],
) -> GcOutcome:
    """Execute the plan of a dry run (:func:`collect`, or the run of ``regfs rm``): that
    plan object, under the lock, after the safety rules have been decided again now, on
    ``storage`` (the storage the plan was made from).

    The plan may have been made a while ago: the executor re-checks every item before it
    touches it (changed, re-linked or pushed again since the scan: kept), as in any run.
    ``force`` defaults to the plan's own option; for a removal it lets a removal that breaks
    tags that stay, or whose gc met scan problems, proceed. ``kw``: the
    :class:`~regfs.gc.runoptions.RunOptions` (``command`` defaults to ``regfs gc``).

    Raises:
        UsageError: a malformed ``registry_url``, a plan that is not a dry run's, or the
            run was not confirmed.
        GcRefused: something may write to ROOT, another regfs holds the lock, the graph is
            incomplete (without ``force``) or the removal breaks a tag that stays. Nothing
            is deleted.
    """
    check_options(kw, "execute_planned")
    if not planned.dry_run or planned.executed is not None:
        raise UsageError("only a dry run's plan can be executed (and only once)")
    url = checked_url(kw)
    plan = planned.plan
    skipped = kw.get("skip_live_check", False)
    outcome = GcOutcome(plan, planned.snapshot, False, live_check_skipped=skipped)
    with run_tail(storage, kw, url=url, command="regfs gc", dry_run=False) as tail:
        return tail.decide(outcome, force=plan.options.force if force is None else force)


def command_line(argv: list[str]) -> str:
    """``argv`` as a shell would read it back (for the journal and the lock)."""
    return " ".join(shlex.quote(a) for a in argv)
