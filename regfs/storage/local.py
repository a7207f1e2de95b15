"""The local filesystem backend of :class:`~regfs.storage.base.Storage`.

Read side (:meth:`LocalStorage.list_dir`, :meth:`~LocalStorage.list_kinds`,
:meth:`~LocalStorage.read_file`, :meth:`~LocalStorage.lstat`, :meth:`~LocalStorage.stat`,
:meth:`~LocalStorage.exists`, :meth:`~LocalStorage.realpath`, plus the seam's
:meth:`~LocalStorage.list_folder`, :meth:`~LocalStorage.list_prefix` and
:meth:`~LocalStorage.open_stream`): by path below the ``v2`` folder. Links on the way are
followed (the registry serves through them, so the scan reads what it would serve, for
marking only); a final component that is a link is reported as a link (listings) or refused
(``O_NOFOLLOW`` opens) unless the caller asks to follow. The scan is built on these methods
and their names, return types (``Entry``, ``os.stat_result``) and ``OSError`` subclasses are
stable.

Change side (:meth:`~LocalStorage.unlink`, :meth:`~LocalStorage.rmdir`,
:meth:`~LocalStorage.move_to_trash`, :meth:`~LocalStorage.restore_from_trash`,
:meth:`~LocalStorage.make_folders`): never by path. Each call opens the ``rootdirectory`` and
walks down with ``openat(O_NOFOLLOW | O_DIRECTORY)`` (:mod:`regfs.storage.fds`), then makes
one ``unlinkat``/``rmdir(dir_fd=)``/``renameat``/``mkdirat`` call: a folder swapped for a
symbolic link, even after the caller re-checked it, fails with ``SymlinkFound`` and nothing
outside ROOT is reached. Every path is a relative path the layout produced, never link
contents.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from regfs.storage import fds
from regfs.storage.base import (
    DIR,
    FILE,
    OTHER,
    SYMLINK,
    Entry,
    Exists,
    IsAFolder,
    ListError,
    Listing,
    ObjectInfo,
    StateStore,
    Storage,
    StorageError,
    check_path,
    from_oserror,
)
from regfs.storage.localstate import LocalStateStore, LocalStream
from regfs.storage.root import DEFAULT_ROOT, ROOT_ENV, STATE_NAME, resolve_root, split_top

__all__ = [
    "DEFAULT_ROOT",
    "DIR",
    "FILE",
    "OTHER",
    "ROOT_ENV",
    "SYMLINK",
    "Entry",
    "LocalStorage",
    "resolve_root",
]

_O_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_O_READ_FOLLOW = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_O_STREAM_DIR = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

_new = tuple.__new__


class LocalStorage:
    """A registry store on a filesystem, below one ``v2`` folder; paths are relative to it.

    ``state`` is the :class:`~regfs.storage.localstate.LocalStateStore` next to it
    (``<rootdirectory>/.regfs``), sharing its anchor: trash moves are one ``renameat``.
    """

    def __init__(self, v2: Path | str) -> None:
        self.v2 = Path(v2)
        self.base = str(v2)
        self.top, self._down = split_top(self.base)
        self.state = LocalStateStore(os.path.join(self.top, STATE_NAME))
        self._stream_dirs: dict[str, int] = {}

    @property
    def location(self) -> str:
        """The ``v2`` folder."""
        return self.base

    def abspath(self, rel: str) -> str:
        """``rel`` as an absolute path, for messages and the read side."""
        return f"{self.base}/{rel}" if rel else self.base

    @property
    def prefers_listing(self) -> bool:
        """A filesystem is walked folder by folder (``scandir`` is cheap)."""
        return False

    # --- read side ---------------------------------------------------------------------------

    def list_dir(self, rel: str) -> list[Entry]:
        """List a folder without following links; raises OSError when it cannot be read."""
        out: list[Entry] = []
        with os.scandir(self.abspath(rel)) as it:
            for e in it:
                # Most entries are folders: test that first (d_type, no system call), and
                # build the tuples with tuple.__new__ (the NamedTuple constructor is slower).
                if e.is_dir(follow_symlinks=False):
                    out.append(_new(Entry, (e.name, DIR, 0, 0.0)))
                elif e.is_symlink():
                    out.append(_new(Entry, (e.name, SYMLINK, 0, 0.0)))
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out.append(_new(Entry, (e.name, FILE, st.st_size, st.st_mtime)))
                else:
                    out.append(_new(Entry, (e.name, OTHER, 0, 0.0)))
        return out

    def list_kinds(self, rel: str) -> list[tuple[str, str]]:
        """(name, kind) of each entry, from the directory listing alone (no stat calls)."""
        out: list[tuple[str, str]] = []
        with os.scandir(self.abspath(rel)) as it:
            for e in it:
                if e.is_symlink():
                    out.append((e.name, SYMLINK))
                elif e.is_dir(follow_symlinks=False):
                    out.append((e.name, DIR))
                elif e.is_file(follow_symlinks=False):
                    out.append((e.name, FILE))
                else:
                    out.append((e.name, OTHER))
        return out

    def list_folder(self, rel: str) -> Listing:
        """:meth:`list_dir` with the error as a value."""
        try:
            return Listing(rel, self.list_dir(rel))
        except OSError as exc:
            return Listing(rel, [], from_oserror(exc, rel))

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        """Every folder, file, link and other entry below ``rel`` (links not followed),
        folders before their contents; a folder that cannot be listed is a ListError."""
        stack = [rel]
        while stack:
            cur = stack.pop()
            listing = self.list_folder(cur)
            if listing.error is not None:
                yield ListError(cur, listing.error)
                continue
            for e in listing.entries:
                path = f"{cur}/{e.name}" if cur else e.name
                yield ObjectInfo(path, e.kind, e.size, e.mtime)
                if e.kind == DIR:
                    stack.append(path)

    def read_file(self, rel: str, limit: int, *, follow: bool = False) -> tuple[bytes, int, float]:
        """Read at most ``limit`` bytes of a regular file; returns (data, size, mtime).

        A final component that is a symbolic link fails (ELOOP) unless ``follow``."""
        fd = os.open(self.abspath(rel), _O_READ_FOLLOW if follow else _O_READ)
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise IsADirectoryError(f"not a regular file: {rel}")
            chunks: list[bytes] = []
            remaining = min(limit, st.st_size) if st.st_size else limit
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks), st.st_size, st.st_mtime
        finally:
            os.close(fd)

    def open_stream(self, rel: str) -> LocalStream:
        """Open a file for hashing, no final link followed, ``O_NONBLOCK`` (a FIFO cannot hang
        it). The folder of the first two components (``blobs/<alg>``) is opened once and kept
        (a forked worker inherits it); the rest is opened relative to it."""
        head, sep, tail = rel.partition("/")
        head2, sep2, tail2 = tail.partition("/")
        if sep and sep2 and tail2:
            key = f"{head}/{head2}"
            dfd = self._stream_dirs.get(key)
            if dfd is None:
                try:
                    dfd = self._stream_dirs[key] = os.open(self.abspath(key), _O_STREAM_DIR)
                except OSError:
                    dfd = -1  # a link (read through, as by path) or missing: by path
            if dfd >= 0:
                return LocalStream(os.open(tail2, fds.O_READ, dir_fd=dfd))
        return LocalStream(os.open(self.abspath(rel), fds.O_READ))

    def close_streams(self) -> None:
        """Close the folders :meth:`open_stream` keeps open."""
        for fd in self._stream_dirs.values():
            os.close(fd)
        self._stream_dirs.clear()

    def lstat(self, rel: str) -> os.stat_result:
        """``os.lstat``: a final link is not followed."""
        return os.lstat(self.abspath(rel))

    def stat(self, rel: str) -> os.stat_result:
        """``os.stat``: follows symbolic links (what the registry sees through one)."""
        return os.stat(self.abspath(rel))

    def realpath(self, rel: str) -> str:
        """Where ``rel`` is once every link is resolved."""
        return os.path.realpath(self.abspath(rel))

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` exists (a dangling link does)."""
        try:
            os.lstat(self.abspath(rel))
        except FileNotFoundError:
            return False
        return True

    # --- change side: relative to directory descriptors, no link followed -------------------

    def _parent(self, rel: str) -> tuple[list[str], str]:
        parts = check_path(rel)
        if not parts:
            raise IsAFolder(21, "the v2 folder itself is never changed", self.base)
        return [*self._down, *parts[:-1]], parts[-1]

    def unlink(self, rel: str) -> None:
        """``unlinkat`` in the folder of ``rel``, reached without following links."""
        down, name = self._parent(rel)
        with fds.opened(self.top, down, shown_prefix=()) as fd:
            try:
                os.unlink(name, dir_fd=fd)
            except OSError as exc:
                raise from_oserror(exc, rel) from None

    def rmdir(self, rel: str) -> None:
        """Remove an empty folder (``unlinkat(AT_REMOVEDIR)``), reached without links."""
        down, name = self._parent(rel)
        with fds.opened(self.top, down) as fd:
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError as exc:
                raise from_oserror(exc, rel) from None

    def _trash_parts(self, run_id: str, rel: str) -> list[str]:
        return [STATE_NAME, "trash", *check_path(run_id), *check_path(rel)]

    def move_to_trash(self, rel: str, run_id: str) -> None:
        """One ``renameat`` from the folder of ``rel`` to ``.regfs/trash/<run>/…`` (created
        with ``mkdirat``), both reached from the rootdirectory without following links."""
        down, name = self._parent(rel)
        dst = self._trash_parts(run_id, rel)
        self._rename(down, name, dst[:-1], dst[-1], rel, create_dst=True)

    def restore_from_trash(self, run_id: str, rel: str) -> None:
        """Move a trashed item back (its parents created); refuses a taken place."""
        src = self._trash_parts(run_id, rel)
        down, name = self._parent(rel)
        self._rename(src[:-1], src[-1], down, name, rel, create_dst=True, no_replace=True)

    def _rename(
        self,
        src_down: list[str],
        src_name: str,
        dst_down: list[str],
        dst_name: str,
        shown: str,
        *,
        create_dst: bool,
        no_replace: bool = False,
    ) -> None:
        top = fds.open_top(self.top)
        try:
            sfd = fds.descend(top, src_down)
            try:
                dfd = fds.descend(top, dst_down, create=create_dst)
                try:
                    if no_replace and _lexists_at(dfd, dst_name):
                        raise Exists(17, "already exists (never overwritten)", shown)
                    os.rename(src_name, dst_name, src_dir_fd=sfd, dst_dir_fd=dfd)
                except StorageError:
                    raise
                except OSError as exc:
                    raise from_oserror(exc, shown) from None
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
        finally:
            os.close(top)

    def in_trash(self, run_id: str, rel: str) -> bool:
        """Whether ``.regfs/trash/<run>/<rel>`` exists (reached without links)."""
        parts = self._trash_parts(run_id, rel)
        try:
            with fds.opened(self.top, parts[:-1]) as fd:
                return _lexists_at(fd, parts[-1])
        except StorageError:
            return False

    def make_folders(self, rel: str) -> None:
        """``mkdirat`` each missing folder of ``rel``, never following a link."""
        with fds.opened(self.top, [*self._down, *check_path(rel)], create=True):
            pass


def _lexists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


if TYPE_CHECKING:  # both classes implement the protocols (checked by mypy)
    _storage: Storage = LocalStorage("/")
    _state: StateStore = LocalStateStore("/")
