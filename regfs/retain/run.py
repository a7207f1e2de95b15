"""One ``regfs retain`` from ROOT to result: lock, scan, select, plan, guard, confirm, execute.

The same path as ``regfs gc`` and ``regfs rm`` (:mod:`regfs.gc.run`): one plan, one run id,
one lock, one journal, one ``--trash`` run that ``regfs restore`` brings back whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Unpack

from regfs.defaults import MIN_AGE
from regfs.errors import UsageError
from regfs.gc.finish import Store
from regfs.gc.live import Reason
from regfs.gc.outcome import GcOutcome, GcRefused
from regfs.gc.run import locked_scan
from regfs.gc.runoptions import RunOptions, check_options
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.retain.created import created_reader
from regfs.retain.plan import RetainPlan, build_retain_plan
from regfs.retain.policy import By, Rule
from regfs.retain.select import Selection, select
from regfs.scan import Refresher


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
    now: float | None = None,
    tuning: Tuning = SERIAL,
    **kw: Unpack[RunOptions],
) -> RetainOutcome:
    """Apply retention ``rules`` to ROOT: a folder, or a store (a bucket) as
    :func:`regfs.gc.run.collect` takes it (or, with ``dry_run``, only plan it).

    A repository the rules cannot judge (equal pushed-at seconds, unreadable tags) is left
    untouched and listed in ``selection.refused``; the others proceed. A dry run and a real
    run refuse by the same rules as gc (blocking scan problems, live registry, lock held).
    ``kw``: the :class:`~regfs.gc.runoptions.RunOptions` (``command`` defaults to
    ``regfs retain``).

    Raises:
        RootError: ROOT is unusable.
        UsageError: no rule, a malformed ``registry_url``, or the run was not confirmed.
        RetainRefused: the graph is incomplete, something may write to ROOT, or another regfs
            holds the lock. Nothing is deleted.
    """
    check_options(kw, "retain")
    if not rules:
        raise UsageError("no retention rule given")
    with locked_scan(
        root, kw, command="regfs retain", dry_run=dry_run, tag_links=True, now=now, tuning=tuning
    ) as frame:
        # ``seen``: what the scan read through (a bucket: its one listing), which also
        # answers the refresh and the reads of ``--by created``.
        snap, seen, now = frame.snap, frame.seen, frame.now
        created = created_reader(seen, snap) if any(r.by is By.CREATED for r in rules) else None
        sel = select(snap, rules, now=now, min_age=min_age, created=created)
        plan = build_retain_plan(
            snap, sel, trash=trash, min_age=min_age, now=now, refresh=Refresher(seen, snap)
        )
        outcome = frame.outcome(plan, dry_run=dry_run)
        result = RetainOutcome(sel, outcome)
        try:
            frame.tail.decide(outcome, force=False)
        except GcRefused as exc:
            raise RetainRefused(result, exc.details) from None
        return result


class RetainRefused(GcRefused):
    """A real retention run refused for safety; ``result`` holds the selection and the plan."""

    def __init__(self, result: RetainOutcome, reasons: list[Reason]) -> None:
        super().__init__(result.run, reasons)
        self.result = result
