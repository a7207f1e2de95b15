"""On a terminal, regfs never forks while a second thread of its own is alive.

The live progress display (:class:`regfs.cli.console.Display`) used to be redrawn by rich's
refresh thread while the scan forked its helpers: a forked copy of a threaded process holds
whatever lock the other thread held at that instant. The display is now redrawn by the
progress reports, and :mod:`regfs.parallel.pool` refuses to fork while another thread runs.

Tested the way users meet it: ``regfs gc --dry-run`` (and ``check --verify-digests``) in a
real pseudo-terminal, on a tree large enough to be sharded, under ``strace -f`` recording
every ``clone``: a thread is a clone with ``CLONE_THREAD``, alive until its ``+++ exited``;
a fork is a clone without it. The screen a user reads is compared with the same command's
output without a terminal and without forking (``--jobs 1``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from terminal import PtySession

GEN_TREE = Path(__file__).resolve().parent.parent / "benchmarks" / "gen_tree.py"

needs_strace = pytest.mark.skipif(
    shutil.which("strace") is None and not os.environ.get("CI"), reason="strace"
)

_CLONE = re.compile(r"^(\d+) +(clone3?|fork|vfork)\((.*)\) += (\d+)$")
_EXIT = re.compile(r"^(\d+) +\+\+\+ (exited|killed)")


@dataclass
class Clones:
    """What ``strace -f -e trace=clone,clone3,fork,vfork`` says the first process did."""

    forks: int = 0
    threads: int = 0
    # For each fork: the threads of the process alive at that instant.
    alive_at_fork: list[set[int]] = field(default_factory=list)


def clones(log: str) -> Clones:
    lines = log.splitlines()
    main = int(lines[0].split()[0])
    out = Clones()
    alive: set[int] = set()
    for line in lines:
        if m := _CLONE.match(line):
            pid, args, child = int(m.group(1)), m.group(3), int(m.group(4))
            if pid != main and pid not in alive:
                continue  # a helper's own children (none expected)
            if "CLONE_THREAD" in args:
                out.threads += 1
                alive.add(child)
            else:
                out.forks += 1
                out.alive_at_fork.append(set(alive))
        elif (m := _EXIT.match(line)) is not None:
            alive.discard(int(m.group(1)))
    return out


def test_the_strace_reader() -> None:
    log = "\n".join(
        [
            "10 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 11",
            "10 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SETTLS, exit_signal=0}, 88) = 12",
            "11 +++ exited with 0 +++",
            "10 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 13",
            "12 +++ exited with 0 +++",
            "10 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 14",
            "10 +++ exited with 0 +++",
        ]
    )
    got = clones(log)
    assert (got.forks, got.threads) == (3, 1)
    assert got.alive_at_fork == [set(), {12}, set()]


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 repositories: more than the scan's threshold for sharding (64)."""
    root = tmp_path_factory.mktemp("pty") / "root"
    subprocess.run(
        [sys.executable, str(GEN_TREE), str(root), "--repos", "300", "--tags", "3", "--force"],
        check=True,
        capture_output=True,
    )
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "REGFS_JOBS")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return env


def _steady(lines: list[str]) -> list[str]:
    """Without what differs between two runs: the run id, durations and speeds, and what the
    live-registry guard saw (other registries on this host come and go)."""
    out = []
    guard = False
    for line in lines:
        if line.startswith("Live-registry guard:"):
            guard = True
            continue
        if guard and line.startswith(" "):
            continue
        guard = False
        line = re.sub(r"run \d{8}T\d{6}Z-[0-9a-f]+", "run RUN", line)
        line = re.sub(r"\d+(\.\d+)? ?(s|ms|MB/s|kB/s|GB/s|B/s)\b", "T", line)
        out.append(line.rstrip())
    return [line for line in out if line]


@needs_strace
@pytest.mark.parametrize(
    "command",
    [["gc", "--dry-run", "--min-age", "0"], ["check", "--verify-digests"]],
    ids=["gc-dry-run", "check-verify-digests"],
)
def test_no_fork_while_a_second_thread_is_alive_on_a_terminal(
    big_root: Path, tmp_path: Path, command: list[str]
) -> None:
    assert shutil.which("strace"), "strace is needed (.ci/run installs it)"
    log = tmp_path / "strace.log"
    argv = [
        "strace", "-f", "-q", "-e", "trace=clone,clone3,fork,vfork", "-e", "signal=none",
        "-o", str(log), sys.executable, "-m", "regfs", command[0], str(big_root), *command[1:],
        "--jobs", "2",
    ]  # fmt: skip
    session = PtySession(argv, env=_env(), cwd=str(tmp_path), width=100, height=40)
    try:
        code = session.wait(timeout=240)
    finally:
        session.close()
    assert code in (0, 1), session.output
    assert "━" in session.output  # the live display was drawn
    seen = clones(log.read_text())
    assert seen.forks >= 1, "no helper forked: the tree was not sharded"
    assert seen.alive_at_fork == [set()] * seen.forks, seen
    assert seen.threads == 0  # the display draws without a thread of its own

    plain = subprocess.run(
        [sys.executable, "-m", "regfs", command[0], str(big_root), *command[1:], "--jobs", "1"],
        env={**_env(), "COLUMNS": "100"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert plain.returncode == code, plain.stderr
    screen = session.screen(width=100)
    assert _steady(screen) == _steady((plain.stderr + plain.stdout).splitlines())
