"""``--jobs N`` / ``REGFS_JOBS`` on every command that scans: how many processes share the
scan and the hashing; 1 never forks; a malformed N is bad input (exit 2, one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from regfs.cli import app
from regfs.errors import EXIT_USAGE

runner = CliRunner()
GEN_TREE = Path(__file__).resolve().parent.parent / "benchmarks" / "gen_tree.py"

# Every command that scans, as it is run on ROOT (read-only: dry runs).
SCANNING: dict[str, list[str]] = {
    "tree": ["tree", "{root}", "--json"],
    "orphans": ["orphans", "{root}", "--json"],
    "check": ["check", "{root}", "--verify-digests", "--json"],
    "du": ["du", "{root}", "--json"],
    "gc": ["gc", "{root}", "--dry-run", "--min-age", "0", "--json"],
    "rm": ["rm", "{root}", "team-00/svc-0001", "--dry-run", "--min-age", "0", "--json"],
    "retain": ["retain", "{root}", "--keep-last", "2", "--dry-run", "--min-age", "0", "--json"],
}


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree with enough repositories that a scan is sharded (and hashing forks)."""
    root = tmp_path_factory.mktemp("jobs") / "root"
    subprocess.run(
        [sys.executable, str(GEN_TREE), str(root), "--repos", "120", "--tags", "3", "--force"],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every ``os.fork`` of this process, counted (the helpers exit with ``os._exit``)."""
    count: list[int] = []
    real: Callable[[], int] = os.fork

    def counting() -> int:
        count.append(1)
        return real()

    monkeypatch.setattr(os, "fork", counting)
    yield count


def invoke(args: list[str], root: Path, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [a.format(root=root) for a in args], env=env)


@pytest.mark.parametrize("command", sorted(SCANNING))
def test_jobs_1_never_forks_and_gives_what_jobs_2_gives(
    command: str, big_root: Path, forks: list[int]
) -> None:
    args = SCANNING[command]
    one = invoke([*args, "--jobs", "1"], big_root)
    assert one.exit_code in (0, 1, 3), one.stderr  # retain: equal push times refuse (3)
    assert forks == []
    two = invoke([*args, "--jobs", "2"], big_root)
    assert two.exit_code == one.exit_code, two.stderr
    assert len(forks) >= 1  # sharded: a helper was forked
    assert steady(json.loads(two.stdout)) == steady(json.loads(one.stdout))


def steady(doc: Any) -> Any:
    """A JSON document without what differs from run to run (durations, speeds, run ids,
    and what the live-registry guard saw: other registries on this host come and go)."""
    volatile = ("second", "throughput", "duration", "run_id", "_at", "guard")
    if isinstance(doc, dict):
        return {k: steady(v) for k, v in doc.items() if not any(w in k for w in volatile)}
    if isinstance(doc, list):
        return [steady(v) for v in doc]
    return doc


def test_regfs_jobs_is_the_default_and_the_option_wins(big_root: Path, forks: list[int]) -> None:
    r = invoke(SCANNING["gc"], big_root, env={"REGFS_JOBS": "1"})
    assert r.exit_code == 0, r.stderr
    assert forks == []
    r = invoke([*SCANNING["gc"], "--jobs", "2"], big_root, env={"REGFS_JOBS": "1"})
    assert r.exit_code == 0, r.stderr
    assert forks


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "", " ", "٣", "2x"])
@pytest.mark.parametrize("how", ["option", "env"])
def test_a_malformed_jobs_is_one_line_and_exit_2(
    bad: str, how: str, big_root: Path, forks: list[int]
) -> None:
    args = [*SCANNING["tree"], "--jobs", bad] if how == "option" else SCANNING["tree"]
    env = {"REGFS_JOBS": bad} if how == "env" else None
    r = invoke(args, big_root, env=env)
    if how == "env" and not bad:  # an empty variable is no variable (click)
        assert r.exit_code == 0, r.stderr
        return
    assert r.exit_code == EXIT_USAGE
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("regfs: error: --jobs (or REGFS_JOBS)")
    assert repr(bad) in lines[0]
    assert forks == []


def test_a_malformed_jobs_is_reported_before_root(tmp_path: Path) -> None:
    r = invoke(["du", str(tmp_path / "missing"), "--jobs", "0"], tmp_path)
    assert r.exit_code == EXIT_USAGE
    assert "--jobs" in r.stderr and "missing" not in r.stderr


def test_help_names_the_option_and_its_variable() -> None:
    for command in SCANNING:
        r = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0
        assert "--jobs" in r.stdout and "REGFS_JOBS" in r.stdout, command
