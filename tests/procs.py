"""Processes as the kernel sees them (Linux ``/proc``): who is left of a killed command.

A command started with ``start_new_session=True`` leads its own process group, and every
process it forks stays in that group (regfs never calls ``setsid``), also once the leader is
dead and they have been handed to init. A zombie counts as gone: it runs nothing and holds no
file or folder; only its parent (init, here) has yet to collect its exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    state: str
    cwd: str | None
    cmdline: str


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _describe(pid: str, fields: list[str]) -> Proc:
    try:
        cwd: str | None = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    return Proc(int(pid), int(fields[1]), fields[0], cwd, cmd)


def group_members(pgid: int) -> list[Proc]:
    """Live (not zombie) processes of the process group ``pgid``."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fields = _stat(pid)
        if fields is None or int(fields[2]) != pgid or fields[0] == "Z":
            continue
        out.append(_describe(pid, fields))
    return out


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def wait_group_gone(pgid: int, timeout: float = 5.0) -> list[Proc]:
    """Wait until no live process is left in the group; return those still alive at the
    deadline (after killing them, so that a failing test leaves nothing behind either)."""
    deadline = time.monotonic() + timeout
    while True:
        left = group_members(pgid)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for p in left:
        with contextlib.suppress(OSError):
            os.kill(p.pid, signal.SIGKILL)
    return left
