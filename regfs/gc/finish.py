"""The tail every deleting run ends in: the rules decide (:func:`decide`), a dry run stops
there, a real run that passes is confirmed, journaled and executed (:func:`execute_outcome`)
by the executor of its store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from regfs.errors import UsageError
from regfs.gc import s3relinks
from regfs.gc.execute import Executor, Ops
from regfs.gc.journal import Journal
from regfs.gc.live import Reason
from regfs.gc.outcome import GcOutcome, GcRefused
from regfs.gc.plan import GcPlan
from regfs.gc.relinks import expected_revisions, pushed_since, relinked_digests
from regfs.gc.rules import rules
from regfs.gc.s3exec import S3Executor
from regfs.gc.steps import ExecResult, Status, Step
from regfs.scan import Progress
from regfs.storage.local import LocalStorage
from regfs.storage.locate import state_of
from regfs.storage.s3 import S3Storage

# A confirmation that took longer than this (seconds) runs the guard again before deleting.
RECHECK_AFTER = 1.0
# What a run works on: a registry folder or a bucket.
Store = LocalStorage | S3Storage


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
