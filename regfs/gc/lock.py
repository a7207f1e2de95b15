"""An exclusive lock under ``<rootdirectory>/.regfs/lock`` recording host, pid and start time.

Taken with an exclusive create in the :class:`~regfs.storage.base.StateStore` (locally
``openat(O_CREAT | O_EXCL | O_NOFOLLOW)``; an object store: a conditional put).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from types import TracebackType

from regfs.errors import RefusedError
from regfs.gc.journal import state_store
from regfs.storage.base import Exists, StateStore, StorageError, SymlinkFound

LOCK = "lock"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the lock: host, pid, start time, command."""

    host: str
    pid: int
    started: float
    command: str

    def describe(self) -> str:
        """One line for messages."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host} ({self.command}, since {when})"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (EPERM: it does, as another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(state: StateStore | str) -> Holder | None:
    """Who holds the lock of the state store (or state folder); None when nobody does."""
    try:
        d = json.loads(state_store(state).read(LOCK).decode("utf-8"))
        return Holder(str(d["host"]), int(d["pid"]), float(d["started"]), str(d["command"]))
    except FileNotFoundError:
        return None
    except SymlinkFound:
        return Holder("?", -1, 0.0, "lock file or state folder is a symbolic link")
    except (OSError, ValueError, KeyError, TypeError):
        return Holder("?", -1, 0.0, "unreadable lock file")


class Lock:
    """``with Lock(state_dir, "gc"):`` — raises :class:`RefusedError` when held by a live process.

    A lock whose pid is dead on this host is taken over; one held on another host, or
    unreadable, is never taken over automatically.
    """

    def __init__(self, state: StateStore | str, command: str) -> None:
        self.store = state_store(state)
        self.path = self.store.path(LOCK)
        self.command = command
        self.held = False

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RefusedError`."""
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "command": self.command,
        }
        for _ in range(3):
            try:
                self.store.create_exclusive(LOCK, json.dumps(me).encode())
            except Exists:
                holder = read_holder(self.store)
                if holder is None:
                    continue
                if holder.host == me["host"] and holder.pid > 0 and not pid_alive(holder.pid):
                    with contextlib.suppress(FileNotFoundError):
                        self.store.remove(LOCK)  # stale: its process is gone
                    continue
                raise RefusedError(
                    f"another regfs holds the lock: {holder.describe()}; remove {self.path} "
                    "only if you are sure it is not running",
                    path=self.path,
                ) from None
            except StorageError as exc:
                # A state folder that is a link, not writable, ...: never written through.
                raise RefusedError(
                    f"cannot take the lock: {exc.strerror} ({exc.filename})", path=self.path
                ) from None
            self.held = True
            return
        raise RefusedError("could not take the lock", path=self.path)

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.store.remove(LOCK)
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
