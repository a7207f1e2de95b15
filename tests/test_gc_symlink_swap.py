"""Immune to symlink swaps (issue 12, security): regfs often runs as root over a ROOT the
registry's user owns. A folder swapped for a symbolic link between the executor's re-check and
its change must not redirect a delete, a trash move or a state write outside ROOT.

The swap happens inside the :class:`~regfs.gc.execute.Ops` seam, just before the real call:
exactly between the re-check and the change. The attacker moves the real folder outside ROOT
(so the link's target holds the very files the executor expects) and links it back.
Afterwards everything outside ROOT is byte-for-byte and mtime-for-mtime as it was, the step is
skipped with the reason, and the run goes on (or the trash move is refused likewise).

A second test runs a real ``regfs gc`` (delete and ``--trash``) under ``strace`` and shows that
no mutating system call names a path under ROOT: every unlink, rmdir, rename and mkdir, and
every open that creates, is an ``*at`` call with one name relative to a directory descriptor.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder
from gc_helpers import age_tree, assert_whole, rescan

from regfs.errors import RefusedError
from regfs.gc.execute import Ops
from regfs.gc.plan import GcOptions
from regfs.gc.run import collect
from regfs.storage.base import Storage

REPO_ROOT = Path(__file__).resolve().parent.parent


def build(b: StoreBuilder) -> None:
    base = b.layer("base")
    b.image("app", tags=["v1"], layers=[base, b.layer("old")])
    b.image("app", tags=["v1"], layers=[base, b.layer("new")])  # v1 moves: old goes
    for i in range(3):
        b.orphan_blob(f"orphan {i}".encode(), repo="app")
    b.upload("app", started_at="2020-01-02T03:04:05Z")
    age_tree(b.root)


def tree_state(path: Path) -> dict[str, Any]:
    """Every entry below ``path`` (links not followed) with its kind, bytes and mtime."""
    out: dict[str, Any] = {}
    for cur, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(cur, name)
            st = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(path))] = ("link", os.readlink(p))
            elif p.is_dir():
                out[str(p.relative_to(path))] = ("dir", st.st_mtime_ns)
            else:
                out[str(p.relative_to(path))] = ("file", p.read_bytes(), st.st_mtime_ns)
    return out


class SwappingOps(Ops):
    """Before the first change of kind ``op``, swaps the folder ``depth`` components up from
    the target for a link to a copy outside ROOT (the attacker's move)."""

    def __init__(self, v2: Path, outside: Path, op: str, depth: int) -> None:
        self.v2, self.outside, self.op, self.depth = v2, outside, op, depth
        self.swapped: str | None = None
        # Everything outside ROOT right after the attacker's move.
        self.outside_then: dict[str, Any] = {}

    def _swap(self, kind: str, path: str) -> None:
        if self.swapped is not None or kind != self.op:
            return
        parts = path.split("/")
        if self.depth >= len(parts):
            return
        folder = "/".join(parts[: len(parts) - self.depth])
        real = self.v2 / folder
        moved = self.outside / folder.replace("/", "_")
        shutil.move(str(real), str(moved))
        real.symlink_to(moved, target_is_directory=True)
        self.swapped = folder
        self.outside_then = tree_state(self.outside)

    def unlink(self, storage: Storage, path: str) -> None:
        self._swap("unlink", path)
        super().unlink(storage, path)

    def rmdir(self, storage: Storage, path: str) -> None:
        self._swap("rmdir", path)
        super().rmdir(storage, path)

    def move_to_trash(self, storage: Storage, path: str, run_id: str) -> None:
        self._swap("move_to_trash", path)
        super().move_to_trash(storage, path, run_id)


@pytest.mark.parametrize(
    ("op", "depth", "trash"),
    [
        ("unlink", 1, False),  # the folder holding the file
        ("unlink", 2, False),
        ("unlink", 3, False),
        ("unlink", 4, False),  # blobs/ or repositories/<name> itself
        ("rmdir", 1, False),
        ("rmdir", 2, False),
        ("move_to_trash", 1, True),
        ("move_to_trash", 2, True),
        ("move_to_trash", 3, True),
    ],
)
def test_a_folder_swapped_for_a_link_after_the_recheck_leads_nowhere_outside(
    tmp_path: Path, op: str, depth: int, trash: bool
) -> None:
    b = StoreBuilder(tmp_path / "store")
    build(b)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"not the registry's")
    ops = SwappingOps(b.v2, outside, op, depth)
    opts = GcOptions(min_age=0, delete_untagged=True, trash=trash)
    out = collect(str(b.root), opts, dry_run=False, skip_live_check=True, ops=ops)
    assert ops.swapped is not None, "the plan had no such step"
    assert out.executed is not None
    # Nothing outside ROOT changed after the attacker's move (the state right after it: the
    # attacker's copy is the registry's own data, now outside): no file, folder or mtime.
    assert tree_state(outside) == ops.outside_then
    assert (outside / "precious").read_bytes() == b"not the registry's"
    swapped = [r for r in out.executed.results if "symbolic link" in r.detail]
    assert swapped, [(r.action.path, r.status, r.detail) for r in out.executed.results]
    assert all(r.status == "skipped" for r in swapped)
    assert out.executed.failed is None
    # The copy outside holds every file it held when it was moved there.
    moved = outside / ops.swapped.replace("/", "_")
    assert moved.is_dir() and any(moved.rglob("*"))


