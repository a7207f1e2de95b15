"""Trash: runs made with ``--trash`` moved their items under ``<state>/trash/<run-id>/``.

``restore`` moves everything back (recreating removed empty folders) and refuses to overwrite;
``list_trash`` and ``purge`` manage what is kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass

from regfs.errors import UsageError
from regfs.gc.journal import load_run


@dataclass(frozen=True, slots=True)
class TrashRun:
    run_id: str
    created: float
    items: int
    bytes: int


@dataclass(slots=True)
class RestoreResult:
    run_id: str
    restored: list[str]
    refused: list[str]
    missing: list[str]


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
            doc, _actions, _done = load_run(state, name)
            created = float(doc.get("created", 0.0))
        except (OSError, ValueError, KeyError):
            created = os.lstat(os.path.join(root, name)).st_mtime
        n, size = _tree_size(os.path.join(root, name))
        out.append(TrashRun(name, created, n, size))
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
        os.makedirs(os.path.join(v2, a.path), exist_ok=True)
        res.restored.append(a.path)
    for i in sorted(finished):
        a = actions[i]
        if a.step == "folder":
            continue
        src = os.path.join(tdir, a.path)
        dst = os.path.join(v2, a.path)
        if not os.path.lexists(src):
            res.missing.append(a.path)
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


def purge(state: str, older_than: float, now: float | None = None) -> list[TrashRun]:
    """Delete trash runs created more than ``older_than`` seconds ago (0: all)."""
    now = time.time() if now is None else now
    gone = []
    for run in list_trash(state):
        if older_than <= 0 or now - run.created > older_than:
            shutil.rmtree(os.path.join(trash_root(state), run.run_id))
            gone.append(run)
    return gone
