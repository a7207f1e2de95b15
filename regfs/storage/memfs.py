"""The tree behind the in-memory backend (:mod:`regfs.storage.memory`): folders, files,
symbolic links with absolute targets inside the tree, and "other" entries (a FIFO)."""

from __future__ import annotations

import stat as stat_mod
import time
from dataclasses import dataclass, field

from regfs.storage.base import (
    DIR,
    FILE,
    OTHER,
    SYMLINK,
    ErrorKind,
    Stat,
    StorageError,
    storage_error,
)


@dataclass
class Node:
    """One entry of the tree: a folder, a file, a link or something else (``kind``)."""

    kind: str
    mtime: float = field(default_factory=time.time)
    data: bytes = b""
    target: str = ""  # a link's absolute target
    children: dict[str, Node] = field(default_factory=dict)

    def stat(self) -> Stat:
        """Its kind (in ``st_mode``), size and mtime."""
        mode = {
            DIR: stat_mod.S_IFDIR | 0o755,
            FILE: stat_mod.S_IFREG | 0o644,
            SYMLINK: stat_mod.S_IFLNK | 0o777,
            OTHER: stat_mod.S_IFIFO | 0o644,
        }[self.kind]
        return Stat(mode, len(self.data) if self.kind == FILE else 0, self.mtime)


def _err(kind: ErrorKind, path: str, message: str | None = None) -> StorageError:
    return storage_error(kind, message, path)


class MemoryFS:
    """The tree; paths are absolute (``/store/docker/registry/v2/...``)."""

    def __init__(self) -> None:
        self.root = Node(DIR)

    def _walk(self, path: str, *, follow_last: bool, follow_mid: bool = True) -> Node:
        return self._resolve(path, follow_last=follow_last, follow_mid=follow_mid)[0]

    def realpath(self, path: str) -> str:
        """``path`` with every link resolved (as far as it exists)."""
        try:
            return "/" + "/".join(self._resolve(path, follow_last=True, follow_mid=True)[1])
        except StorageError:
            return path

    def _resolve(self, path: str, *, follow_last: bool, follow_mid: bool) -> tuple[Node, list[str]]:
        parts = [p for p in path.split("/") if p]
        for _ in range(40):
            node = self.root
            restart = None
            for i, name in enumerate(parts):
                if node.kind != DIR:
                    raise _err(ErrorKind.NOT_A_FOLDER, path)
                child = node.children.get(name)
                if child is None:
                    raise _err(ErrorKind.NOT_FOUND, path)
                last = i == len(parts) - 1
                if child.kind == SYMLINK and (follow_mid if not last else follow_last):
                    restart = [p for p in child.target.split("/") if p] + parts[i + 1 :]
                    break
                if child.kind == SYMLINK and not last:
                    raise _err(ErrorKind.SYMLINK, path, "is a symbolic link (never followed)")
                node = child
            if restart is None:
                return node, parts
            parts = restart
        raise _err(ErrorKind.SYMLINK, path, "too many levels of symbolic links")

    def node(self, path: str, *, follow: bool = False, strict: bool = False) -> Node:
        """The node at ``path``; ``strict``: no link anywhere on the way (change side)."""
        return self._walk(path, follow_last=follow, follow_mid=not strict)

    def parent(self, path: str) -> tuple[Node, str]:
        """The folder holding ``path`` (reached with no link on the way) and the name."""
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self.node(head or "/", strict=True)
        if parent.kind != DIR:
            raise _err(ErrorKind.NOT_A_FOLDER, path)
        return parent, name

    def put(self, path: str, node: Node) -> Node:
        """Place ``node`` at ``path``, creating folders on the way."""
        parts = [p for p in path.split("/") if p]
        cur = self.root
        for name in parts[:-1]:
            cur = cur.children.setdefault(name, Node(DIR))
            if cur.kind != DIR:
                raise _err(ErrorKind.NOT_A_FOLDER, path)
        cur.children[parts[-1]] = node
        return node

    def write(self, path: str, data: bytes, mtime: float | None = None) -> None:
        """A regular file."""
        self.put(path, Node(FILE, data=data, mtime=time.time() if mtime is None else mtime))

    def mkdir(self, path: str) -> None:
        """A folder (and its parents)."""
        parts = [p for p in path.split("/") if p]
        cur = self.root
        for name in parts:
            cur = cur.children.setdefault(name, Node(DIR))

    def symlink(self, path: str, target: str) -> None:
        """A symbolic link to the absolute path ``target``."""
        self.put(path, Node(SYMLINK, target=target))

    def fifo(self, path: str) -> None:
        """An entry that is neither a file, a folder nor a link."""
        self.put(path, Node(OTHER))

    def remove(self, path: str, *, folder: bool) -> None:
        """unlink / rmdir with the local backend's errors; no link followed on the way."""
        parent, name = self.parent(path)
        child = parent.children.get(name)
        if child is None:
            raise _err(ErrorKind.NOT_FOUND, path)
        if folder and child.kind != DIR:
            raise _err(ErrorKind.NOT_A_FOLDER, path)
        if not folder and child.kind == DIR:
            raise _err(ErrorKind.IS_A_FOLDER, path)
        if folder and child.children:
            raise _err(ErrorKind.NOT_EMPTY, path)
        del parent.children[name]

    def rename(self, src: str, dst: str, *, no_replace: bool = False) -> None:
        """Move ``src`` to ``dst`` (parents of ``dst`` created); no link followed."""
        sparent, sname = self.parent(src)
        if sname not in sparent.children:
            raise _err(ErrorKind.NOT_FOUND, src)
        self.makedirs(dst.rstrip("/").rpartition("/")[0])
        dparent, dname = self.parent(dst)
        if no_replace and dname in dparent.children:
            raise _err(ErrorKind.EXISTS, dst, "already exists (never overwritten)")
        dparent.children[dname] = sparent.children.pop(sname)

    def makedirs(self, path: str) -> None:
        """``mkdir -p`` that refuses links on the way."""
        cur = self.root
        for name in [p for p in path.split("/") if p]:
            child = cur.children.get(name)
            if child is None:
                child = cur.children[name] = Node(DIR)
            elif child.kind == SYMLINK:
                raise _err(ErrorKind.SYMLINK, path, "is a symbolic link (never followed)")
            elif child.kind != DIR:
                raise _err(ErrorKind.NOT_A_FOLDER, path)
            cur = child
