"""The storage seam: what regfs needs from a registry store, and from a place for its own state.

Every read, re-check and change of registry data goes through a :class:`Storage`; regfs's own
state (the lock, run journals, the trash) through a :class:`StateStore`. Backends:
:mod:`regfs.storage.local` (a filesystem, every change relative to directory descriptors
opened without following links), :mod:`regfs.storage.memory` (in-process, for fast unit
tests) and :mod:`regfs.storage.s3` (an S3 bucket);
:mod:`regfs.storage.listed` answers the read side from one recursive listing.

Paths are POSIX strings relative to the store's ``docker/registry/v2`` folder (``""`` is that
folder), as :mod:`regfs.layout` builds them; a backend never interprets them beyond splitting
on ``/``. A path component that is ``""``, ``.`` or ``..`` is refused (:class:`InvalidPath`).

Errors are :class:`StorageError` subclasses, one per :class:`ErrorKind`. They subclass
:class:`OSError` (and the matching built-in subclass, e.g. :class:`FileNotFoundError`), keep
``errno`` and ``strerror``, so code written against ``os`` errors keeps working; an object
store maps its error codes to the same kinds (``NoSuchKey`` -> ``NOT_FOUND``, ``AccessDenied``
-> ``DENIED``, throttling after retries -> ``UNAVAILABLE``). Where a caller needs every
problem rather than the first (a scan), listings return the error as a value
(:class:`Listing`, :class:`ListError`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol, runtime_checkable

from regfs.storage.errors import (
    Denied,
    ErrorKind,
    Exists,
    InvalidPath,
    IsAFolder,
    NotAFolder,
    NotEmpty,
    NotFound,
    StorageError,
    SymlinkFound,
    Unavailable,
    check_path,
    from_oserror,
    storage_error,
)

__all__ = [
    "DIR",
    "FILE",
    "KINDS",
    "OTHER",
    "SYMLINK",
    "Appender",
    "Denied",
    "Entry",
    "ErrorKind",
    "Exists",
    "InvalidPath",
    "IsAFolder",
    "ListError",
    "Listing",
    "NotAFolder",
    "NotEmpty",
    "NotFound",
    "ObjectInfo",
    "Stat",
    "StatLike",
    "StateStore",
    "Storage",
    "StorageError",
    "Stream",
    "SymlinkFound",
    "Unavailable",
    "check_path",
    "from_oserror",
    "storage_error",
]

# Entry kinds. An object store has only FILE (and lists no folders: a folder is a prefix).
DIR, FILE, SYMLINK, OTHER = "dir", "file", "symlink", "other"
KINDS = (DIR, FILE, SYMLINK, OTHER)


class Entry(NamedTuple):
    """One entry of a folder listing, links not followed. ``size``/``mtime`` are those of a
    FILE (0 for anything else, and 0.0 where the listing does not carry them)."""

    name: str
    kind: str
    size: int
    mtime: float


class ObjectInfo(NamedTuple):
    """One entry of a recursive listing (:meth:`Storage.list_prefix`).

    ``path`` is relative to v2. ``etag`` is the object store's entity tag when the backend has
    one (S3: the MD5 of a single-part, unencrypted object, quotes removed), else None.
    """

    path: str
    kind: str
    size: int
    mtime: float
    etag: str | None = None


class Listing(NamedTuple):
    """One folder's listing with its error as a value: ``entries`` is empty when ``error``
    is set (the folder could not be read: missing, denied, a link, ...)."""

    path: str
    entries: list[Entry]
    error: StorageError | None = None


class ListError(NamedTuple):
    """A part of a recursive listing that could not be listed (the rest still is)."""

    path: str
    error: StorageError


class StatLike(Protocol):
    """What :meth:`Storage.lstat` and :meth:`Storage.stat` return: ``os.stat_result`` on a
    filesystem, :class:`Stat` elsewhere. ``st_mode`` carries the kind (``stat.S_IS*``)."""

    @property
    def st_mode(self) -> int:
        """File type and permission bits, as ``os.stat_result.st_mode``."""
        ...

    @property
    def st_size(self) -> int:
        """Size in bytes."""
        ...

    @property
    def st_mtime(self) -> float:
        """Last modification, seconds since the epoch."""
        ...


class Stat(NamedTuple):
    """A :class:`StatLike` for backends without ``os.stat_result`` (an object store)."""

    st_mode: int
    st_size: int
    st_mtime: float
    etag: str | None = None


class Stream(Protocol):
    """An open file for reading (:meth:`Storage.open_stream`): a context manager."""

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n < 0``); ``b""`` at the end."""
        ...

    def readinto(self, buf: memoryview) -> int:
        """Fill ``buf`` as far as possible; the number of bytes read, 0 at the end."""
        ...

    def stat(self) -> StatLike:
        """Kind, size and mtime of the open file (a filesystem: ``fstat``)."""
        ...

    def close(self) -> None:
        """Release the file; idempotent."""
        ...

    def __enter__(self) -> Stream:
        """The stream itself."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close it."""
        ...


