"""The one rule set of every deleting run (gc, rm, retain, a planned run executed later),
dry or real: the scan problems that block, the lock, the live-registry guard, the tags a
removal breaks."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from regfs.errors import RefusedError
from regfs.gc.journal import state_store
from regfs.gc.live import Reason, guard
from regfs.gc.lock import LOCK, Lock, pid_alive, read_holder
from regfs.gc.plan import GcPlan
from regfs.gc.rm import RmPlan
from regfs.storage.base import StateStore


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
