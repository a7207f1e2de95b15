"""regfs.parallel.pool: a task list shared with forked helpers, results in order, none lost."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import procs
import pytest

from regfs.parallel import pool

PARENT = os.getpid()
GEN_TREE = Path(__file__).resolve().parent.parent / "benchmarks" / "gen_tree.py"


def _pack(r: tuple[int, int]) -> bytes:
    return pickle.dumps(r)


def _unpack(b: bytes) -> tuple[int, int]:
    value: tuple[int, int] = pickle.loads(b)
    return value


def slow_square(x: int) -> tuple[int, int]:
    time.sleep(0.01)
    return x * x, os.getpid()


needs_fork = pytest.mark.skipif(not pool.can_fork(), reason="platform without fork")


@needs_fork
def test_results_in_task_order_and_the_work_is_shared() -> None:
    tasks = list(range(60))
    seen: list[int] = []
    got = pool.run_tasks(
        tasks, slow_square, pack=_pack, unpack=_unpack, processes=2, on_result=seen.append
    )
    assert [v for v, _ in got] == [x * x for x in tasks]
    pids = {pid for _, pid in got}
    assert PARENT in pids and len(pids) == 2  # this process and one helper both worked
    assert sorted(seen) == tasks  # one notice per task


def test_one_process_runs_everything_here_without_packing() -> None:
    def never(_: object) -> bytes:
        raise AssertionError("packed without a helper")

    got = pool.run_tasks([1, 2, 3], slow_square, pack=never, unpack=_unpack, processes=1)
    assert got == [(1, PARENT), (4, PARENT), (9, PARENT)]
    assert pool.run_tasks([], slow_square, pack=_pack, unpack=_unpack, processes=2) == []


@needs_fork
def test_a_helper_killed_mid_task_loses_nothing() -> None:
    def dies_in_helper(x: int) -> tuple[int, int]:
        if os.getpid() != PARENT:
            os.kill(os.getpid(), signal.SIGKILL)  # with the task it claimed
        return slow_square(x)

    tasks = list(range(30))
    got = pool.run_tasks(tasks, dies_in_helper, pack=_pack, unpack=_unpack, processes=2)
    assert [v for v, _ in got] == [x * x for x in tasks]
    assert {pid for _, pid in got} == {PARENT}


@needs_fork
def test_a_helper_that_raises_hands_its_task_back() -> None:
    def fails_in_helper(x: int) -> tuple[int, int]:
        if os.getpid() != PARENT:
            raise RuntimeError("helper trouble")
        return slow_square(x)

    got = pool.run_tasks(list(range(20)), fails_in_helper, pack=_pack, unpack=_unpack, processes=2)
    assert [v for v, _ in got] == [x * x for x in range(20)]
    assert {pid for _, pid in got} == {PARENT}


@needs_fork
def test_an_error_here_propagates_and_stops_the_helpers() -> None:
    def fails_here(x: int) -> tuple[int, int]:
        if os.getpid() == PARENT and x > 3:
            raise ValueError("bad task")
        return slow_square(x)

    with pytest.raises(ValueError, match="bad task"):
        pool.run_tasks(list(range(40)), fails_here, pack=_pack, unpack=_unpack, processes=2)
    import multiprocessing

    assert multiprocessing.active_children() == []


# --- helpers never outlive this process -----------------------------------------------------


def _cwd_and_pid(_: int) -> tuple[str, int]:
    time.sleep(0.01)
    return os.getcwd(), os.getpid()


@needs_fork
def test_helpers_work_from_the_root_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # as a user running `regfs gc .` inside ROOT
    got = pool.run_tasks(
        list(range(20)),
        _cwd_and_pid,
        pack=pickle.dumps,
        unpack=pickle.loads,
        processes=2,
    )
    helpers = {cwd for cwd, pid in got if pid != PARENT}
    assert helpers == {"/"}
    assert os.getcwd() == str(tmp_path)  # this process stays where it was


# A parent that forks one helper and then never reads what it sends: the helper's task either
# returns more than a pipe holds (it blocks in the write) or sleeps. The helper prints its pid.
PARENT_SCRIPT = """
import os, sys, time
from regfs.parallel import pool

mode = sys.argv[1]
if mode == "epipe":
    pool.prepare_helpers = lambda: None  # no parent-death signal: EPIPE alone must do
