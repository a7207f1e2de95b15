"""Trash: runs made with ``--trash`` moved their items under ``<state>/trash/<run-id>/``.

``restore`` moves everything back (recreating removed empty folders) and refuses to overwrite;
``list_trash`` and ``purge`` manage what is kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field

from regfs.duration import is_older
from regfs.errors import UsageError
from regfs.gc.journal import load_run


@dataclass(frozen=True, slots=True)
class TrashRun:
    """One run in the trash.

    ``items`` counts what ``restore`` would put back: every finished step of the run (a tag
    folder, a revision folder, a blob folder, an emptied folder, ...), the same unit
    :class:`RestoreResult` counts; ``files`` and ``bytes`` are what the trash holds on disk.
    """

    run_id: str
    created: float
    items: int
    files: int
    bytes: int


@dataclass(slots=True)
class RestoreResult:
    """Every finished step of the run lands in exactly one list."""

    run_id: str
    restored: list[str]
    refused: list[str]
    missing: list[str]
    # Already in place (an earlier restore put it back, or the folder exists again).
    already: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return len(self.restored) + len(self.refused) + len(self.missing) + len(self.already)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """The runs purged (or, under ``dry_run``, that would be)."""

    runs: list[TrashRun]
    dry_run: bool


def trash_root(state: str) -> str:
    return os.path.join(state, "trash")


def _tree_size(path: str) -> tuple[int, int]:
    n = size = 0
    for cur, _dirs, files in os.walk(path):
        for f in files:
            n += 1
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(cur, f)).st_size
    return n, size


def list_trash(state: str) -> list[TrashRun]:
    root = trash_root(state)
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            doc, _actions, done = load_run(state, name)
            created = float(doc.get("created", 0.0))
            items = sum(1 for status in done.values() if status == "done")
        except (OSError, ValueError, KeyError):
            created = os.lstat(os.path.join(root, name)).st_mtime
            items = 0
        n, size = _tree_size(os.path.join(root, name))
        out.append(TrashRun(name, created, items, n, size))
    return out


def restore(state: str, v2: str, run_id: str) -> RestoreResult:
    """Put a trash run back. Items whose place is taken again are refused, never overwritten."""
    tdir = os.path.join(trash_root(state), run_id)
    try:
        _doc, actions, done = load_run(state, run_id)
    except FileNotFoundError:
        raise UsageError(f"no run {run_id!r} in {os.path.join(state, 'runs')}") from None
    if not os.path.isdir(tdir):
        raise UsageError(f"run {run_id!r} has nothing in the trash", path=tdir)
    res = RestoreResult(run_id, [], [], [])
    finished = [i for i, s in done.items() if s == "done"]
    # Folders first (shallowest first), so the moved items have their parents back.
    folders = sorted(
        (actions[i] for i in finished if actions[i].step == "folder"),
        key=lambda a: a.path.count("/"),
    )
    for a in folders:
        dst = os.path.join(v2, a.path)
        if os.path.isdir(dst):
            res.already.append(a.path)
            continue
        os.makedirs(dst, exist_ok=True)
        res.restored.append(a.path)
    for i in sorted(finished):
        a = actions[i]
        if a.step == "folder":
            continue
        src = os.path.join(tdir, a.path)
        dst = os.path.join(v2, a.path)
        if not os.path.lexists(src):
            (res.already if os.path.lexists(dst) else res.missing).append(a.path)
            continue
        if os.path.lexists(dst):
            res.refused.append(a.path)
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        res.restored.append(a.path)
    if not res.refused:
        shutil.rmtree(tdir, ignore_errors=True)
    return res


def purgeable(state: str, older_than: float, now: float | None = None) -> list[TrashRun]:
    """Trash runs created more than ``older_than`` seconds ago (0: no age limit, all)."""
    now = time.time() if now is None else now
    return [run for run in list_trash(state) if is_older(now - run.created, older_than)]


def purge(state: str, runs: list[TrashRun]) -> list[TrashRun]:
    """Delete these trash runs for good; a run already gone is skipped."""
    gone = []
    for run in runs:
        path = os.path.join(trash_root(state), run.run_id)
        if os.path.isdir(path):
            shutil.rmtree(path)
            gone.append(run)
    return gone
