"""One garbage collection from ROOT to result: lock, scan, plan, guard, confirm, execute."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass

from regfs.errors import RefusedError, UsageError
from regfs.gc.execute import ExecResult, Executor, Ops, pushed_since, relinked_digests
from regfs.gc.journal import Journal
from regfs.gc.live import probe_registry, process_holders
from regfs.gc.lock import Lock
from regfs.gc.plan import GcOptions, GcPlan, build_plan, state_dir
from regfs.gc.rm import Selection, build_rm_plan, parse_target, select, without
from regfs.gc.trash import trash_root
from regfs.scan import Progress, Refresher, Snapshot, scan
from regfs.storage import LocalStorage, resolve_root


@dataclass(slots=True)
class GcOutcome:
    plan: GcPlan
    snapshot: Snapshot
    dry_run: bool
    executed: ExecResult | None = None
    # Set when a real run would be refused (shown by a dry run).
    would_refuse: list[str] | None = None
    live_check_skipped: bool = False


def _scan(storage: LocalStorage, progress: Progress | None, *, tag_links: bool) -> Snapshot:
    """The fast scan gc and rm plan from: the executor re-checks every folder it touches."""
    return scan(
        storage,
        workers=1,
        progress=progress,
        thorough=False,
        tag_links=tag_links,
        lazy=True,
        # Two forked shards: the work is small system calls and parsing, which threads
        # cannot overlap under the GIL (measured in benchmarks/README.md).
        processes=min(2, os.cpu_count() or 1),
    )


def live_evidence(plan: GcPlan, snap: Snapshot, registry_url: str | None) -> list[str]:
    """Reasons to believe a registry is writing to this storage now."""
    reasons = [f"unfinished upload started within --min-age: {p}" for p in plan.young_uploads]
    root = os.path.dirname(os.path.dirname(os.path.dirname(plan.v2)))
    watch = root if os.path.basename(plan.v2) == "v2" else plan.v2
    if sys.platform.startswith("linux"):
        reasons += process_holders(watch)
    if registry_url:
        why = probe_registry(registry_url, snap.repositories)
        if why:
            reasons.append(why)
    return reasons


def blocking_reasons(plan: GcPlan) -> list[str]:
    return [f"{f.kind}: {f.path}: {f.message}" for f in plan.blocking]


def collect(
    root: str | None,
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
) -> GcOutcome:
    """Run (or, with ``dry_run``, only plan) a garbage collection.

    Raises:
        RootError: ROOT is unusable.
        RefusedError: the graph is incomplete (without ``force``), a registry looks live,
            or another regfs holds the lock. Nothing is deleted.
        UsageError: the run was not confirmed.
    """
    v2 = resolve_root(root)
    storage = LocalStorage(v2)
    state = state_dir(str(v2))
    # A dry run writes nothing under ROOT, not even the lock.
    with contextlib.nullcontext() if dry_run else Lock(state, command):
        snap = _scan(storage, progress, tag_links=options.delete_untagged)
        plan = build_plan(snap, options, now=now, refresh=Refresher(storage, snap))
        if dry_run:
            refuse = None if options.force else (blocking_reasons(plan) or None)
            return GcOutcome(plan, snap, True, would_refuse=refuse)
        if plan.blocking and not options.force:
            raise RefusedError(
                "the scan met problems that leave the reference graph incomplete; nothing "
                "deleted (fix them, or use --force to keep everything they might reference)",
                reasons=blocking_reasons(plan),
            )
        return _guard_and_execute(
            plan,
            snap,
            state,
            v2,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=progress,
            ops=ops,
            command=command,
        )


def revisions_kept(plan: GcPlan, snap: Snapshot) -> dict[str, set[str]]:
    """Per repository, the revisions the scan saw that the plan does not remove: any other
    revision link found during the run is a manifest pushed (again) since the scan."""
    kept = {name: set(repo.revisions) for name, repo in snap.repositories.items()}
    for a in plan.by_step("revision"):
        # The folder names the revision (``.../revisions/<alg>/<hex>``).
        alg, hexpart = a.path.rsplit("/", 2)[1:]
        kept.get(a.repository or "", set()).discard(f"{alg}:{hexpart}")
    return kept


def _guard_and_execute(
    plan: GcPlan,
    snap: Snapshot,
    state: str,
    v2: os.PathLike[str] | str,
    *,
    registry_url: str | None,
    skip_live_check: bool,
    confirm: Callable[[GcPlan], bool] | None,
    progress: Progress | None,
    ops: Ops | None,
    command: str,
) -> GcOutcome:
    """Live-registry guard, confirmation, journal, execution: shared by gc and rm."""
    if not skip_live_check:
        reasons = live_evidence(plan, snap, registry_url)
        if reasons:
            raise RefusedError(
                "the registry looks live; put it in read-only mode or stop it "
                "(or use --skip-live-check); nothing deleted",
                reasons=reasons,
            )
    if not plan.actions:
        return GcOutcome(plan, snap, False, ExecResult(), live_check_skipped=skip_live_check)
    if confirm is not None and not confirm(plan):
        raise UsageError("not confirmed; nothing deleted")
    journal = Journal(state, plan.run_id)
    journal.write_plan(plan, command)
    trash = os.path.join(trash_root(state), plan.run_id) if plan.options.trash else None
    executor = Executor(
        plan,
        journal=journal,
        trash_dir=trash,
        ops=ops,
        progress=progress,
        relinked=lambda wanted: relinked_digests(str(v2), wanted),
        pushed=lambda: pushed_since(str(v2), revisions_kept(plan, snap)),
    )
    try:
        result = executor.run()
    finally:
        journal.close()
    journal.finish(
        {
            "done": len(result.with_status("done")),
            "skipped": len(result.with_status("skipped")),
            "gone": len(result.with_status("gone")),
            "failed": result.failed.detail if result.failed else None,
            "interrupted": result.interrupted,
            "reclaimed_bytes": result.reclaimed_bytes,
        }
    )
    return GcOutcome(plan, snap, False, result, live_check_skipped=skip_live_check)


@dataclass(slots=True)
class RmOutcome:
    selection: Selection
    removal: GcOutcome
    # `regfs gc` after the removal: the plan (dry run or no --gc) or the run (with --gc).
    gc: GcOutcome | None = None


def remove(
    root: str | None,
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
) -> RmOutcome:
    """Remove tags, manifests or repositories; then report or run what gc would reclaim.

    Raises:
        UsageError: a malformed target, or one that matches nothing (nothing is touched).
        RefusedError: live registry or lock held.
    """
    parsed = [parse_target(t) for t in targets]
    if not parsed:
        raise UsageError("no target given")
    v2 = resolve_root(root)
    storage = LocalStorage(v2)
    gopts = gc_options or GcOptions()
    state = state_dir(str(v2))
    with contextlib.nullcontext() if dry_run else Lock(state, command):
        snap = _scan(storage, progress, tag_links=True)
        sel = select(snap, parsed)
        plan = build_rm_plan(snap, sel, trash=trash, min_age=gopts.min_age, now=now)
        if dry_run:
            after = without(snap, plan)
            gc_plan = build_plan(after, gopts, now=now, refresh=Refresher(storage, after))
            return RmOutcome(sel, GcOutcome(plan, snap, True), GcOutcome(gc_plan, after, True))
        removal = _guard_and_execute(
            plan,
            snap,
            state,
            v2,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=progress,
            ops=ops,
            command=command,
        )
    if removal.executed is not None and (removal.executed.failed or removal.executed.interrupted):
        return RmOutcome(sel, removal)
    if run_gc:
        gc = collect(
            root,
            gopts,
            dry_run=False,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=None,
            progress=progress,
            ops=ops,
            now=now,
            command=command + " (gc)",
        )
    else:
        gc = collect(root, gopts, dry_run=True, progress=progress, now=now)
    return RmOutcome(sel, removal, gc)


def command_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