parent = os.getpid()

def run(x):
    if os.getpid() == parent:
        time.sleep(120)  # never reads the helper's result
    print(os.getpid(), flush=True)
    if mode == "epipe":
        return b"x" * (8 << 20)  # far more than a pipe holds: blocks in the write
    time.sleep(120)
    return b""

pool.run_tasks(list(range(4)), run, pack=lambda b: b, unpack=lambda b: b, processes=2)
"""


def _helper_outlives_parent(mode: str) -> list[procs.Proc]:
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        helper = int(proc.stdout.readline())
        if mode == "epipe":  # wait until it really is stuck in the write
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(f"/proc/{helper}/wchan", encoding="ascii") as f:
                    if "pipe" in f.read():
                        break
                time.sleep(0.01)
            else:
                raise AssertionError("the helper never blocked in its pipe write")
        proc.kill()
        proc.wait()
        return procs.wait_group_gone(proc.pid)
    finally:
        procs.wait_group_gone(proc.pid, 0)
        if proc.stdout is not None:
            proc.stdout.close()


@needs_fork
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_helper_blocked_in_a_pipe_write_exits_when_the_parent_dies() -> None:
    # Without the death signal: the helper holds no read end of its pipe, so the write fails
    # with EPIPE once the parent is gone (it used to hold one, and blocked forever).
    assert _helper_outlives_parent("epipe") == []


@needs_fork
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
def test_a_busy_helper_is_killed_with_its_parent() -> None:
    # Not writing, not reading: only the parent-death signal can end it.
    assert _helper_outlives_parent("sleep") == []


@pytest.fixture(scope="module")
def generated_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("killed") / "root"
    subprocess.run(
        [sys.executable, str(GEN_TREE), str(root), "--repos", "300", "--tags", "5", "--force"],
        check=True,
        capture_output=True,
    )
    return root


@needs_fork
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
@pytest.mark.parametrize(
    "command",
    [["gc", ".", "--dry-run", "--min-age", "0"], ["check", ".", "--verify-digests"]],
    ids=["gc-dry-run", "check-verify"],
)
def test_killing_regfs_mid_scan_leaves_no_process(generated_tree: Path, command: list[str]) -> None:
    """regfs is killed the ways it happens (SIGKILL, SIGTERM, SIGHUP), at random points while
    its helpers work; nothing of its process group may survive it. Run from inside ROOT, so a
    survivor would also keep a working directory there."""
    rng = random.Random(9)
    with_helpers = 0
    for sig in [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP] * 2:
        proc = subprocess.Popen(
            [sys.executable, "-m", "regfs", *command],
            cwd=generated_tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while not procs.children(proc.pid) and proc.poll() is None:
                assert time.monotonic() < deadline, "no helper was ever forked"
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.04))
            with_helpers += bool(procs.children(proc.pid))
            proc.send_signal(sig)
            proc.wait()
            left = procs.wait_group_gone(proc.pid)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            procs.wait_group_gone(proc.pid, 0)
        assert left == [], f"{signal.Signals(sig).name} left {left}"
    assert with_helpers >= 3, "too few kills landed while helpers were running"


# --- no fork while another thread runs; notes ------------------------------------------------


@needs_fork
def test_no_fork_while_another_thread_runs() -> None:
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not pool.fork_safe()
        got = pool.run_tasks(list(range(10)), slow_square, pack=_pack, unpack=_unpack, processes=4)
    finally:
        stop.set()
        other.join()
    assert [v for v, _ in got] == [x * x for x in range(10)]
    assert {pid for _, pid in got} == {PARENT}  # everything ran here
    assert pool.fork_safe()


def _noting(x: int, note: pool.Note) -> tuple[int, int]:
    for _ in range(3):
        note(x)
    return slow_square(x)


@needs_fork
@pytest.mark.parametrize("processes", [1, 3])
def test_notes_reach_this_process_from_every_task(processes: int) -> None:
    noted: list[int] = []
    got = pool.run_noting(
        list(range(12)),
        _noting,
        pack=_pack,
        unpack=_unpack,
        processes=processes,
        on_note=noted.append,
    )
    assert [v for v, _ in got] == [x * x for x in range(12)]
    assert sorted(noted) == sorted(x for x in range(12) for _ in range(3))
    assert (len({pid for _, pid in got}) > 1) == (processes > 1)
