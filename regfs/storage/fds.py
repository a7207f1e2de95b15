"""Directory-descriptor chains: how the local backends reach a path without following links.

A change (unlink, rmdir, rename, a state write) never names an absolute path. The backend
opens its top folder (the registry's ``rootdirectory``, given by the admin: followed if it is
a link) and then each component below it with ``openat(parent, name, O_NOFOLLOW |
O_DIRECTORY)``, as ``shutil.rmtree`` defends itself; the change is the ``*at`` call relative
to the last descriptor. A folder swapped for a symbolic link at any moment makes the open
fail (``ENOTDIR``/``ELOOP``, reported as :class:`~regfs.storage.base.SymlinkFound`), and a
folder moved away after it was opened still holds only what was inside the store: nothing
outside it can be reached.

``O_PATH`` (Linux) opens a folder for use as ``dir_fd`` without needing read permission,
exactly the permissions a path-based call would need (search on each folder).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from collections.abc import Iterator, Sequence

from regfs.storage.base import StorageError, SymlinkFound, from_oserror

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# A folder used only as the anchor of *at calls.
O_ANCHOR = getattr(os, "O_PATH", os.O_RDONLY) | _DIRECTORY | _NOFOLLOW | _CLOEXEC
# The top folder: given by the admin, followed when it is a link.
O_TOP = getattr(os, "O_PATH", os.O_RDONLY) | _DIRECTORY | _CLOEXEC
# A folder to list or fsync.
O_LIST = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
# A file to read: no link followed; O_NONBLOCK so that a FIFO cannot hang the open.
O_READ = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
# A state file to create, never through a link.
O_CREATE = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC

FOLDER_MODE = 0o777  # minus the umask, as os.makedirs


def join(parts: Sequence[str]) -> str:
    """``a/b/c`` (the shown form of a component list)."""
    return "/".join(parts)


def error(exc: OSError, parent: int | None, name: str, shown: str) -> StorageError:
    """The :class:`StorageError` for ``exc`` raised at ``name`` below ``parent``: a symbolic
    link there (``ENOTDIR``/``ELOOP`` under ``O_NOFOLLOW``) becomes :class:`SymlinkFound`."""
    if exc.errno in (errno.ENOTDIR, errno.ELOOP) and parent is not None:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError:
            pass
        else:
            if stat_mod.S_ISLNK(st.st_mode):
                return SymlinkFound(
                    errno.ELOOP, "is a symbolic link (never followed when changing)", shown
                )
    return from_oserror(exc, shown)


def open_top(path: str) -> int:
    """A descriptor of the top folder (followed if it is a link)."""
    try:
        return os.open(path, O_TOP)
    except OSError as exc:
        raise from_oserror(exc, path) from None


def descend(
    top: int,
    parts: Sequence[str],
    *,
    create: bool = False,
    last_flags: int = O_ANCHOR,
    shown_prefix: Sequence[str] = (),
) -> int:
    """Open ``parts`` below the descriptor ``top`` one component at a time, never following a
    link; ``create`` makes missing folders (``mkdirat``). Returns a new descriptor (the caller
    closes it; ``top`` stays open); the last one is opened with ``last_flags``."""
    if not parts:
        return os.dup(top) if last_flags == O_ANCHOR else os.open(".", last_flags, dir_fd=top)
    fd = parent = top
    for i, name in enumerate(parts):
        flags = last_flags if i == len(parts) - 1 else O_ANCHOR
        shown = join([*shown_prefix, *parts[: i + 1]])
        try:
            try:
                fd = os.open(name, flags, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, FOLDER_MODE, dir_fd=parent)
                fd = os.open(name, flags, dir_fd=parent)
        except OSError as exc:
            err = error(exc, parent, name, shown)
            if parent != top:
                os.close(parent)
            raise err from None
        if parent != top:
            os.close(parent)
        parent = fd
    return fd


@contextlib.contextmanager
def opened(
    top_path: str,
    parts: Sequence[str],
    *,
    create: bool = False,
    last_flags: int = O_ANCHOR,
    shown_prefix: Sequence[str] = (),
) -> Iterator[int]:
    """``with opened(top, ["a", "b"]) as fd:`` a descriptor of ``top/a/b`` (see :func:`descend`)."""
    top = open_top(top_path)
    try:
        fd = descend(top, parts, create=create, last_flags=last_flags, shown_prefix=shown_prefix)
    finally:
        os.close(top)
    try:
        yield fd
    finally:
        os.close(fd)
