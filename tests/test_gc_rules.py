"""regfs.gc.rules: the one rule set of every deleting run, dry or real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from regfs.gc.lock import Lock
from regfs.gc.plan import GcOptions, GcPlan
from regfs.gc.rm import Breakage, RmPlan
from regfs.gc.rules import blocking_reasons, held_lock, locked, rules
from regfs.model.findings import Finding, Kind
from regfs.storage.localstate import LocalStateStore


def _plan(cls: type[GcPlan] = GcPlan, **kw: object) -> GcPlan:
    return cls("20261205T000000Z-1", "/nowhere/v2", GcOptions(), 0.0, [], [], [], **kw)  # type: ignore[arg-type]


def _blocking() -> Finding:
    return Finding(Kind.UNREADABLE, "repositories/app/_manifests", "denied", blocks_gc=True)


def test_blocking_findings_become_scan_problem_reasons() -> None:
    plan = _plan()
    plan.blocking.append(_blocking())
    [reason] = blocking_reasons(plan)
    assert reason.kind == "scan_problem" and reason.path == "repositories/app/_manifests"
    assert "unreadable" in reason.message and "denied" in reason.message


def test_force_lets_scan_problems_pass_but_never_the_lock(tmp_path: Path) -> None:
    plan = _plan()
    plan.blocking.append(_blocking())
    assert held_lock(LocalStateStore(str(tmp_path))) is None
    lock = Lock(LocalStateStore(str(tmp_path)), "regfs gc (elsewhere)")
    lock.acquire()
    try:
        reason = held_lock(LocalStateStore(str(tmp_path)))
        assert reason is not None and reason.kind == "lock" and reason.pid == os.getpid()
        for force in (False, True):
            refusals, _ = rules(
                plan, force=force, lock=reason, registry_url=None, skip_live_check=True
            )
            kinds = sorted(r.kind for r in refusals)
            assert kinds == (["lock"] if force else ["lock", "scan_problem"])
    finally:
        lock.release()


def test_a_lock_of_a_dead_process_on_this_host_is_stale(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "lock").write_text(
        json.dumps({"host": socket.gethostname(), "pid": dead.pid, "started": 0, "command": "x"})
    )
    assert held_lock(LocalStateStore(str(tmp_path))) is None
    # Another host's lock cannot be judged from here: it holds.
    (tmp_path / "lock").write_text(
        json.dumps({"host": "elsewhere", "pid": dead.pid, "started": 0, "command": "x"})
    )
    reason = held_lock(LocalStateStore(str(tmp_path)))
    assert reason is not None and "elsewhere" in reason.message


def test_a_removal_that_breaks_a_tag_refuses_unless_forced() -> None:
    plan = _plan(RmPlan)
    assert isinstance(plan, RmPlan)
    plan.breaks.append(Breakage("app", "v1", (), still_pulls=False, issues=("gone",)))
    plan.blocking.append(_blocking())
    refusals, _ = rules(plan, force=False, lock=None, registry_url=None, skip_live_check=True)
    assert [r.kind for r in refusals] == ["breaks_tag", "scan_problem"]
    assert "app:v1 no longer pulls" in refusals[0].message
    refusals, _ = rules(plan, force=True, lock=None, registry_url=None, skip_live_check=True)
    assert refusals == []


def test_locked_takes_the_lock_for_a_real_run_only(tmp_path: Path) -> None:
    state = LocalStateStore(str(tmp_path))
    with locked(state, "regfs gc", dry_run=True) as reason:
        assert reason is None and not (tmp_path / "lock").exists()
    with locked(state, "regfs gc", dry_run=False) as reason:
        assert reason is None and (tmp_path / "lock").exists()
        # A second run, dry or real, is told who holds it.
        for dry in (True, False):
            with locked(state, "regfs gc", dry_run=dry) as other:
                assert other is not None and other.kind == "lock"
    assert not (tmp_path / "lock").exists()
