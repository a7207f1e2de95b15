"""The local and in-memory backends behave alike (one contract, run against both).

Read side: kinds, sizes, errors as values, links reported and not followed unless asked.
Change side: nothing goes through or beyond a symbolic link, whatever the path; trash moves
and restores never overwrite. State store: exclusive creates, atomic writes, no links.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from regfs.storage.base import (
    DIR,
    FILE,
    OTHER,
    SYMLINK,
    Denied,
    Exists,
    IsAFolder,
    ListError,
    NotAFolder,
    NotEmpty,
    NotFound,
    ObjectInfo,
    StateStore,
    Storage,
    StorageError,
    SymlinkFound,
)
from regfs.storage.local import LocalStorage
from regfs.storage.memfs import MemoryFS
from regfs.storage.memory import MemoryStorage


@dataclass
class Bed:
    """A backend with helpers that build its content directly (not through the seam)."""

    storage: Any
    write: Any  # (rel, data) -> None, rel relative to v2
    mkdir: Any
    symlink_out: Any  # (rel) -> None: rel becomes a link to a folder outside the store
    fifo: Any
    outside: Any  # () -> set of names in the outside folder

    @property
    def state(self) -> StateStore:
        st: StateStore = self.storage.state
        return st


def _local(tmp_path: Path) -> Bed:
    v2 = tmp_path / "store" / "docker" / "registry" / "v2"
    v2.mkdir(parents=True)
    out = tmp_path / "outside"
    out.mkdir()
    (out / "data").write_bytes(b"precious")
    (out / "link").write_bytes(b"precious")

    def write(rel: str, data: bytes) -> None:
        p = v2 / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def symlink_out(rel: str) -> None:
        p = v2 / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(out)

    def fifo(rel: str) -> None:
        p = v2 / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(p)

    return Bed(
        LocalStorage(v2),
        write,
        lambda rel: (v2 / rel).mkdir(parents=True, exist_ok=True),
        symlink_out,
        fifo,
        lambda: {p.name for p in out.iterdir()},
    )


def _memory(_tmp_path: Path) -> Bed:
    fs = MemoryFS()
    st = MemoryStorage(fs)
    fs.write("/outside/data", b"precious")
    fs.write("/outside/link", b"precious")
    return Bed(
        st,
        lambda rel, data: fs.write(st.abspath(rel), data),
        lambda rel: fs.mkdir(st.abspath(rel)),
        lambda rel: fs.symlink(st.abspath(rel), "/outside"),
        lambda rel: fs.fifo(st.abspath(rel)),
        lambda: set(fs.node("/outside").children),
    )


@pytest.fixture(params=["local", "memory"])
def bed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bed]:
    b = (_local if request.param == "local" else _memory)(tmp_path)
    assert isinstance(b.storage, Storage)
    yield b


BLOB = "blobs/sha256/ab/abcd"


def test_listing_kinds_sizes_and_errors_as_values(bed: Bed) -> None:
    bed.write(f"{BLOB}/data", b"12345")
    bed.symlink_out("blobs/sha256/cd")
    bed.fifo("blobs/sha256/ef")
    st: Storage = bed.storage
    entries = {e.name: e for e in st.list_dir("blobs/sha256")}
    assert {n: e.kind for n, e in entries.items()} == {"ab": DIR, "cd": SYMLINK, "ef": OTHER}
    assert st.list_dir(BLOB)[0][:3] == ("data", FILE, 5)
    assert dict(st.list_kinds("blobs/sha256")) == {"ab": DIR, "cd": SYMLINK, "ef": OTHER}
    missing = st.list_folder("repositories")
    assert missing.entries == [] and isinstance(missing.error, NotFound)
    assert isinstance(st.list_folder(f"{BLOB}/data").error, NotAFolder)
    assert st.list_folder(BLOB).error is None


def test_list_prefix_is_recursive_and_never_follows_links(bed: Bed) -> None:
    bed.write(f"{BLOB}/data", b"12345")
    bed.symlink_out("blobs/sha256/cd")
    got = {o.path: o for o in bed.storage.list_prefix("blobs") if isinstance(o, ObjectInfo)}
    assert got[f"{BLOB}/data"].kind == FILE and got[f"{BLOB}/data"].size == 5
    assert got["blobs/sha256/cd"].kind == SYMLINK
    assert not any(p.startswith("blobs/sha256/cd/") for p in got)
    assert got["blobs/sha256"].kind == DIR
    errs = list(bed.storage.list_prefix("nothing"))
    assert len(errs) == 1 and isinstance(errs[0], ListError)
    assert isinstance(errs[0].error, NotFound)


def test_read_with_limit_links_and_streams(bed: Bed) -> None:
    bed.write(f"{BLOB}/data", b"0123456789")
    st: Storage = bed.storage
    assert st.read_file(f"{BLOB}/data", 4)[:2] == (b"0123", 10)
    # Intermediate links are followed on the read side (the registry serves through them)...
    bed.symlink_out("repositories")
    assert st.read_file("repositories/data", 100)[0] == b"precious"
    assert st.stat("repositories").st_mode & stat.S_IFDIR
    assert stat.S_ISLNK(st.lstat("repositories").st_mode)
    # ...a final one only when asked.
    bed.symlink_out("blobs/sha256/cd")
    with pytest.raises(OSError):
        st.read_file("blobs/sha256/cd", 10)
    with pytest.raises(IsADirectoryError):
        st.read_file(BLOB, 10)
    with st.open_stream(f"{BLOB}/data") as s:
        assert s.stat().st_size == 10
        assert s.read(3) == b"012"
        buf = memoryview(bytearray(4))
        assert s.readinto(buf) == 4 and bytes(buf) == b"3456"
        assert s.read() == b"789" and s.read(5) == b""
    assert st.exists(f"{BLOB}/data") and not st.exists("blobs/nothing")


def test_unlink_and_rmdir_errors_by_kind(bed: Bed) -> None:
    bed.write(f"{BLOB}/data", b"x")
    st: Storage = bed.storage
    with pytest.raises(NotEmpty):
        st.rmdir(BLOB)
    with pytest.raises(NotFound):
        st.unlink(f"{BLOB}/nothing")
    with pytest.raises((IsAFolder, Denied)):
        st.unlink(BLOB)  # Linux: EISDIR
    st.unlink(f"{BLOB}/data")
    st.rmdir(BLOB)
    assert not st.exists(BLOB)
    with pytest.raises(NotFound):
        st.rmdir(BLOB)


@pytest.mark.parametrize("where", ["blobs", "blobs/sha256", "blobs/sha256/ab"])
def test_no_change_goes_through_a_link_anywhere_on_the_path(bed: Bed, where: str) -> None:
    """A folder swapped for a link to an outside folder holding files of the same names."""
    bed.write(f"{BLOB}/data", b"x")
    st: Storage = bed.storage
    before = bed.outside()
    # Replace ``where`` by a link (below it is now the outside folder, with a "data" file).
    st.move_to_trash(where, "r0")  # the real folder aside (through the seam)
    bed.symlink_out(where)
    target = {"blobs": "blobs/data", "blobs/sha256": "blobs/sha256/data"}.get(
        where, "blobs/sha256/ab/data"
    )
    changes: list[Callable[[], object]] = [
        lambda: st.unlink(target),
        lambda: st.rmdir(target.rsplit("/", 1)[0] + "/link"),
        lambda: st.move_to_trash(target, "r1"),
    ]
    for change in changes:
        with pytest.raises((SymlinkFound, NotAFolder)):
            change()
    assert bed.outside() == before


def test_trash_moves_and_restores_without_overwriting(bed: Bed) -> None:
    bed.write(f"{BLOB}/data", b"x")
    st: Storage = bed.storage
    st.move_to_trash(BLOB, "run1")
    assert not st.exists(BLOB) and st.in_trash("run1", BLOB)
    assert bed.state.tree_size("trash/run1") == (1, 1)
    bed.write(f"{BLOB}/data", b"new")
    with pytest.raises(Exists):
        st.restore_from_trash("run1", BLOB)
    assert st.read_file(f"{BLOB}/data", 10)[0] == b"new"
    st.unlink(f"{BLOB}/data")
    st.rmdir(BLOB)
    st.rmdir("blobs/sha256/ab")
    st.restore_from_trash("run1", BLOB)  # parents created again
    assert st.read_file(f"{BLOB}/data", 10)[0] == b"x"
    assert not st.in_trash("run1", BLOB)
    st.make_folders("repositories/a/_layers")
    assert st.list_dir("repositories/a")[0][:2] == ("_layers", DIR)


def test_state_store(bed: Bed) -> None:
    s = bed.state
    s.create_exclusive("lock", b"me")
    with pytest.raises(Exists):
        s.create_exclusive("lock", b"other")
    assert s.read("lock") == b"me"
    s.write_atomic("runs/r1/plan.json", b"{}")
    s.write_atomic("runs/r1/plan.json", b"{1}")
    assert s.read("runs/r1/plan.json") == b"{1}"
    a = s.open_append("runs/r1/done")
    a.write("0\tdone\t\n")
    a.write("1\tgone\t\n")
    a.sync()
    a.close()
    assert s.read("runs/r1/done") == b"0\tdone\t\n1\tgone\t\n"
    assert sorted(e.name for e in s.list_dir("runs/r1")) == ["done", "plan.json"]
    assert s.is_folder("runs/r1") and not s.is_folder("runs/r2") and not s.is_folder("lock")
    assert s.tree_size("runs") == (2, 3 + 16)
    assert s.tree_size("nothing") == (0, 0)
    s.remove("lock")
    with pytest.raises(NotFound):
        s.read("lock")
    with pytest.raises(NotFound):
        s.remove("lock")
    s.remove_tree("runs")
    assert not s.is_folder("runs")
    assert s.path("lock").endswith("/.regfs/lock")


def test_state_store_never_writes_through_a_link(tmp_path: Path) -> None:
    bed = _local(tmp_path)
    state = tmp_path / "store" / ".regfs"
    state.symlink_to(tmp_path / "outside")
    before = bed.outside()
    for write in (
        lambda: bed.state.create_exclusive("lock", b"x"),
        lambda: bed.state.write_atomic("runs/x/plan.json", b"x"),
        lambda: bed.state.open_append("runs/x/done"),
        lambda: bed.state.remove("data"),
        lambda: bed.state.remove_tree("link"),
    ):
        with pytest.raises(StorageError):
            write()
    assert bed.outside() == before
    state.unlink()
    state.mkdir()
    (state / "lock").symlink_to(tmp_path / "outside" / "data")
    with pytest.raises(StorageError):
        bed.state.read("lock")
    with pytest.raises(Exists):
        bed.state.create_exclusive("lock", b"x")
    assert (tmp_path / "outside" / "data").read_bytes() == b"precious"
