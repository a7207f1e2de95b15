"""Trash: runs made with ``--trash`` moved their items under ``<state>/trash/<run-id>/``.

``restore`` moves everything back (recreating removed empty folders) and refuses to overwrite;
``list_trash`` and ``purge`` manage what is kept.
"""

from __future__ import annotations

import contextlib
import stat
import time
from dataclasses import dataclass, field

from regfs.duration import is_older
from regfs.errors import UsageError
from regfs.gc.journal import JournalError, load_run, state_store
from regfs.gc.steps import Status, Step
from regfs.layout import join
from regfs.layout.folders import LayoutError
from regfs.layout.state import RUNS, TRASH, trash_dir
from regfs.storage.base import InvalidPath, StateStore, Storage
from regfs.storage.local import LocalStorage


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
        """Every finished step of the run, whatever became of it."""
        return len(self.restored) + len(self.refused) + len(self.missing) + len(self.already)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """The runs purged (or, under ``dry_run``, that would be)."""

    runs: list[TrashRun]
    dry_run: bool


def trash_root(state: StateStore | str) -> str:
    """Where the trash is (for messages)."""
    return state_store(state).path(TRASH)


def list_trash(state: StateStore | str) -> list[TrashRun]:
    """Every run in the trash, by run id."""
    store = state_store(state)
    try:
        names = sorted(e.name for e in store.list_dir(TRASH))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            doc, _actions, done = load_run(store, name)
            created = float(doc.get("created", 0.0))
            items = sum(1 for status in done.values() if status is Status.DONE)
        except (OSError, ValueError, KeyError, TypeError, JournalError, LayoutError):
            # No journal, or not one regfs wrote: listed by what is on disk.
            created = store.lstat(join(TRASH, name)).st_mtime
            items = 0
        n, size = store.tree_size(join(TRASH, name))
        out.append(TrashRun(name, created, items, n, size))
    return out


def _is_folder(storage: Storage, rel: str) -> bool:
    try:
        return stat.S_ISDIR(storage.stat(rel).st_mode)
    except OSError:
        return False


def restore(state: StateStore | str, storage: Storage | str, run_id: str) -> RestoreResult:
    """Put a trash run back. Items whose place is taken again are refused, never overwritten.

    ``storage`` is the store (or the path of its local ``v2`` folder). The run id and every
    action the journal holds are checked through the layout before anything moves
    (:func:`regfs.gc.journal.load_run`).

    Raises:
        UsageError: no such run, or nothing of it in the trash.
        JournalError: its journal is not as regfs writes it (the file is named); nothing
            restored.
    """
    store = state_store(state)
    if isinstance(storage, str):
        storage = LocalStorage(storage)
    try:
        tdir = trash_dir(run_id)
        _doc, actions, done = load_run(store, run_id)
    except JournalError:
        raise
    except (FileNotFoundError, InvalidPath, LayoutError):
        raise UsageError(f"no run {run_id!r} in {store.path(RUNS)}") from None
    if not store.is_folder(tdir):
        raise UsageError(f"run {run_id!r} has nothing in the trash", path=store.path(tdir))
    res = RestoreResult(run_id, [], [], [])
    finished = [i for i, s in done.items() if s is Status.DONE]
    # Folders first (shallowest first), so the moved items have their parents back.
    folders = sorted(
        (actions[i] for i in finished if actions[i].step is Step.FOLDER),
        key=lambda a: a.path.count("/"),
    )
    for a in folders:
        if _is_folder(storage, a.path):
            res.already.append(a.path)
            continue
        storage.make_folders(a.path)
        res.restored.append(a.path)
    for i in sorted(finished):
        a = actions[i]
        if a.step is Step.FOLDER:
            continue
        if not storage.in_trash(run_id, a.path):
            (res.already if storage.exists(a.path) else res.missing).append(a.path)
            continue
        if storage.exists(a.path):
            res.refused.append(a.path)
            continue
        storage.restore_from_trash(run_id, a.path)
        res.restored.append(a.path)
    if not res.refused:
        with contextlib.suppress(OSError):
            store.remove_tree(tdir)
    return res


def purgeable(
    state: StateStore | str, older_than: float, now: float | None = None
) -> list[TrashRun]:
    """Trash runs created more than ``older_than`` seconds ago (0: no age limit, all)."""
    now = time.time() if now is None else now
    return [run for run in list_trash(state) if is_older(now - run.created, older_than)]


def purge(state: StateStore | str, runs: list[TrashRun]) -> list[TrashRun]:
    """Delete these trash runs for good; a run already gone is skipped."""
    store = state_store(state)
    gone = []
    for run in runs:
        rel = join(TRASH, run.run_id)
        if store.is_folder(rel):
            store.remove_tree(rel)
            gone.append(run)
    return gone
