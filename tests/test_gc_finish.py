"""regfs.gc.finish: the tail every deleting run ends in (decide, confirm, journal, execute)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builder import StoreBuilder
from gc_helpers import fingerprint

from regfs.errors import UsageError
from regfs.gc.finish import Run, decide, execute_outcome, left_paths
from regfs.gc.live import Reason
from regfs.gc.outcome import GcOutcome, GcRefused
from regfs.gc.plan import GcOptions
from regfs.gc.run import collect
from regfs.gc.steps import ExecResult, Status, StepResult


def _planned(tmp_path: Path) -> tuple[StoreBuilder, GcOutcome]:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"])
    b.orphan_blob(b"orphan one")
    b.orphan_blob(b"orphan two")
    out = collect(b.storage(), GcOptions(min_age=0), dry_run=True, skip_live_check=True)
    assert len(out.plan.actions) >= 2 and out.would_refuse is None
    return b, out


def _real(out: GcOutcome) -> GcOutcome:
    return GcOutcome(out.plan, out.snapshot, False, live_check_skipped=True)


def test_left_paths_are_the_failed_and_the_never_started(tmp_path: Path) -> None:
    _, out = _planned(tmp_path)
    first, second, *rest = out.plan.actions
    result = ExecResult([StepResult(first, Status.DONE), StepResult(second, Status.FAILED, "EIO")])
    assert left_paths(out.plan, result) == [second.path] + [a.path for a in rest]


def test_a_dry_run_stops_after_the_rules(tmp_path: Path) -> None:
    b, out = _planned(tmp_path)
    before = fingerprint(b.root)
    done = decide(
        out,
        Run(b.storage()),
        force=False,
        lock=Reason("lock", "held elsewhere"),
        registry_url=None,
        skip_live_check=True,
    )
    assert done.executed is None and [r.kind for r in done.would_refuse or []] == ["lock"]
    assert fingerprint(b.root) == before


def test_a_refused_real_run_raises_and_deletes_nothing(tmp_path: Path) -> None:
    b, out = _planned(tmp_path)
    before = fingerprint(b.root)
    with pytest.raises(GcRefused) as info:
        decide(
            _real(out),
            Run(b.storage()),
            force=False,
            lock=Reason("lock", "held elsewhere"),
            registry_url=None,
            skip_live_check=True,
        )
    assert [r.kind for r in info.value.details] == ["lock"]
    assert fingerprint(b.root) == before
    assert not (b.root / ".regfs" / "runs").exists()


def test_not_confirmed_writes_no_journal_and_deletes_nothing(tmp_path: Path) -> None:
    b, out = _planned(tmp_path)
    before = fingerprint(b.root)
    with pytest.raises(UsageError, match="not confirmed"):
        execute_outcome(_real(out), Run(b.storage(), confirm=lambda plan: False))
    assert fingerprint(b.root) == before


def test_a_slow_confirmation_decides_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, out = _planned(tmp_path)
    before = fingerprint(b.root)
    monkeypatch.setattr("regfs.gc.finish.RECHECK_AFTER", -1.0)
    real = _real(out)
    with pytest.raises(GcRefused):
        execute_outcome(
            real,
            Run(b.storage(), confirm=lambda plan: True),
            recheck=lambda: [Reason("writer", "a push started")],
        )
    assert [r.kind for r in real.would_refuse or []] == ["writer"]
    assert fingerprint(b.root) == before


def test_a_real_run_journals_then_executes(tmp_path: Path) -> None:
    b, out = _planned(tmp_path)
    done = execute_outcome(_real(out), Run(b.storage(), command="regfs gc --yes"))
    assert done.executed is not None and done.executed.failed is None
    run = b.root / ".regfs" / "runs" / out.plan.run_id
    plan = json.loads((run / "plan.json").read_text())
    assert plan["command"] == "regfs gc --yes"
    assert len(plan["actions"]) == len(out.plan.actions)
    result = json.loads((run / "result.json").read_text())
    assert result["done"] == len(out.plan.actions) and result["left"] == []
    assert result["reclaimed_bytes"] == out.plan.reclaimed_bytes


def test_an_empty_plan_runs_nothing(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"])
    out = collect(b.storage(), GcOptions(min_age=0), dry_run=True, skip_live_check=True)
    assert out.plan.actions == []
    done = execute_outcome(_real(out), Run(b.storage(), confirm=lambda plan: False))
    assert done.executed == ExecResult()
    assert not (b.root / ".regfs" / "runs").exists()