def test_the_store_stays_whole_once_the_swap_is_undone(tmp_path: Path) -> None:
    """The steps skipped at the swap leave ROOT consistent: put the folder back and every
    image that had to survive is whole; a second run finishes the job."""
    b = StoreBuilder(tmp_path / "store")
    build(b)
    outside = tmp_path / "outside"
    outside.mkdir()
    ops = SwappingOps(b.v2, outside, "unlink", 2)
    collect(str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True, ops=ops)
    assert ops.swapped is not None
    (b.v2 / ops.swapped).unlink()
    shutil.move(str(outside / ops.swapped.replace("/", "_")), str(b.v2 / ops.swapped))
    assert_whole(rescan(b))
    again = collect(str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True)
    assert again.executed is not None and again.executed.failed is None
    assert_whole(rescan(b))


def test_a_trash_folder_swapped_for_a_link_is_refused(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "store")
    build(b)
    outside = tmp_path / "outside"
    outside.mkdir()

    class SwapTrash(Ops):
        done = False

        def move_to_trash(self, storage: Storage, path: str, run_id: str) -> None:
            if not self.done:
                self.done = True
                trash = b.root / ".regfs" / "trash"
                trash.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(trash)
                trash.symlink_to(outside, target_is_directory=True)
            super().move_to_trash(storage, path, run_id)

    opts = GcOptions(min_age=0, trash=True)
    out = collect(str(b.root), opts, dry_run=False, skip_live_check=True, ops=SwapTrash())
    assert list(outside.iterdir()) == []
    assert out.executed is not None and out.executed.results
    assert all(r.status == "skipped" for r in out.executed.results if r.action.step != "folder")


def test_a_state_folder_that_is_a_link_is_refused_before_anything_moves(
    tmp_path: Path,
) -> None:
    b = StoreBuilder(tmp_path / "store")
    build(b)
    outside = tmp_path / "outside"
    outside.mkdir()
    (b.root / ".regfs").symlink_to(outside, target_is_directory=True)
    before = rescan(b)
    with pytest.raises(RefusedError, match="symbolic link") as info:
        collect(str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True)
    assert info.value.exit_code == 3
    assert list(outside.iterdir()) == []
    assert rescan(b).blobs.keys() == before.blobs.keys()


# --- strace: no path-based change under ROOT --------------------------------------------------

MUTATING = {
    "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat",
    "creat", "link", "linkat", "symlink", "symlinkat", "truncate", "chmod", "fchmodat",
    "chown", "fchownat", "lchown", "utimensat", "mknod", "mknodat",
}  # fmt: skip
_CALL = re.compile(r"^(?:\[pid\s+\d+\]\s+)?(?:\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _mutations(log: str) -> list[tuple[str, str]]:
    out = []
    for line in log.splitlines():
        m = _CALL.match(line)
        if not m:
            continue
        name, args = m.group(1), m.group(2)
        creates = name in ("open", "openat", "openat2") and "O_CREAT" in args
        if name in MUTATING or creates:
            out.append((name, args))
    return out


@pytest.mark.skipif(shutil.which("strace") is None and not os.environ.get("CI"), reason="strace")
@pytest.mark.parametrize("trash", [False, True])
def test_strace_shows_no_path_based_change_under_root(tmp_path: Path, trash: bool) -> None:
    assert shutil.which("strace"), "strace is needed (.ci/run installs it)"
    b = StoreBuilder(tmp_path / "store")
    build(b)
    log = tmp_path / "strace.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "regfs", "gc", str(b.root), "--yes", "--min-age", "0",
           "--delete-untagged", "--skip-live-check", "--json"]  # fmt: skip
    if trash:
        cmd.append("--trash")
    trace = "%file,unlink,unlinkat,rename,renameat,renameat2,rmdir,mkdir,mkdirat"
    res = subprocess.run(
        ["strace", "-f", "-s", "4096", "-e", f"trace={trace}", "-o", str(log), *cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    root = str(b.root.resolve())
    changes = _mutations(log.read_text())
    under_root = [
        f"{name}({args})"
        for name, args in changes
        if any(p == root or p.startswith(root + "/") for p in _STRING.findall(args))
    ]
    assert under_root == []
    # And the run did change ROOT, through *at calls with one name each.
    at_calls = [(n, a) for n, a in changes if n in ("unlinkat", "renameat", "renameat2", "mkdirat")]
    assert at_calls, "the run changed nothing?"
    for _name, args in at_calls:
        assert "AT_FDCWD" not in args
        assert all("/" not in p for p in _STRING.findall(args)), args


def test_a_journal_folder_that_is_a_link_is_refused_before_anything_moves(
    tmp_path: Path,
) -> None:
    """The lock is taken, then ``runs/`` turns out to be a link: refused (exit 3), nothing
    written outside, nothing deleted."""
    b = StoreBuilder(tmp_path / "store")
    build(b)
    outside = tmp_path / "outside"
    outside.mkdir()
    (b.root / ".regfs").mkdir()
    (b.root / ".regfs" / "runs").symlink_to(outside, target_is_directory=True)
    before = rescan(b)
    with pytest.raises(RefusedError, match="run journal") as info:
        collect(str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True)
    assert info.value.exit_code == 3
    assert list(outside.iterdir()) == []
    assert rescan(b).blobs.keys() == before.blobs.keys()
    assert not (b.root / ".regfs" / "lock").exists()
