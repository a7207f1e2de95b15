"""How many CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota.

The quota is read from the cgroup files the kernel exposes (v2 ``cpu.max``; v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), found through ``/proc/self/cgroup``. These are
the machine's files, not registry data nor regfs state: reading them here, and only here, is
allowlisted in ``tests/test_storage_seam.py``. Every read goes through a ``Reader`` so tests
can describe a machine without one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

# path -> its text, or None when it cannot be read
Reader = Callable[[str], str | None]

CGROUP_ROOT = "/sys/fs/cgroup"


def read_text(path: str) -> str | None:
    """The text of a small system file, or None when it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def quota_cpus(read: Reader = read_text) -> float | None:
    """The CPU quota of this process's cgroup (and its ancestors), in CPUs; None: no quota.

    A quota of 1.5 CPUs (``150000 100000``) is 1.5: rounding is the caller's choice.
    """
    own = read("/proc/self/cgroup")
    if own is None:
        return None
    limits: list[float] = []
    for line in own.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path.startswith("/"):
            continue
        if hier == "0" and controllers == "":
            limits += _walk(read, f"{CGROUP_ROOT}/unified", path, _v2) or _walk(
                read, CGROUP_ROOT, path, _v2
            )
        elif "cpu" in controllers.split(","):
            for mount in (f"{CGROUP_ROOT}/{controllers}", f"{CGROUP_ROOT}/cpu"):
                found = _walk(read, mount, path, _v1)
                if found:
                    limits += found
                    break
    return min(limits) if limits else None


def _walk(
    read: Reader, mount: str, path: str, limit: Callable[[Reader, str], float | None]
) -> list[float]:
    """The limits set in the cgroup at ``path`` and in every ancestor, under ``mount``.

    Inside a container the cgroup's own folder is usually mounted as ``mount`` itself, so the
    mount point is always looked at too.
    """
    out: list[float] = []
    parts = [p for p in path.split("/") if p]
    for k in range(len(parts), -1, -1):  # k == 0: the mount point itself
        if (v := limit(read, "/".join([mount, *parts[:k]]))) is not None:
            out.append(v)
    return out


def _v2(read: Reader, folder: str) -> float | None:
    text = read(f"{folder}/cpu.max")
    if text is None:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1(read: Reader, folder: str) -> float | None:
    quota = read(f"{folder}/cpu.cfs_quota_us")
    period = read(f"{folder}/cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return _ratio(quota.strip(), period.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:  # -1: no quota
        return None
    return q / p


def usable_cpus(read: Reader = read_text, affinity: int | None = None) -> int:
    """CPUs this process may keep busy: its affinity, capped by its cgroup's quota (rounded
    up: a quota of 1.5 CPUs keeps two processes busy part of the time), at least one."""
    cpus = affinity_cpus() if affinity is None else affinity
    quota = quota_cpus(read)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)
