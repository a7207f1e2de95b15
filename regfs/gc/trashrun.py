"""``regfs restore`` and ``regfs trash purge`` as runs: under the lock gc takes, the run id
checked through the layout before it names anything."""

from __future__ import annotations

from collections.abc import Callable

from regfs.errors import UsageError
from regfs.gc import trash
from regfs.gc.lock import Lock
from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.layout.folders import LayoutError, check_run_id
from regfs.storage.base import StateStore, Storage


def restore_run(state: StateStore, storage: Storage, run_id: str) -> RestoreResult:
    """Put trash run ``run_id`` back, under the lock; never overwrites.

    What is not a run id regfs writes (``../..``, a path) is no run, and nothing is joined
    to it.

    Raises:
        UsageError: no such run.
        RefusedError: another regfs holds the lock.
    """
    try:
        check_run_id(run_id)
    except LayoutError:
        raise UsageError(f"no run {run_id!r} in {state.path('runs')}") from None
    with Lock(state, f"regfs restore {run_id}"):
        return trash.restore(state, storage, run_id)


def purge_runs(
    state: StateStore,
    older_than: float,
    *,
    dry_run: bool = False,
    confirm: Callable[[list[TrashRun]], bool] | None = None,
    now: float | None = None,
) -> PurgeResult:
    """Purge the trash runs older than ``older_than`` seconds (0: all), under the lock, after
    ``confirm``; a dry run only lists them.

    Raises:
        UsageError: not confirmed (nothing deleted).
        RefusedError: another regfs holds the lock.
    """
    if dry_run:
        return PurgeResult(trash.purgeable(state, older_than, now), dry_run=True)
    with Lock(state, "regfs trash purge"):
        runs = trash.purgeable(state, older_than, now)
        if runs and confirm is not None and not confirm(runs):
            raise UsageError("not confirmed; nothing deleted")
        return PurgeResult(trash.purge(state, runs), dry_run=False)
