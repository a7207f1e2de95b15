"""Reading Linux ``/proc``: processes, their open files (with access mode), working directory,
environment, start time, and paths resolved inside a process's own root and working directory
(so a registry in a container, seen from the host, is resolved the way it resolves itself).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

O_ACCMODE = 0o3


@dataclass(frozen=True, slots=True)
class Proc:
    """One process as ``/proc/PID/stat`` and ``cmdline`` show it.

    Attributes:
        comm: the kernel's short name of the command.
        argv: the command line (empty for a kernel thread).
        start_ticks: ``stat`` field 22: when it started, in clock ticks after boot.
        state: ``stat`` field 3: ``R``, ``S``, ..., ``Z`` zombie, ``X`` dead.
    """

    pid: int
    ppid: int
    comm: str
    argv: tuple[str, ...]
    start_ticks: int
    state: str = "R"


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def read_proc(pid: int, proc: str = "/proc") -> Proc | None:
    """One process, or None when it is gone or unreadable."""
    base = f"{proc}/{pid}"
    try:
        raw = _read(f"{base}/stat").decode("utf-8", "replace")
        fields = raw.rsplit(")", 1)[1].split()
        ppid = int(fields[1])
        start = int(fields[19])
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        argv = tuple(
            a.decode("utf-8", "surrogateescape") for a in _read(f"{base}/cmdline").split(b"\0")
        )
    except (OSError, ValueError, IndexError):
        return None
    if argv and argv[-1] == "":
        argv = argv[:-1]
    return Proc(pid, ppid, comm, argv, start, fields[0])


def processes(proc: str = "/proc") -> list[Proc]:
    """Every process this user can see."""
    try:
        names = os.listdir(proc)
    except OSError:
        return []
    out = []
    for name in names:
        if name.isdigit():
            p = read_proc(int(name), proc)
            if p is not None:
                out.append(p)
    return out


def kin_of_self(procs: list[Proc], me: int | None = None) -> set[int]:
    """This process, its ancestors (the shell, sudo, a test runner) and its own forked
    helpers (descendants running the same command line)."""
    me = os.getpid() if me is None else me
    parent = {p.pid: p.ppid for p in procs}
    out = {me}
    pid = me
    for _ in range(256):
        pid = parent.get(pid, 0)
        if pid <= 1:
            break
        out.add(pid)
    argv = {p.pid: p.argv for p in procs}
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    todo = [me]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out and argv.get(c) == argv.get(me):
                out.add(c)
                todo.append(c)
    return out


def start_time(p: Proc) -> float:
    """When the process started, in seconds since the epoch (to one clock tick)."""
    ticks = os.sysconf("SC_CLK_TCK")
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time() - (since_boot - p.start_ticks / ticks)


def clock_tick() -> float:
    """One clock tick in seconds: the resolution of :func:`start_time`."""
    return 1.0 / os.sysconf("SC_CLK_TCK")


def environ(pid: int, proc: str = "/proc") -> dict[str, str]:
    """The environment the process started with.

    Raises:
        OSError: unreadable (another user's process, without privileges).
    """
    out: dict[str, str] = {}
    for item in _read(f"{proc}/{pid}/environ").split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            out[name.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return out


def resolve_in(pid: int, path: str, proc: str = "/proc") -> str:
    """A path as process ``pid`` resolves it, as a path this process can open.

    Relative paths start at the process's working directory, absolute ones (and absolute
    symlink targets met on the way) at its root directory, both through ``/proc``, so a
    process in a container resolves inside its container. ``path`` is first cleaned lexically,
    as Go's ``path.Join`` does. Components that do not exist are appended as they are.

    Raises:
        OSError: a symlink loop, or the process's root or working directory is unreadable.
    """
    root = f"{proc}/{pid}/root"
    path = posixpath.normpath(path) if path else "."
    cur = root if path.startswith("/") else f"{proc}/{pid}/cwd"
    os.stat(cur)  # fails when the process is gone or not ours to look into
    todo = deque(c for c in path.split("/") if c and c != ".")
    hops = 0
    while todo:
        comp = todo.popleft()
        if comp == "..":
            if cur != root:
                cur = f"{cur}/.."
            continue
        nxt = f"{cur}/{comp}"
        try:
            st = os.lstat(nxt)
        except FileNotFoundError:
            return "/".join([nxt, *todo])
        if not stat.S_ISLNK(st.st_mode):
            cur = nxt
            continue
        hops += 1
        if hops > 40:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", nxt)
        target = os.readlink(nxt)
        if target.startswith("/"):
            cur = root
        todo.extendleft(reversed([c for c in target.split("/") if c and c != "."]))
    return cur


@dataclass(frozen=True, slots=True)
class Use:
    """A file or folder a process uses: an open file (``mode`` "r" or "w") or its cwd."""

    pid: int
    path: str
    mode: str  # "r": open for reading, "w": open for writing, "cwd": working directory


def uses(pid: int, devices: set[int], proc: str = "/proc") -> Iterator[Use]:
    """Open files and the working directory of ``pid`` on one of ``devices``."""
    base = f"{proc}/{pid}"
    try:
        st = os.stat(f"{base}/cwd")
        if st.st_dev in devices:
            yield Use(pid, os.readlink(f"{base}/cwd"), "cwd")
    except OSError:
        pass
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        return
    for fd in fds:
        try:
            st = os.stat(f"{base}/fd/{fd}")
            if st.st_dev not in devices:
                continue
            target = os.readlink(f"{base}/fd/{fd}")
            flags = 0
            for line in _read(f"{base}/fdinfo/{fd}").decode().splitlines():
                if line.startswith("flags:"):
                    flags = int(line.split()[1], 8)
        except (OSError, ValueError, IndexError):
            continue
        mode = "r" if flags & O_ACCMODE == os.O_RDONLY else "w"
        yield Use(pid, target.removesuffix(" (deleted)"), mode)


def is_under(pid: int, path: str, folder: tuple[int, int], proc: str = "/proc") -> bool:
    """Whether ``path`` (as the kernel names a file of ``pid``) is ``folder`` (device, inode)
    or inside it: its ancestors are compared by device and inode, seen from here, else
    through the process's root."""
    if not path.startswith("/"):
        return False
    for prefix in ("", f"{proc}/{pid}/root"):
        cur = path
        while True:
            try:
                st = os.lstat(prefix + cur if cur != "/" else prefix + "/")
            except OSError:
                break
            if (st.st_dev, st.st_ino) == folder:
                return True
            if cur == "/":
                break
            cur = posixpath.dirname(cur)
    return False
