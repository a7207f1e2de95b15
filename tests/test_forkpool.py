"""regfs.forkpool: shared task list over forked helpers, results in task order, no task lost."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest

from regfs import forkpool

PARENT = os.getpid()


def _pack(r: tuple[int, int]) -> bytes:
    return pickle.dumps(r)


def _unpack(b: bytes) -> tuple[int, int]:
    value: tuple[int, int] = pickle.loads(b)
    return value


def slow_square(x: int) -> tuple[int, int]:
    time.sleep(0.01)
    return x * x, os.getpid()


needs_fork = pytest.mark.skipif(not forkpool.can_fork(), reason="platform without fork")


@needs_fork
def test_results_in_task_order_and_the_work_is_shared() -> None:
    tasks = list(range(60))
    seen: list[int] = []
    got = forkpool.run_tasks(
        tasks, slow_square, pack=_pack, unpack=_unpack, processes=2, on_result=seen.append
    )
    assert [v for v, _ in got] == [x * x for x in tasks]
    pids = {pid for _, pid in got}
    assert PARENT in pids and len(pids) == 2  # this process and one helper both worked
    assert sorted(seen) == tasks  # one notice per task


def test_one_process_runs_everything_here_without_packing() -> None:
    def never(_: object) -> bytes:
        raise AssertionError("packed without a helper")

    got = forkpool.run_tasks([1, 2, 3], slow_square, pack=never, unpack=_unpack, processes=1)
    assert got == [(1, PARENT), (4, PARENT), (9, PARENT)]
    assert forkpool.run_tasks([], slow_square, pack=_pack, unpack=_unpack, processes=2) == []


@needs_fork
def test_a_helper_killed_mid_task_loses_nothing() -> None:
    def dies_in_helper(x: int) -> tuple[int, int]:
        if os.getpid() != PARENT:
            os.kill(os.getpid(), signal.SIGKILL)  # with the task it claimed
        return slow_square(x)

    tasks = list(range(30))
    got = forkpool.run_tasks(tasks, dies_in_helper, pack=_pack, unpack=_unpack, processes=2)
    assert [v for v, _ in got] == [x * x for x in tasks]
    assert {pid for _, pid in got} == {PARENT}


@needs_fork
def test_a_helper_that_raises_hands_its_task_back() -> None:
    def fails_in_helper(x: int) -> tuple[int, int]:
        if os.getpid() != PARENT:
            raise RuntimeError("helper trouble")
        return slow_square(x)

    got = forkpool.run_tasks(
        list(range(20)), fails_in_helper, pack=_pack, unpack=_unpack, processes=2
    )
    assert [v for v, _ in got] == [x * x for x in range(20)]
    assert {pid for _, pid in got} == {PARENT}


@needs_fork
def test_an_error_here_propagates_and_stops_the_helpers() -> None:
    def fails_here(x: int) -> tuple[int, int]:
        if os.getpid() == PARENT and x > 3:
            raise ValueError("bad task")
        return slow_square(x)

    with pytest.raises(ValueError, match="bad task"):
        forkpool.run_tasks(list(range(40)), fails_here, pack=_pack, unpack=_unpack, processes=2)
    import multiprocessing

    assert multiprocessing.active_children() == []
