"""One ``regfs retain`` from ROOT to result: lock, scan, select, plan, guard, confirm, execute.

The same path as ``regfs gc`` and ``regfs rm`` (:mod:`regfs.gc.run`): one plan, one run id,
one lock, one journal, one ``--trash`` run that ``regfs restore`` brings back whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from regfs.defaults import MIN_AGE
from regfs.errors import UsageError
from regfs.gc.execute import Ops
from regfs.gc.finish import Run, Store, decide
from regfs.gc.live import Reason
from regfs.gc.outcome import GcOutcome, GcRefused
from regfs.gc.plan import GcPlan
from regfs.gc.probe import check_url
from regfs.gc.rules import locked
from regfs.gc.run import open_root, scan_for_plan
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.retain.created import created_reader
from regfs.retain.plan import RetainPlan, build_retain_plan
from regfs.retain.policy import By, Rule
from regfs.retain.select import Selection, select
from regfs.scan import Progress, Refresher
from regfs.storage.locate import state_of


@dataclass(slots=True)
class RetainOutcome:
    """The selection and the run (or, dry, the plan) that carries it out."""

    selection: Selection
    run: GcOutcome

    @property
    def plan(self) -> RetainPlan:
        """The retention plan the run carried out (dry: would carry out)."""
        assert isinstance(self.run.plan, RetainPlan)
        return self.run.plan

    @property
    def refused_repositories(self) -> list[Reason]:
        """Repositories left untouched for safety (the exit status is then 3)."""
        return [
            Reason("retain_refused", f"{r.name}: {r.refused}", path=r.name)
            for r in self.selection.refused
        ]


def retain(
    root: str | Store | None,
    rules: list[Rule],
    *,
    dry_run: bool,
    trash: bool = False,
    min_age: float = MIN_AGE,
    registry_url: str | None = None,
    skip_live_check: bool = False,
    confirm: Callable[[GcPlan], bool] | None = None,
    progress: Progress | None = None,
    ops: Ops | None = None,
    now: float | None = None,
    command: str = "regfs retain",
    tuning: Tuning = SERIAL,
) -> RetainOutcome:
    """Apply retention ``rules`` to ROOT: a folder, or a store (a bucket) as
    :func:`regfs.gc.run.collect` takes it (or, with ``dry_run``, only plan it).

    A repository the rules cannot judge (equal pushed-at seconds, unreadable tags) is left
    untouched and listed in ``selection.refused``; the others proceed. A dry run and a real
    run refuse by the same rules as gc (blocking scan problems, live registry, lock held).

    Raises:
        RootError: ROOT is unusable.
        UsageError: no rule, a malformed ``registry_url``, or the run was not confirmed.
        RetainRefused: the graph is incomplete, something may write to ROOT, or another regfs
            holds the lock. Nothing is deleted.
    """
    if not rules:
        raise UsageError("no retention rule given")
    url = check_url(registry_url) if registry_url else None
    storage = open_root(root)
    now = time.time() if now is None else now
    with locked(state_of(storage), command, dry_run) as lock:
        # ``seen``: what the scan read through (a bucket: its one listing), which also
        # answers the refresh and the reads of ``--by created``.
        snap, seen = scan_for_plan(storage, progress, tag_links=True, tuning=tuning)
        created = created_reader(seen, snap) if any(r.by is By.CREATED for r in rules) else None
        sel = select(snap, rules, now=now, min_age=min_age, created=created)
        plan = build_retain_plan(
            snap, sel, trash=trash, min_age=min_age, now=now, refresh=Refresher(seen, snap)
        )
        outcome = GcOutcome(plan, snap, dry_run, live_check_skipped=skip_live_check)
        result = RetainOutcome(sel, outcome)
        try:
            decide(
                outcome,
                Run(storage, confirm, progress, ops, command),
                force=False,
                lock=lock,
                registry_url=url,
                skip_live_check=skip_live_check,
            )
        except GcRefused as exc:
            raise RetainRefused(result, exc.details) from None
        return result


class RetainRefused(GcRefused):
    """A real retention run refused for safety; ``result`` holds the selection and the plan."""

    def __init__(self, result: RetainOutcome, reasons: list[Reason]) -> None:
        super().__init__(result.run, reasons)
        self.result = result