@runtime_checkable
class Storage(Protocol):
    """A registry store below its ``docker/registry/v2`` folder.

    Read side (the scan, reports, re-checks): :meth:`list_dir`, :meth:`list_kinds`,
    :meth:`list_folder`, :meth:`list_prefix`, :meth:`read_file`, :meth:`open_stream`,
    :meth:`lstat`, :meth:`stat`, :meth:`exists`. Nothing on the read side follows a symbolic
    link unless asked (``follow=True``, :meth:`stat`): the registry follows links, so the scan
    may read through one, for marking only.

    Change side (the gc executor only): :meth:`unlink`, :meth:`rmdir`, :meth:`move_to_trash`,
    :meth:`restore_from_trash`, :meth:`make_folders`. A change never goes through or beyond a
    symbolic link: a link anywhere on the path fails with :class:`SymlinkFound` (or
    :class:`NotAFolder`) and changes nothing, even when a folder was swapped for a link after
    the caller looked.
    """

    @property
    def location(self) -> str:
        """Where the v2 folder is, for messages (an absolute path, ``s3://bucket/prefix``)."""
        ...

    def abspath(self, rel: str) -> str:
        """``rel`` as shown to the user (never used to reach the data)."""
        ...

    @property
    def prefers_listing(self) -> bool:
        """True when one recursive :meth:`list_prefix` of the whole store is cheaper than
        walking it folder by folder (an object store: a request per folder, no folders);
        False for a filesystem. The scan enumerates accordingly (:mod:`regfs.scan`)."""
        ...

    # --- read side ---------------------------------------------------------------------------

    def list_dir(self, rel: str) -> list[Entry]:
        """The folder's entries (kind, and size/mtime of files); raises :class:`StorageError`."""
        ...

    def list_kinds(self, rel: str) -> list[tuple[str, str]]:
        """``(name, kind)`` of each entry, as cheaply as the backend can; raises."""
        ...

    def list_folder(self, rel: str) -> Listing:
        """:meth:`list_dir` with the error as a value."""
        ...

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        """Everything below ``rel``, recursively, as an object store lists a prefix.

        Files (and symbolic links and other entries, not followed) as :class:`ObjectInfo`,
        with an ``etag`` where the backend has one. A filesystem also yields each folder
        (kind DIR, before its contents) so that empty folders are seen; an object store has
        none. A part that cannot be listed is a :class:`ListError` and the walk goes on.
        The order is unspecified.
        """
        ...

    def read_file(self, rel: str, limit: int, *, follow: bool = False) -> tuple[bytes, int, float]:
        """At most ``limit`` bytes of a regular file: ``(data, size, mtime)``.

        A final component that is a link fails with :class:`SymlinkFound` unless ``follow``;
        anything but a regular file with :class:`IsAFolder`."""
        ...

    def open_stream(self, rel: str) -> Stream:
        """A regular file opened for reading (hashing), links not followed; raises like
        :meth:`read_file`. Meant for many calls: backends keep what they can reuse."""
        ...

    def close_streams(self) -> None:
        """Release what :meth:`open_stream` keeps for reuse (a no-op where nothing is)."""
        ...

    def lstat(self, rel: str) -> StatLike:
        """Kind, size, mtime of ``rel`` itself (a link is not followed)."""
        ...

    def stat(self, rel: str) -> StatLike:
        """Like :meth:`lstat` but following links (what the registry sees through one)."""
        ...

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` exists (a dangling link does)."""
        ...

    def realpath(self, rel: str) -> str:
        """Where ``rel`` really is once links are resolved (the path itself without links)."""
        ...

    # --- change side -------------------------------------------------------------------------

    def unlink(self, rel: str) -> None:
        """Delete a file (not a folder); no link on the path is followed."""
        ...

    def rmdir(self, rel: str) -> None:
        """Remove an empty folder (:class:`NotEmpty` otherwise); no link is followed."""
        ...

    def move_to_trash(self, rel: str, run_id: str) -> None:
        """Move ``rel`` (a file or a whole folder) to ``trash/<run_id>/<rel>`` of the state
        store, creating the folders on the way. Atomic on a filesystem (one rename); an object
        store copies, then deletes."""
        ...

    def restore_from_trash(self, run_id: str, rel: str) -> None:
        """Move ``trash/<run_id>/<rel>`` back to ``rel``, creating its parent folders; raises
        :class:`Exists` when ``rel`` is taken (never overwrites)."""
        ...

    def in_trash(self, run_id: str, rel: str) -> bool:
        """Whether ``trash/<run_id>/<rel>`` exists."""
        ...

    def make_folders(self, rel: str) -> None:
        """Create ``rel`` and its missing parents as folders (a no-op where there are none)."""
        ...


@runtime_checkable
class StateStore(Protocol):
    """regfs's own state next to a store (``<rootdirectory>/.regfs`` on a filesystem): the
    lock, run journals (``runs/<id>/…``) and the trash (``trash/<id>/…``).

    Paths are relative to the state folder. Writes never follow a link: a state file or
    folder replaced by a symbolic link fails (:class:`SymlinkFound`) instead of writing
    elsewhere.
    """

    @property
    def location(self) -> str:
        """Where the state is, for messages."""
        ...

    def path(self, rel: str) -> str:
        """``rel`` as shown to the user."""
        ...

    def create_exclusive(self, rel: str, data: bytes) -> None:
        """Create a file that must not exist (:class:`Exists` otherwise), write ``data``,
        make it durable. Parent folders are created. The primitive of the lock."""
        ...

    def read(self, rel: str) -> bytes:
        """The whole file; raises :class:`NotFound` and the like."""
        ...

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace the file with ``data`` atomically and durably (temporary file, fsync,
        rename, fsync of the folder). Parent folders are created."""
        ...

    def open_append(self, rel: str) -> Appender:
        """Open a file for appending lines (created if missing, parents too)."""
        ...

    def remove(self, rel: str) -> None:
        """Delete a file; raises :class:`NotFound` when it is not there."""
        ...

    def list_dir(self, rel: str) -> list[Entry]:
        """The folder's entries; raises :class:`NotFound` and the like."""
        ...

    def is_folder(self, rel: str) -> bool:
        """Whether ``rel`` is a folder (not a link to one)."""
        ...

    def lstat(self, rel: str) -> StatLike:
        """Kind, size, mtime of ``rel`` (a link is not followed)."""
        ...

    def tree_size(self, rel: str) -> tuple[int, int]:
        """``(files, bytes)`` below ``rel`` (0, 0 when it does not exist)."""
        ...

    def remove_tree(self, rel: str) -> None:
        """Delete ``rel`` and everything below it, never following a link."""
        ...


class Appender(Protocol):
    """A state file open for appending (:meth:`StateStore.open_append`)."""

    def write(self, text: str) -> None:
        """Append ``text`` and flush it to the operating system."""
        ...

    def sync(self) -> None:
        """Make what was written durable."""
        ...

    def close(self) -> None:
        """Close the file; idempotent."""
        ...
