"""regfs.storage.base: the error kinds every backend maps its failures to, and path checks."""

from __future__ import annotations

import errno
import os

import pytest

from regfs.storage.base import (
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


@pytest.mark.parametrize(
    ("code", "cls", "builtin"),
    [
        (errno.ENOENT, NotFound, FileNotFoundError),
        (errno.EACCES, Denied, PermissionError),
        (errno.EPERM, Denied, PermissionError),
        (errno.ELOOP, SymlinkFound, OSError),
        (errno.ENOTDIR, NotAFolder, NotADirectoryError),
        (errno.EISDIR, IsAFolder, IsADirectoryError),
        (errno.ENOTEMPTY, NotEmpty, OSError),
        (errno.EEXIST, Exists, FileExistsError),
        (errno.EIO, Unavailable, OSError),
    ],
)
def test_oserrors_map_to_kinds_and_stay_oserrors(
    code: int, cls: type[StorageError], builtin: type[OSError]
) -> None:
    exc = from_oserror(OSError(code, os.strerror(code), "/x/y"), "blobs/y")
    assert type(exc) is cls
    assert isinstance(exc, builtin) and isinstance(exc, StorageError)
    assert exc.errno == code and exc.strerror == os.strerror(code)
    assert exc.filename == "blobs/y"
    assert exc.kind == cls.kind


def test_unknown_errno_is_kind_other_with_its_errno() -> None:
    exc = from_oserror(OSError(errno.ENOSPC, "No space left on device"))
    assert type(exc) is StorageError and exc.kind is ErrorKind.OTHER
    assert exc.errno == errno.ENOSPC and exc.strerror == "No space left on device"
    assert from_oserror(exc) is exc


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_storage_error_builds_every_kind_for_backends_without_errno(kind: ErrorKind) -> None:
    exc = storage_error(kind, "said the server", "repositories/a")
    assert exc.kind is kind
    assert exc.strerror == "said the server" and exc.filename == "repositories/a"
    assert isinstance(exc.errno, int)


@pytest.mark.parametrize("bad", ["/abs", "a//b", "a/./b", "a/../b", "..", ".", "a/", "a\0b"])
def test_check_path_refuses_unclean_paths(bad: str) -> None:
    with pytest.raises(InvalidPath):
        check_path(bad)


def test_check_path_splits_clean_paths() -> None:
    assert check_path("") == []
    assert check_path("blobs/sha256/ab") == ["blobs", "sha256", "ab"]
    assert check_path("repositories/a/_uploads/x.y") == ["repositories", "a", "_uploads", "x.y"]
