"""regfs.parallel.machine: the CPUs this process may use, from its affinity and its cgroup's
CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``)."""

from __future__ import annotations

import os

import pytest

from regfs.parallel.machine import affinity_cpus, quota_cpus, read_text, usable_cpus

V2_OWN = "0::/system.slice/regfs.service\n"
V1_OWN = "12:memory:/job\n4:cpu,cpuacct:/job\n1:name=systemd:/job\n"

NOTHING: dict[str, str] = {}  # a machine without cgroup files


def test_no_cgroup_file_means_no_quota() -> None:
    assert quota_cpus(NOTHING.get) is None
    assert usable_cpus(NOTHING.get, affinity=6) == 6


def test_v2_quota_of_the_process_cgroup() -> None:
    files = {
        "/proc/self/cgroup": V2_OWN,
        "/sys/fs/cgroup/system.slice/regfs.service/cpu.max": "250000 100000\n",
        "/sys/fs/cgroup/cpu.max": "max 100000\n",
    }
    assert quota_cpus(files.get) == 2.5
    assert usable_cpus(files.get, affinity=8) == 3  # rounded up
    assert usable_cpus(files.get, affinity=2) == 2  # the mask is smaller


def test_v2_an_ancestor_limit_counts_and_the_smallest_wins() -> None:
    files = {
        "/proc/self/cgroup": V2_OWN,
        "/sys/fs/cgroup/system.slice/regfs.service/cpu.max": "max 100000",
        "/sys/fs/cgroup/system.slice/cpu.max": "100000 100000",
    }
    assert quota_cpus(files.get) == 1.0
    assert usable_cpus(files.get, affinity=16) == 1


def test_v2_inside_a_container_the_mount_is_the_own_cgroup() -> None:
    # /proc/self/cgroup names a path of the host; the container sees its cgroup at the mount.
    files = {"/proc/self/cgroup": "0::/docker/abc\n", "/sys/fs/cgroup/cpu.max": "50000 100000"}
    assert quota_cpus(files.get) == 0.5
    assert usable_cpus(files.get, affinity=4) == 1  # never below one


def test_v2_hybrid_mount_under_unified() -> None:
    files = {"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/unified/cpu.max": "300000 100000"}
    assert quota_cpus(files.get) == 3.0


def test_v1_quota_and_period() -> None:
    files = {
        "/proc/self/cgroup": V1_OWN,
        "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us": "150000\n",
        "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
    }
    assert quota_cpus(files.get) == 1.5
    assert usable_cpus(files.get, affinity=4) == 2


def test_v1_unlimited_and_malformed_quotas_are_no_quota() -> None:
    for quota in ("-1", "junk", "0"):
        files = {
            "/proc/self/cgroup": "2:cpu:/\n",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": quota,
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000",
        }
        assert quota_cpus(files.get) is None, quota
    bad_v2 = {"/proc/self/cgroup": "0::/", "/sys/fs/cgroup/cpu.max": "1 2 3"}
    assert quota_cpus(bad_v2.get) is None


def test_this_machine() -> None:
    assert affinity_cpus() == len(os.sched_getaffinity(0))
    assert 1 <= usable_cpus() <= affinity_cpus()
    assert read_text("/proc/self/cgroup") is not None
    assert read_text("/nonexistent/cpu.max") is None


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity mask")
def test_the_affinity_mask_is_read_not_the_core_count() -> None:
    pid = os.fork()
    if pid == 0:  # a child pinned to one core
        code = 1
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
            code = 0 if affinity_cpus() == 1 and usable_cpus() == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
