"""How a deleting run ended, as a value: :class:`GcOutcome` (its plan, the safety rules'
verdict, what was done), :class:`RunStatus`, and :class:`GcRefused` for a real run refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from regfs.errors import RefusedError
from regfs.gc.live import Reason
from regfs.gc.plan import GcPlan
from regfs.gc.steps import ExecResult
from regfs.model.snapshot import Snapshot

if TYPE_CHECKING:
    from regfs.gc.removal import RmOutcome


class RunStatus(StrEnum):
    """Where a gc or rm run ended (the ``status`` of its --json document)."""

    PLANNED = "planned"  # a dry run, or a plan not (yet) executed
    REFUSED = "refused"  # refused for safety (a dry run: a real run would refuse)
    DONE = "done"  # executed to the end
    FAILED = "failed"  # a deletion step failed; the run stopped there
    INTERRUPTED = "interrupted"  # stopped between two steps (Ctrl-C)


@dataclass(slots=True)
class GcOutcome:
    """One run (or one part of a run): its plan, what the safety rules said, what was done."""

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
