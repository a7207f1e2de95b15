"""The only module the scan reads the filesystem through: root resolution, listing, reading.

Listings report symbolic links as links and files are opened with ``O_NOFOLLOW`` unless the
caller asks to follow (:meth:`LocalStorage.stat`, ``read_file(..., follow=True)``): the registry
follows links, so the scan reads what it would serve through one, for marking only. Nothing here
changes the filesystem (the gc executor refuses any path with a symbolic link below the root),
and every path is built from the resolved root plus a relative path that the layout produced,
never from link contents.
"""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path
from typing import NamedTuple

from regfs.errors import RootError
from regfs.layout import V2

DEFAULT_ROOT = "/var/lib/registry"
ROOT_ENV = "REGFS_ROOT"

_O_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_O_READ_FOLLOW = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)

# Entry kinds returned by list_dir.
DIR, FILE, SYMLINK, OTHER = "dir", "file", "symlink", "other"


class Entry(NamedTuple):
    name: str
    kind: str
    size: int
    mtime: float


_new = tuple.__new__


def resolve_root(given: str | os.PathLike[str] | None) -> Path:
    """Resolve ROOT to the ``docker/registry/v2`` folder, or raise :class:`RootError`.

    ROOT may be the registry's ``rootdirectory`` (holding ``docker/registry/v2``) or the
    ``v2`` folder itself; when omitted (``None``), ``$REGFS_ROOT``, else ``/var/lib/registry``.
    An empty ROOT (``regfs gc ""``, an unset shell variable) is an error, never a fallback:
    it must not send a deleting command to the default store.
    """
    if given is None:
        given = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    elif str(given) == "":
        raise RootError(
            "ROOT is empty (give the registry's storage folder, or omit ROOT to use "
            f"${ROOT_ENV}, else {DEFAULT_ROOT})"
        )
    path = Path(given).expanduser()
    shown = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RootError("no such folder", path=shown) from None
    except PermissionError:
        raise RootError("permission denied", path=shown) from None
    except OSError as exc:
        raise RootError(exc.strerror or str(exc), path=shown) from None
    if not stat_mod.S_ISDIR(st.st_mode):
        raise RootError("not a folder", path=shown)
    if not os.access(path, os.R_OK | os.X_OK):
        raise RootError("folder is not readable", path=shown)
    candidates = [path.joinpath(*V2), path]
    for cand in candidates:
        if _looks_like_v2(cand, is_given=cand == path):
            if not os.access(cand, os.R_OK | os.X_OK):
                raise RootError("folder is not readable", path=str(cand))
            return cand.absolute()
    raise RootError(
        "not a registry storage root (no docker/registry/v2 with blobs/ or repositories/ inside)",
        path=shown,
    )


def _looks_like_v2(cand: Path, *, is_given: bool) -> bool:
    if is_given and cand.name != "v2":
        return False
    try:
        names = set(os.listdir(cand))
    except OSError:
        return False
    return bool(names & {"blobs", "repositories"})


class LocalStorage:
    """Filesystem access below one ``v2`` folder; every path argument is relative to it."""

    def __init__(self, v2: Path) -> None:
        self.v2 = v2
        self.base = str(v2)

    def abspath(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

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

    def lstat(self, rel: str) -> os.stat_result:
        return os.lstat(self.abspath(rel))

    def stat(self, rel: str) -> os.stat_result:
        """``os.stat``: follows symbolic links (what the registry sees through one)."""
        return os.stat(self.abspath(rel))

    def realpath(self, rel: str) -> str:
        return os.path.realpath(self.abspath(rel))

    def exists(self, rel: str) -> bool:
        try:
            os.lstat(self.abspath(rel))
        except FileNotFoundError:
            return False
        return True
