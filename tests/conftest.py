"""Shared fixtures for the unit tests: a tmp-path storage builder and permission denial."""

import faulthandler
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import s3bed
from builder import StoreBuilder

from regfs.storage.local import LocalStorage

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def builder(tmp_path: Path) -> StoreBuilder:
    """An empty registry storage (rootdirectory ``tmp_path/registry``) to build trees in."""
    return StoreBuilder(tmp_path / "registry")


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """``deny(path)``: make a folder (or file) unreadable.

    Uses ``chmod 000`` when that really denies access (not root). As root, where it does not,
    it is simulated: ``LocalStorage.list_dir``/``list_kinds``/``read_file`` raise
    PermissionError and ``os.access``/``os.listdir`` answer as they would for an unreadable
    path.
    """
    restore: list[tuple[Path, int]] = []
    simulated: list[str] = []

    def is_denied(path: Any) -> bool:
        if not isinstance(path, str | os.PathLike):
            return False
        p = os.path.abspath(os.fspath(path))
        return any(p == d or p.startswith(d + "/") for d in simulated)

    def install() -> None:
        orig_list = LocalStorage.list_dir
        orig_kinds = LocalStorage.list_kinds
        orig_read = LocalStorage.read_file
        orig_access = os.access
        orig_listdir = os.listdir

        def list_dir(self: LocalStorage, rel: str) -> Any:
            if is_denied(self.abspath(rel)):
                raise PermissionError(13, "Permission denied", self.abspath(rel))
            return orig_list(self, rel)

        def list_kinds(self: LocalStorage, rel: str) -> Any:
            if is_denied(self.abspath(rel)):
                raise PermissionError(13, "Permission denied", self.abspath(rel))
            return orig_kinds(self, rel)

        def read_file(self: LocalStorage, rel: str, limit: int, **kw: Any) -> Any:
            if is_denied(self.abspath(rel)):
                raise PermissionError(13, "Permission denied", self.abspath(rel))
            return orig_read(self, rel, limit, **kw)

        def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
            if is_denied(path):
                return False
            return orig_access(path, mode, *args, **kwargs)

        def listdir(path: Any = ".") -> list[Any]:
            if is_denied(path):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return orig_listdir(path)

        monkeypatch.setattr(LocalStorage, "list_dir", list_dir)
        monkeypatch.setattr(LocalStorage, "list_kinds", list_kinds)
        monkeypatch.setattr(LocalStorage, "read_file", read_file)
        monkeypatch.setattr(os, "access", access)
        monkeypatch.setattr(os, "listdir", listdir)

    def _deny(path: Path) -> None:
        path = Path(path)
        if not IS_ROOT:
            mode = path.stat().st_mode & 0o7777
            os.chmod(path, 0)
            restore.append((path, mode))
            if not os.access(path, os.R_OK):
                return
            os.chmod(path, mode)
            restore.pop()
        if not simulated:
            install()
        simulated.append(os.path.abspath(path))

    yield _deny
    for path, mode in reversed(restore):
        os.chmod(path, mode)


@pytest.fixture(scope="session")
def weed() -> Iterator[s3bed.Weed]:
    """One ``weed mini`` (SeaweedFS S3 on 127.0.0.1) for the whole run; skipped locally when
    ``weed`` is missing, a failure with ``CI=true``. Tests share its bucket: each takes its own
    prefix (:func:`s3_root`)."""
    with s3bed.Weed() as server:
        yield server


@pytest.fixture
def s3_root(weed: s3bed.Weed) -> Iterator[str]:
    """A fresh key prefix in the shared bucket (a registry ``rootdirectory`` without its
    leading slash), emptied afterwards."""
    prefix = weed.new_prefix()
    yield prefix
    s3bed.delete_prefix(weed.client(), weed.bucket, prefix + "/")


@pytest.fixture(scope="session")
def scenarios(weed: s3bed.Weed) -> s3bed.Scenarios:
    """The fixture scenarios written to S3 by the real registry (built on first use, shared by
    the session: read them, never change them)."""
    import realreg

    realreg.require_binaries()
    return s3bed.Scenarios(weed)


# The terminal's stderr, kept before pytest captures fd 2 around each test (as pytest's own
# faulthandler plugin does): the backstop's stacks must reach the log, not a capture file.
_REAL_STDERR: list[int] = [2]


def pytest_configure(config: pytest.Config) -> None:
    _REAL_STDERR[0] = os.dup(2)


def _timeout_of(request: pytest.FixtureRequest) -> float:
    """The test's pytest-timeout limit (its marker, else the ini default; 300 without the
    plugin)."""
    marker = request.node.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    try:
        return float(request.config.getini("timeout") or 0)
    except ValueError:
        return 300.0


@pytest.fixture(autouse=True)
def _hang_backstop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Behind pytest-timeout: a test stuck in C code holding the GIL (a backtracking regular
    expression) runs neither its SIGALRM handler nor its timer thread. faulthandler's watchdog
    is a C thread: 30 s after the limit it prints every thread's stack and exits the run."""
    limit = _timeout_of(request)
    if limit > 0:
        faulthandler.dump_traceback_later(limit + 30, exit=True, file=_REAL_STDERR[0])
    yield
    faulthandler.cancel_dump_traceback_later()
