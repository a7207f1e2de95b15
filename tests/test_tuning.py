"""regfs.parallel.tuning: one process per usable CPU unless told, positive values only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfs.parallel.machine import usable_cpus
from regfs.parallel.tuning import IO_THREADS, SERIAL, Tuning

NOTHING: dict[str, str] = {}  # a machine without cgroup files


def test_for_machine_follows_affinity_and_quota() -> None:
    files = {"/proc/self/cgroup": "0::/", "/sys/fs/cgroup/cpu.max": "200000 100000"}
    assert Tuning.for_machine(read=files.get, affinity=8).processes == 2
    assert Tuning.for_machine(read=NOTHING.get, affinity=8).processes == 8
    assert Tuning.for_machine().processes == usable_cpus()


def test_jobs_wins_over_the_machine() -> None:
    assert Tuning.for_machine(1, affinity=8).processes == 1
    assert Tuning.for_machine(5, affinity=1).processes == 5


def test_threads_do_not_follow_the_cores() -> None:
    # I/O-bound threads wait on the network: their count is not the CPU count.
    assert Tuning.for_machine(read=NOTHING.get, affinity=1).threads == IO_THREADS
    assert Tuning.for_machine(read=NOTHING.get, affinity=64).threads == IO_THREADS


def test_serial_never_forks() -> None:
    assert SERIAL.processes == 1
    assert SERIAL.with_processes(3) == Tuning(processes=3)


@given(st.sampled_from(["processes", "threads", "scan_min_repos", "hash_chunk_bytes"]))
def test_values_must_be_positive_integers(name: str) -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=name):
            Tuning(**{name: bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="processes"):
        Tuning.for_machine(0)
