"""An in-memory :class:`~regfs.storage.base.Storage` and state store, for fast unit tests.

:class:`MemoryFS` is a tree of folders, files, symbolic links (absolute targets inside the
tree) and "other" entries (a FIFO, a socket). :class:`MemoryStorage` behaves as the local
backend does: the read side follows links on the way and not a final one unless asked; the
change side refuses any link on the path (:class:`~regfs.storage.base.SymlinkFound`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from regfs.storage.base import (
    DIR,
    FILE,
    SYMLINK,
    Entry,
    ErrorKind,
    ListError,
    Listing,
    ObjectInfo,
    Stat,
    StateStore,
    Storage,
    StorageError,
    check_path,
    storage_error,
)
from regfs.storage.memfs import MemoryFS, Node


class MemoryStream:
    """An open in-memory file."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._data = node.data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n < 0``)."""
        end = len(self._data) if n < 0 else self._pos + n
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out

    def readinto(self, buf: memoryview) -> int:
        """Fill ``buf``; 0 at the end."""
        out = self.read(len(buf))
        buf[: len(out)] = out
        return len(out)

    def stat(self) -> Stat:
        """Kind, size, mtime."""
        return self._node.stat()

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> MemoryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryStorage:
    """A store in a :class:`MemoryFS` with ``v2`` at ``<top>/docker/registry/v2`` and the
    state at ``<top>/.regfs`` (:attr:`state`)."""

    def __init__(self, fs: MemoryFS | None = None, top: str = "/store") -> None:
        self.fs = fs or MemoryFS()
        self.top = top.rstrip("/")
        self.base = f"{self.top}/docker/registry/v2"
        self.v2 = PurePosixPath(self.base)  # what the scan records on its snapshot
        self.fs.mkdir(self.base)
        self.state = MemoryStateStore(self.fs, f"{self.top}/.regfs")

    @property
    def location(self) -> str:
        """The ``v2`` folder's path in the tree."""
        return self.base

    def abspath(self, rel: str) -> str:
        """``rel`` in the tree."""
        return f"{self.base}/{'/'.join(check_path(rel))}" if rel else self.base

    @property
    def prefers_listing(self) -> bool:
        """Walked like a filesystem."""
        return False

    def list_dir(self, rel: str) -> list[Entry]:
        """Entries of a folder (links reported, not followed)."""
        node = self.fs.node(self.abspath(rel), follow=True)
        if node.kind != DIR:
            raise storage_error(ErrorKind.NOT_A_FOLDER, None, rel)
        return [
            Entry(n, c.kind, len(c.data), c.mtime) if c.kind == FILE else Entry(n, c.kind, 0, 0.0)
            for n, c in node.children.items()
        ]

    def list_kinds(self, rel: str) -> list[tuple[str, str]]:
        """``(name, kind)`` of each entry."""
        return [(e.name, e.kind) for e in self.list_dir(rel)]

    def list_folder(self, rel: str) -> Listing:
        """:meth:`list_dir` with the error as a value."""
        try:
            return Listing(rel, self.list_dir(rel))
        except StorageError as exc:
            return Listing(rel, [], exc)

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        """Everything below ``rel``, folders before their contents."""
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

    def _file(self, rel: str, follow: bool) -> Node:
        node = self.fs.node(self.abspath(rel), follow=follow)
        if node.kind == SYMLINK:
            raise storage_error(ErrorKind.SYMLINK, None, rel)
        if node.kind != FILE:
            raise storage_error(ErrorKind.IS_A_FOLDER, "not a regular file", rel)
        return node

    def read_file(self, rel: str, limit: int, *, follow: bool = False) -> tuple[bytes, int, float]:
        """At most ``limit`` bytes: ``(data, size, mtime)``."""
        node = self._file(rel, follow)
        return node.data[:limit], len(node.data), node.mtime

    def open_stream(self, rel: str) -> MemoryStream:
        """A stream over the file (no final link followed)."""
        return MemoryStream(self._file(rel, False))

    def close_streams(self) -> None:
        """Nothing is kept."""

    def lstat(self, rel: str) -> Stat:
        """Kind, size, mtime of ``rel`` itself."""
        return self.fs.node(self.abspath(rel)).stat()

    def stat(self, rel: str) -> Stat:
        """Like :meth:`lstat`, following links."""
        return self.fs.node(self.abspath(rel), follow=True).stat()

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` exists (a dangling link does)."""
        try:
            self.fs.node(self.abspath(rel))
        except StorageError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise
        return True

    def realpath(self, rel: str) -> str:
        """Where ``rel`` is once every link is resolved."""
        return self.fs.realpath(self.abspath(rel))

    def unlink(self, rel: str) -> None:
        """Delete a file; a link on the way fails."""
        self.fs.remove(self.abspath(rel), folder=False)

    def rmdir(self, rel: str) -> None:
        """Remove an empty folder; a link on the way fails."""
        self.fs.remove(self.abspath(rel), folder=True)

    def move_to_trash(self, rel: str, run_id: str) -> None:
        """Move ``rel`` to ``.regfs/trash/<run>/<rel>``."""
        self.fs.rename(self.abspath(rel), self.state.path(f"trash/{run_id}/{rel}"))

    def restore_from_trash(self, run_id: str, rel: str) -> None:
        """Move it back; never overwrites."""
        src = self.state.path(f"trash/{run_id}/{rel}")
        self.fs.rename(src, self.abspath(rel), no_replace=True)

    def in_trash(self, run_id: str, rel: str) -> bool:
        """Whether the trash holds ``rel`` for the run."""
        try:
            self.fs.node(self.state.path(f"trash/{run_id}/{rel}"), strict=True)
        except StorageError:
            return False
        return True

    def make_folders(self, rel: str) -> None:
        """``mkdir -p`` (no link followed)."""
        self.fs.makedirs(self.abspath(rel))


class MemoryStateStore:
    """The state folder in a :class:`MemoryFS`."""

    def __init__(self, fs: MemoryFS, location: str) -> None:
        self.fs = fs
        self._location = location

    @property
    def location(self) -> str:
        """The state folder."""
        return self._location

    def path(self, rel: str) -> str:
        """``rel`` in the tree."""
        return f"{self._location}/{'/'.join(check_path(rel))}" if rel else self._location

    def create_exclusive(self, rel: str, data: bytes) -> None:
        """Create, or raise Exists."""
        path = self.path(rel)
        self.fs.makedirs(path.rpartition("/")[0])
        parent, name = self.fs.parent(path)
        if name in parent.children:
            raise storage_error(ErrorKind.EXISTS, None, path)
        parent.children[name] = Node(FILE, data=data)

    def read(self, rel: str) -> bytes:
        """The whole file, never through a link."""
        node = self.fs.node(self.path(rel), strict=True)
        if node.kind == SYMLINK:
            raise storage_error(ErrorKind.SYMLINK, None, self.path(rel))
        if node.kind != FILE:
            raise storage_error(ErrorKind.IS_A_FOLDER, None, self.path(rel))
        return node.data

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace the file."""
        path = self.path(rel)
        self.fs.makedirs(path.rpartition("/")[0])
        parent, name = self.fs.parent(path)
        parent.children[name] = Node(FILE, data=data)

    def open_append(self, rel: str) -> _MemoryAppender:
        """Append to the file (created if missing)."""
        path = self.path(rel)
        self.fs.makedirs(path.rpartition("/")[0])
        parent, name = self.fs.parent(path)
        node = parent.children.setdefault(name, Node(FILE))
        return _MemoryAppender(node)

    def remove(self, rel: str) -> None:
        """Delete a file."""
        self.fs.remove(self.path(rel), folder=False)

    def list_dir(self, rel: str) -> list[Entry]:
        """The folder's entries."""
        node = self.fs.node(self.path(rel), strict=True)
        if node.kind != DIR:
            raise storage_error(ErrorKind.NOT_A_FOLDER, None, self.path(rel))
        return [Entry(n, c.kind, len(c.data), c.mtime) for n, c in node.children.items()]

    def is_folder(self, rel: str) -> bool:
        """Whether ``rel`` is a folder (no link on the way)."""
        try:
            return self.fs.node(self.path(rel), strict=True).kind == DIR
        except StorageError:
            return False

    def lstat(self, rel: str) -> Stat:
        """Kind, size, mtime."""
        return self.fs.node(self.path(rel), strict=True).stat()

    def tree_size(self, rel: str) -> tuple[int, int]:
        """``(files, bytes)`` below ``rel``."""
        try:
            stack = [self.fs.node(self.path(rel), strict=True)]
        except StorageError:
            return 0, 0
        n = size = 0
        while stack:
            node = stack.pop()
            for child in node.children.values():
                if child.kind == DIR:
                    stack.append(child)
                else:
                    n += 1
                    size += len(child.data)
        return n, size

    def remove_tree(self, rel: str) -> None:
        """Delete ``rel`` and everything below it."""
        parent, name = self.fs.parent(self.path(rel))
        if name not in parent.children:
            raise storage_error(ErrorKind.NOT_FOUND, None, self.path(rel))
        del parent.children[name]


class _MemoryAppender:
    def __init__(self, node: Node) -> None:
        self.node = node

    def write(self, text: str) -> None:
        self.node.data += text.encode()

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


if TYPE_CHECKING:  # both classes implement the protocols (checked by mypy)
    _storage: Storage = MemoryStorage()
    _state: StateStore = MemoryStateStore(MemoryFS(), "/")
