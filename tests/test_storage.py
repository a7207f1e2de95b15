"""regfs.storage.local: ROOT resolution and filesystem access that never follows links."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from builder import StoreBuilder

from regfs.errors import EXIT_USAGE, RootError
from regfs.storage import root as storage_mod
from regfs.storage.local import DIR, FILE, OTHER, SYMLINK, LocalStorage, resolve_root

# --- resolve_root -----------------------------------------------------------------------------


def test_rootdirectory_resolves_to_v2(builder: StoreBuilder) -> None:
    assert resolve_root(builder.root) == builder.v2.absolute()
    assert resolve_root(str(builder.root)) == builder.v2.absolute()


def test_v2_folder_is_accepted_as_is(builder: StoreBuilder) -> None:
    assert resolve_root(builder.v2) == builder.v2.absolute()


def test_relative_root_becomes_absolute(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(builder.root.parent)
    got = resolve_root(builder.root.name)
    assert got.is_absolute()
    assert got == builder.v2.absolute()


def test_v2_with_only_blobs_or_only_repositories(tmp_path: Path) -> None:
    for part in ("blobs", "repositories"):
        v2 = tmp_path / part / "docker" / "registry" / "v2"
        (v2 / part).mkdir(parents=True)
        assert resolve_root(tmp_path / part) == v2


def test_env_var_used_when_root_omitted(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGFS_ROOT", str(builder.root))
    assert resolve_root(None) == builder.v2
    # An empty ROOT is an error, never a fallback to $REGFS_ROOT or the default.
    with pytest.raises(RootError, match="ROOT is empty"):
        resolve_root("")


def test_default_root_when_nothing_given(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGFS_ROOT", raising=False)
    assert storage_mod.DEFAULT_ROOT == "/var/lib/registry"
    monkeypatch.setattr(storage_mod, "DEFAULT_ROOT", str(builder.root))
    assert resolve_root(None) == builder.v2


def test_empty_env_var_falls_back_to_default(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGFS_ROOT", "")
    monkeypatch.setattr(storage_mod, "DEFAULT_ROOT", str(builder.v2))
    assert resolve_root(None) == builder.v2


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RootError) as exc:
        resolve_root(missing)
    assert exc.value.path == str(missing)
    assert exc.value.message == "no such folder"
    assert str(exc.value) == f"{missing}: no such folder"
    assert exc.value.exit_code == EXIT_USAGE


def test_root_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RootError) as exc:
        resolve_root(f)
    assert exc.value.path == str(f)
    assert exc.value.message == "not a folder"


def test_empty_folder_is_not_a_root(tmp_path: Path) -> None:
    with pytest.raises(RootError) as exc:
        resolve_root(tmp_path)
    assert exc.value.path == str(tmp_path)
    assert "not a registry storage root" in exc.value.message


def test_v2_without_blobs_or_repositories_is_not_a_root(tmp_path: Path) -> None:
    v2 = tmp_path / "docker" / "registry" / "v2"
    (v2 / "other").mkdir(parents=True)
    for given in (tmp_path, v2):
        with pytest.raises(RootError, match="not a registry storage root"):
            resolve_root(given)


def test_a_folder_not_named_v2_is_not_taken_for_one(tmp_path: Path) -> None:
    # blobs/ directly inside ROOT is not the layout: ROOT must be the rootdirectory or v2.
    (tmp_path / "store" / "blobs").mkdir(parents=True)
    with pytest.raises(RootError, match="not a registry storage root"):
        resolve_root(tmp_path / "store")


def test_unreadable_root(builder: StoreBuilder, deny: Callable[[Path], None]) -> None:
    deny(builder.root)
    with pytest.raises(RootError) as exc:
        resolve_root(builder.root)
    assert exc.value.path == str(builder.root)
    assert "not readable" in exc.value.message or "permission" in exc.value.message


def test_unreadable_v2(builder: StoreBuilder, deny: Callable[[Path], None]) -> None:
    deny(builder.v2)
    with pytest.raises(RootError) as exc:
        resolve_root(builder.v2)
    assert exc.value.path == str(builder.v2)


def test_tilde_is_expanded(builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(builder.root.parent))
    assert resolve_root("~/" + builder.root.name) == builder.v2


# --- LocalStorage ---------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> LocalStorage:
    v2 = tmp_path / "v2"
    (v2 / "d").mkdir(parents=True)
    (v2 / "d" / "f").write_bytes(b"hello world")
    os.utime(v2 / "d" / "f", (1_600_000_000, 1_600_000_000))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside, v2 / "d" / "dirlink")
    os.symlink(outside / "secret", v2 / "d" / "filelink")
    os.symlink(tmp_path / "nowhere", v2 / "d" / "broken")
    os.mkfifo(v2 / "d" / "fifo")
    return LocalStorage(v2)


def test_list_dir_reports_links_as_links(tree: LocalStorage) -> None:
    entries = {e.name: e for e in tree.list_dir("d")}
    assert set(entries) == {"f", "dirlink", "filelink", "broken", "fifo"}
    assert entries["f"].kind == FILE
    assert entries["f"].size == 11
    assert entries["f"].mtime == 1_600_000_000
    for name in ("dirlink", "filelink", "broken"):
        assert entries[name].kind == SYMLINK
        assert entries[name].size == 0
    assert entries["fifo"].kind == OTHER
    assert [e.kind for e in tree.list_dir("")] == [DIR]


def test_list_dir_errors(tree: LocalStorage) -> None:
    with pytest.raises(FileNotFoundError):
        tree.list_dir("missing")
    with pytest.raises(NotADirectoryError):
        tree.list_dir("d/f")


def test_read_file(tree: LocalStorage) -> None:
    data, size, mtime = tree.read_file("d/f", 100)
    assert (data, size, mtime) == (b"hello world", 11, 1_600_000_000)
    data, size, _ = tree.read_file("d/f", 5)
    assert (data, size) == (b"hello", 11)


def test_read_file_never_follows_a_symlink(tree: LocalStorage) -> None:
    with pytest.raises(OSError) as exc:
        tree.read_file("d/filelink", 100)
    assert exc.value.errno == errno.ELOOP


def test_read_file_refuses_folders_and_missing_files(tree: LocalStorage) -> None:
    with pytest.raises(IsADirectoryError):
        tree.read_file("d", 100)
    with pytest.raises(FileNotFoundError):
        tree.read_file("d/missing", 100)


def test_read_empty_file(tree: LocalStorage) -> None:
    (tree.v2 / "d" / "empty").write_bytes(b"")
    assert tree.read_file("d/empty", 100)[:2] == (b"", 0)


def test_exists_lstat_abspath(tree: LocalStorage) -> None:
    assert tree.exists("d/f")
    assert tree.exists("d/broken")  # the link itself exists
    assert not tree.exists("d/missing")
    assert tree.lstat("d/f").st_size == 11
    assert tree.abspath("") == str(tree.v2)
    assert tree.abspath("d/f") == f"{tree.v2}/d/f"
