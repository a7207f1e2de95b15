"""regfs's own state on a filesystem (:class:`LocalStateStore`) and the local read stream.

The state folder (``<rootdirectory>/.regfs``) sits in a tree the registry's user owns while
regfs often runs as root: every access opens the folder above it by path (ROOT, given by the
admin) and everything below with ``O_NOFOLLOW`` relative to descriptors
(:mod:`regfs.storage.fds`); files are created with ``O_EXCL`` or replaced by ``renameat``. A
state file or folder swapped for a link fails instead of writing through it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import IO

from regfs.storage import fds
from regfs.storage.base import Entry, StorageError, check_path, from_oserror


class LocalStream:
    """A file opened for reading by :meth:`LocalStorage.open_stream` (owns ``fd``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, n: int = -1) -> bytes:
        """At most ``n`` bytes in one system call (``n < 0``: everything left)."""
        if n >= 0:
            return os.read(self.fd, n)
        parts = []
        while piece := os.read(self.fd, 1 << 20):
            parts.append(piece)
        return b"".join(parts)

    def readinto(self, buf: memoryview) -> int:
        """Fill ``buf`` with one system call; 0 at the end."""
        return os.readv(self.fd, [buf])

    def stat(self) -> os.stat_result:
        """``fstat`` of the open file (kind, size, mtime)."""
        return os.fstat(self.fd)

    def close(self) -> None:
        """Close the file; idempotent."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LocalStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Appender:
    def __init__(self, f: IO[str]) -> None:
        self.f = f

    def write(self, text: str) -> None:
        self.f.write(text)
        self.f.flush()

    def sync(self) -> None:
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


class LocalStateStore:
    """The :class:`~regfs.storage.base.StateStore` in the folder ``location`` (created on
    first write, with its parents below the folder holding it)."""

    def __init__(self, location: str) -> None:
        self._location = location.rstrip("/") or "/"
        self.top, self.name = os.path.split(self._location)

    @property
    def location(self) -> str:
        """The state folder."""
        return self._location

    def path(self, rel: str) -> str:
        """``rel`` as an absolute path (for messages)."""
        return os.path.join(self._location, rel) if rel else self._location

    def _split(self, rel: str) -> tuple[list[str], str]:
        parts = [self.name, *check_path(rel)]
        return parts[:-1], parts[-1]

    def create_exclusive(self, rel: str, data: bytes) -> None:
        """``openat(O_CREAT | O_EXCL | O_NOFOLLOW)``, write, fsync; raises Exists."""
        down, name = self._split(rel)
        with fds.opened(self.top, down, create=True) as dfd:
            try:
                fd = os.open(name, fds.O_CREATE | os.O_EXCL, 0o644, dir_fd=dfd)
            except OSError as exc:
                raise fds.error(exc, dfd, name, self.path(rel)) from None
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self, rel: str) -> bytes:
        """The whole file (never through a link)."""
        down, name = self._split(rel)
        with fds.opened(self.top, down) as dfd:
            try:
                fd = os.open(name, fds.O_READ, dir_fd=dfd)
            except OSError as exc:
                raise fds.error(exc, dfd, name, self.path(rel)) from None
            with os.fdopen(fd, "rb") as f:
                return f.read()

    def write_atomic(self, rel: str, data: bytes) -> None:
        """``<name>.tmp``, fsync, ``renameat`` over ``name``, fsync of the folder."""
        down, name = self._split(rel)
        with fds.opened(self.top, down, create=True, last_flags=fds.O_LIST) as dfd:
            tmp = f"{name}.tmp"
            try:
                fd = os.open(tmp, fds.O_CREATE | os.O_TRUNC, 0o666, dir_fd=dfd)
            except OSError as exc:
                raise fds.error(exc, dfd, tmp, self.path(rel)) from None
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)

    def open_append(self, rel: str) -> _Appender:
        """Append lines to ``rel`` (created, with its folders, if missing)."""
        down, name = self._split(rel)
        with fds.opened(self.top, down, create=True) as dfd:
            try:
                fd = os.open(name, fds.O_CREATE | os.O_APPEND, 0o666, dir_fd=dfd)
            except OSError as exc:
                raise fds.error(exc, dfd, name, self.path(rel)) from None
        return _Appender(os.fdopen(fd, "a", encoding="utf-8"))

    def remove(self, rel: str) -> None:
        """``unlinkat``; raises NotFound when it is not there."""
        down, name = self._split(rel)
        with fds.opened(self.top, down) as dfd:
            try:
                os.unlink(name, dir_fd=dfd)
            except OSError as exc:
                raise from_oserror(exc, self.path(rel)) from None

    def list_dir(self, rel: str) -> list[Entry]:
        """The folder's entries, links not followed."""
        with fds.opened(self.top, [self.name, *check_path(rel)], last_flags=fds.O_LIST) as dfd:
            out = []
            with os.scandir(dfd) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    kind = (
                        "symlink"
                        if e.is_symlink()
                        else "dir"
                        if e.is_dir(follow_symlinks=False)
                        else "file"
                        if e.is_file(follow_symlinks=False)
                        else "other"
                    )
                    out.append(Entry(e.name, kind, st.st_size, st.st_mtime))
            return out

    def is_folder(self, rel: str) -> bool:
        """Whether ``rel`` is a folder reached without links."""
        try:
            with fds.opened(self.top, [self.name, *check_path(rel)]):
                return True
        except StorageError:
            return False

    def lstat(self, rel: str) -> os.stat_result:
        """``fstatat(AT_SYMLINK_NOFOLLOW)`` of ``rel``."""
        down, name = self._split(rel)
        with fds.opened(self.top, down) as dfd:
            try:
                return os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                raise from_oserror(exc, self.path(rel)) from None

    def tree_size(self, rel: str) -> tuple[int, int]:
        """``(files, bytes)`` below ``rel`` (``fwalk``, links not followed)."""
        n = size = 0
        try:
            with fds.opened(self.top, [self.name, *check_path(rel)], last_flags=fds.O_LIST) as d:
                for _cur, _dirs, files, dfd in os.fwalk(".", dir_fd=d):
                    for f in files:
                        n += 1
                        with contextlib.suppress(OSError):
                            size += os.stat(f, dir_fd=dfd, follow_symlinks=False).st_size
        except StorageError:
            return 0, 0
        return n, size

    def remove_tree(self, rel: str) -> None:
        """``shutil.rmtree`` relative to the parent's descriptor (it never follows links)."""
        down, name = self._split(rel)
        with fds.opened(self.top, down, last_flags=fds.O_LIST) as dfd:
            shutil.rmtree(name, dir_fd=dfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
