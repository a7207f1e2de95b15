"""An exclusive lock under ``<rootdirectory>/.regfs/lock`` recording host, pid and start time."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from types import TracebackType

from regfs.errors import RefusedError


@dataclass(frozen=True, slots=True)
class Holder:
    host: str
    pid: int
    started: float
    command: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host} ({self.command}, since {when})"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: str) -> Holder | None:
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return Holder(str(d["host"]), int(d["pid"]), float(d["started"]), str(d["command"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return Holder("?", -1, 0.0, "unreadable lock file")


class Lock:
    """``with Lock(state_dir, "gc"):`` — raises :class:`RefusedError` when held by a live process.

    A lock whose pid is dead on this host is taken over; one held on another host, or
    unreadable, is never taken over automatically.
    """

    def __init__(self, state: str, command: str) -> None:
        self.path = os.path.join(state, "lock")
        self.state = state
        self.command = command
        self.held = False

    def acquire(self) -> None:
        os.makedirs(self.state, exist_ok=True)
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "command": self.command,
        }
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_holder(self.path)
                if holder is None:
                    continue
                if holder.host == me["host"] and holder.pid > 0 and not pid_alive(holder.pid):
                    os.unlink(self.path)  # stale: its process is gone
                    continue
                raise RefusedError(
                    f"another regfs holds the lock: {holder.describe()}; remove {self.path} "
                    "only if you are sure it is not running",
                    path=self.path,
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            self.held = True
            return
        raise RefusedError("could not take the lock", path=self.path)

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.held = False

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
