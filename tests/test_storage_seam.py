"""The storage seam holds: only regfs/storage/ does I/O on registry data and regfs state.

Every module outside ``regfs/storage/`` is parsed, and any call of a filesystem function of
``os``, ``os.path``, ``shutil``, ``io``, ``pathlib`` or the ``open`` builtin fails the test,
unless it is on the allowlist below, each entry with its reason:

* ``gc/procs.py``, ``gc/regconfig.py``, ``gc/registries.py``: the live-registry guard reads
  ``/proc`` and the registry's configuration files, which are not registry data.
* ``parallel/pool.py``: ``os.close`` of inherited pipe ends and ``os.chdir("/")`` in a forked
  helper (it holds no folder of the store); the blob data is opened through the storage.
* ``parallel/machine.py``: ``open`` of ``/proc/self/cgroup`` and the cgroup's CPU quota files
  (``cpu.max``, ``cpu.cfs_quota_us``): the machine's limits, not registry data.
* ``retain/policy.py``: ``open`` of the ``--policy`` file the admin names, which is command
  input, not registry data nor regfs state.

A new entry needs a reason of the same kind: not registry data, not regfs state.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "regfs"

OS_IO = {
    "open", "fdopen", "unlink", "remove", "removedirs", "rmdir", "rename", "renames", "replace",
    "makedirs", "mkdir", "mkfifo", "mknod", "listdir", "scandir", "walk", "fwalk", "stat", "lstat",
    "fstat", "fstatat", "access", "readlink", "symlink", "link", "chmod", "lchmod", "chown",
    "lchown", "utime", "truncate", "ftruncate", "fsync", "fdatasync", "read", "readv", "pread",
    "write", "writev", "pwrite", "close", "closerange", "dup", "dup2", "pipe", "pipe2",
    "statvfs", "getxattr", "setxattr", "listxattr", "removexattr", "sendfile", "copy_file_range",
    "opendir", "chdir", "chroot",
}  # fmt: skip
OS_PATH_IO = {
    "exists", "lexists", "isdir", "isfile", "islink", "ismount", "realpath", "getsize",
    "getmtime", "getatime", "getctime", "samefile", "sameopenfile",
}  # fmt: skip
PATHLIB_IO = {
    "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "glob", "rglob", "touch",
    "mkdir", "unlink", "rmdir", "rename", "replace", "symlink_to", "hardlink_to", "chmod",
    "lchmod", "stat", "lstat", "exists", "is_dir", "is_file", "is_symlink", "open", "resolve",
    "readlink", "owner", "group", "samefile", "walk",
}  # fmt: skip
# Receivers that are the seam itself (``storage.lstat``, ``self.store.read``, ...).
SEAM_RECEIVERS = {"storage", "store", "state", "ops"}

# module (relative to regfs/) -> os functions it may call, or None for anything (with reason
# in the module docstring above).
ALLOWED: dict[str, set[str] | None] = {
    "gc/procs.py": None,
    "gc/regconfig.py": None,
    "gc/registries.py": None,
    "parallel/pool.py": {"close", "chdir"},
    "parallel/machine.py": {"open"},
    "retain/policy.py": {"open"},
}


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        if node.attr in SEAM_RECEIVERS:
            return node.attr
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def io_calls(path: Path) -> list[tuple[int, str]]:
    """``(line, what)`` of every filesystem call in the module at ``path``."""
    tree = ast.parse(path.read_text())
    uses_pathlib = any(
        (isinstance(n, ast.ImportFrom) and n.module == "pathlib")
        or (isinstance(n, ast.Import) and any(a.name == "pathlib" for a in n.names))
        for n in ast.walk(tree)
    )
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("os", "os.path", "shutil", "io"):
            for a in node.names:
                if node.module in ("shutil", "io") or a.name in OS_IO | OS_PATH_IO:
                    found.append((node.lineno, f"from {node.module} import {a.name}"))
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open":
            found.append((node.lineno, "open"))
        elif isinstance(f, ast.Attribute):
            v = f.value
            if isinstance(v, ast.Name) and v.id == "os" and f.attr in OS_IO:
                found.append((node.lineno, f"os.{f.attr}"))
            elif (
                isinstance(v, ast.Attribute)
                and v.attr == "path"
                and isinstance(v.value, ast.Name)
                and v.value.id == "os"
                and f.attr in OS_PATH_IO
            ):
                found.append((node.lineno, f"os.path.{f.attr}"))
            elif isinstance(v, ast.Name) and v.id in ("shutil", "io"):
                found.append((node.lineno, f"{v.id}.{f.attr}"))
            elif uses_pathlib and f.attr in PATHLIB_IO and _root_name(v) not in SEAM_RECEIVERS:
                found.append((node.lineno, f"<path>.{f.attr}"))
    return found


def modules() -> list[str]:
    return sorted(
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p.relative_to(PKG).parts[0] != "storage"
    )


@pytest.mark.parametrize("name", modules())
def test_no_filesystem_io_outside_the_storage_package(name: str) -> None:
    allowed = ALLOWED.get(name, set())
    if allowed is None:
        return
    calls = [
        f"{name}:{line}: {what}"
        for line, what in io_calls(PKG / name)
        if what.removeprefix("os.") not in allowed
    ]
    assert calls == [], "filesystem I/O outside regfs/storage/ (go through the seam)"


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    """The detector itself: each way of reaching the filesystem is caught."""
    src = tmp_path / "m.py"
    src.write_text(
        "import os, shutil, io\n"
        "from pathlib import Path\n"
        "from os import unlink\n"
        "def f(storage, p):\n"
        "    os.unlink('x')\n"
        "    os.path.islink('x')\n"
        "    shutil.rmtree('x')\n"
        "    io.FileIO('x')\n"
        "    open('x')\n"
        "    Path('x').read_text()\n"
        "    p.unlink()\n"
        "    storage.unlink('x')\n"  # the seam: allowed
        "    self.storage.lstat('x')\n"  # the seam: allowed
    )
    got = [what for _line, what in io_calls(src)]
    assert got == [
        "from os import unlink",
        "os.unlink",
        "os.path.islink",
        "shutil.rmtree",
        "io.FileIO",
        "open",
        "<path>.read_text",
        "<path>.unlink",
    ]


def test_the_allowlist_names_existing_modules() -> None:
    assert set(ALLOWED) <= set(modules())
