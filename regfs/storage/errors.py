"""Storage errors by kind (re-exported by :mod:`regfs.storage.base`, where they are described).

Each kind is a :class:`StorageError` subclass that is also the matching built-in ``OSError``
subclass, with ``errno``, ``strerror`` and ``filename`` kept.
"""

from __future__ import annotations

import enum
import errno as errno_mod
import os


class ErrorKind(enum.Enum):
    """What went wrong, independent of the backend."""

    NOT_FOUND = "not_found"  # ENOENT, NoSuchKey
    DENIED = "denied"  # EACCES, EPERM, AccessDenied
    SYMLINK = "symlink"  # ELOOP: a symbolic link where none is followed
    NOT_A_FOLDER = "not_a_folder"  # ENOTDIR
    IS_A_FOLDER = "is_a_folder"  # EISDIR, or not a regular file where one is read
    NOT_EMPTY = "not_empty"  # ENOTEMPTY, EEXIST from rmdir
    EXISTS = "exists"  # EEXIST on an exclusive create, a precondition failed
    INVALID_PATH = "invalid_path"  # a path that is not a clean relative path
    UNAVAILABLE = "unavailable"  # EIO, network errors, throttling after retries
    OTHER = "other"  # anything else (ENOSPC, EROFS, ...): errno says what


class StorageError(OSError):
    """A storage operation failed. ``kind`` says how; ``errno``/``strerror``/``filename``
    are those of the underlying error (an errno the kind implies when there is none)."""

    kind: ErrorKind = ErrorKind.OTHER


class NotFound(StorageError, FileNotFoundError):
    """The path (or a folder on the way to it) does not exist."""

    kind = ErrorKind.NOT_FOUND


class Denied(StorageError, PermissionError):
    """Permission denied."""

    kind = ErrorKind.DENIED


class SymlinkFound(StorageError):
    """A symbolic link on the path, where links are never followed."""

    kind = ErrorKind.SYMLINK


class NotAFolder(StorageError, NotADirectoryError):
    """A component that must be a folder is not."""

    kind = ErrorKind.NOT_A_FOLDER


class IsAFolder(StorageError, IsADirectoryError):
    """A file was expected: a folder, or anything else that is not a regular file."""

    kind = ErrorKind.IS_A_FOLDER


class NotEmpty(StorageError):
    """A folder to remove is not empty."""

    kind = ErrorKind.NOT_EMPTY


class Exists(StorageError, FileExistsError):
    """An exclusive create found the name taken."""

    kind = ErrorKind.EXISTS


class InvalidPath(StorageError, ValueError):
    """A path that is not a clean relative path (empty, ``.`` or ``..`` components)."""

    kind = ErrorKind.INVALID_PATH


class Unavailable(StorageError):
    """An I/O or network error, throttling after retries: nothing is known."""

    kind = ErrorKind.UNAVAILABLE


_BY_ERRNO: dict[int, type[StorageError]] = {
    errno_mod.ENOENT: NotFound,
    errno_mod.EACCES: Denied,
    errno_mod.EPERM: Denied,
    errno_mod.ELOOP: SymlinkFound,
    errno_mod.ENOTDIR: NotAFolder,
    errno_mod.EISDIR: IsAFolder,
    errno_mod.ENOTEMPTY: NotEmpty,
    errno_mod.EEXIST: Exists,
    errno_mod.EIO: Unavailable,
}
_ERRNO_OF: dict[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: errno_mod.ENOENT,
    ErrorKind.DENIED: errno_mod.EACCES,
    ErrorKind.SYMLINK: errno_mod.ELOOP,
    ErrorKind.NOT_A_FOLDER: errno_mod.ENOTDIR,
    ErrorKind.IS_A_FOLDER: errno_mod.EISDIR,
    ErrorKind.NOT_EMPTY: errno_mod.ENOTEMPTY,
    ErrorKind.EXISTS: errno_mod.EEXIST,
    ErrorKind.INVALID_PATH: errno_mod.EINVAL,
    ErrorKind.UNAVAILABLE: errno_mod.EIO,
    ErrorKind.OTHER: errno_mod.EIO,
}
_CLASS_OF: dict[ErrorKind, type[StorageError]] = {
    cls.kind: cls
    for cls in (
        NotFound,
        Denied,
        SymlinkFound,
        NotAFolder,
        IsAFolder,
        NotEmpty,
        Exists,
        InvalidPath,
        Unavailable,
    )
}


def storage_error(
    kind: ErrorKind, message: str | None = None, path: str | None = None
) -> StorageError:
    """A :class:`StorageError` of ``kind`` (for backends without an errno, e.g. S3)."""
    code = _ERRNO_OF[kind]
    cls = _CLASS_OF.get(kind, StorageError)
    return cls(code, message or os.strerror(code), path)


def from_oserror(exc: OSError, path: str | None = None) -> StorageError:
    """The :class:`StorageError` for an ``OSError`` (returned as is when it already is one)."""
    if isinstance(exc, StorageError):
        return exc
    code = exc.errno if exc.errno is not None else errno_mod.EIO
    cls = _BY_ERRNO.get(code, StorageError)
    shown = path if path is not None else exc.filename
    return cls(code, exc.strerror or os.strerror(code), shown)


def check_path(rel: str) -> list[str]:
    """The components of a relative path (``[]`` for ``""``); raises :class:`InvalidPath`
    for an absolute path or an empty, ``.`` or ``..`` component."""
    if rel == "":
        return []
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\0" in part:
            raise InvalidPath(errno_mod.EINVAL, "not a clean relative path", rel)
    return parts
