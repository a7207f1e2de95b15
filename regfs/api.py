"""The library functions the CLI calls, one per command."""

from __future__ import annotations

import os
from collections.abc import Callable

from regfs.errors import UsageError
from regfs.gc import trash
from regfs.gc.lock import Lock
from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.reports.check import CheckReport
from regfs.reports.check import check as check_snapshot
from regfs.reports.du import DuReport, validate_du_options
from regfs.reports.du import du as disk_usage
from regfs.reports.orphans import DEFAULT_UPLOAD_AGE, OrphansReport, orphans
from regfs.reports.treeview import Node, build_tree
from regfs.scan import Progress, Snapshot, scan
from regfs.storage.local import DIR, LocalStorage, resolve_root
from regfs.storage.localstate import LocalStateStore

REPOSITORIES = "repositories"


def default_workers() -> int:
    """Threads for the digest verification's bookkeeping (4 per core, at most 16)."""
    return min(16, 4 * (os.cpu_count() or 1))


def open_snapshot(root: str | None, *, progress: Progress | None = None) -> Snapshot:
    """Resolve ROOT and scan it; raises RootError for an unusable ROOT."""
    storage = LocalStorage(resolve_root(root))
    # No threads: the scan is many tiny system calls plus parsing, and threads contending for
    # the GIL measured slower than one. Forked shards do pay off for this thorough scan
    # (6.1 s -> 4.3 s on the 2000x10 benchmark tree, 2 cores); see benchmarks/README.md.
    return scan(storage, workers=1, progress=progress, processes=min(2, os.cpu_count() or 1))


def path_like(arg: str) -> bool:
    """Whether an argument can only be a path: ``.``, ``..``, ``/…``, ``./…``, ``~…``, ``…/``.

    No repository name, tag reference or run id looks like this (a name starts with a
    lowercase letter or digit and never ends with ``/``).
    """
    return arg in (".", "..") or arg.startswith(("/", "./", "../", "~")) or arg.endswith("/")


def split_root(
    args: list[str], what: str, *, forms: str = "", single: bool = False
) -> tuple[str | None, list[str]]:
    """ROOT and the rest, for the commands that take more than ROOT (``rm``, ``restore``).

    The rule, decided from the arguments alone (the filesystem is never probed):

    * two or more arguments: the first is ROOT, the rest are ``what``;
    * one argument that looks like a path (:func:`path_like`): it is ROOT, and ``what`` is
      missing (``regfs rm . --dry-run`` says "no target given");
    * one other argument: it is ``what``; ROOT is ``$REGFS_ROOT``, else ``/var/lib/registry``.

    ``single``: exactly one ``what`` is expected; ``forms`` says what one looks like.

    Raises:
        UsageError: no ``what`` given, or more than one when ``single``.
    """
    hint = f"{forms}; " if forms else ""
    if not args:
        raise UsageError(f"no {what} given")
    if len(args) == 1:
        if path_like(args[0]):
            raise UsageError(f"no {what} given ({hint}ROOT is {args[0]!r})")
        return None, args
    root, rest = args[0], args[1:]
    if single and len(rest) > 1:
        raise UsageError(f"one {what} expected after ROOT, got {len(rest)}: {' '.join(rest)}")
    return root, rest


def tree(
    root: str | None, *, repo_glob: str | None = None, progress: Progress | None = None
) -> Node:
    return build_tree(open_snapshot(root, progress=progress), repo_glob)


def find_orphans(
    root: str | None,
    *,
    uploads_older_than: float = DEFAULT_UPLOAD_AGE,
    progress: Progress | None = None,
) -> OrphansReport:
    snap = open_snapshot(root, progress=progress)
    return orphans(snap, uploads_older_than=uploads_older_than)


def _storage(root: str | None) -> LocalStorage:
    return LocalStorage(resolve_root(root))


def _state(root: str | None) -> LocalStateStore:
    return _storage(root).state


def restore(root: str | None, run_id: str) -> RestoreResult:
    """Put a trash run back, under the same lock gc takes."""
    storage = _storage(root)
    with Lock(storage.state, f"regfs restore {run_id}"):
        return trash.restore(storage.state, storage, run_id)


def trash_runs(root: str | None) -> list[TrashRun]:
    """The runs in the trash."""
    return trash.list_trash(_state(root))


def purge_trash(
    root: str | None,
    older_than: float,
    *,
    dry_run: bool = False,
    confirm: Callable[[list[TrashRun]], bool] | None = None,
    now: float | None = None,
) -> PurgeResult:
    """Purge trash runs older than ``older_than`` (0: all): under the lock, after ``confirm``.

    Raises:
        UsageError: not confirmed (nothing deleted).
        RefusedError: another regfs holds the lock.
    """
    state = _state(root)
    if dry_run:
        return PurgeResult(trash.purgeable(state, older_than, now), dry_run=True)
    with Lock(state, "regfs trash purge"):
        runs = trash.purgeable(state, older_than, now)
        if runs and confirm is not None and not confirm(runs):
            raise UsageError("not confirmed; nothing deleted")
        return PurgeResult(trash.purge(state, runs), dry_run=False)


def repository_names(root: str | None) -> list[str]:
    """Repository names under ROOT from a listing of folders only (no scan): for completion."""
    storage = LocalStorage(resolve_root(root))
    out: list[str] = []
    stack = [""]
    while stack:
        prefix = stack.pop()
        rel = f"{REPOSITORIES}/{prefix}" if prefix else REPOSITORIES
        try:
            kinds = storage.list_kinds(rel)
        except OSError:
            continue
        names = {name for name, kind in kinds if kind == DIR}
        if "_manifests" in names:
            out.append(prefix)
        stack.extend(f"{prefix}/{n}" if prefix else n for n in names if not n.startswith("_"))
    return sorted(out)


def tag_names(root: str | None, repo: str) -> list[str]:
    """The tags of one repository from a folder listing: for completion."""
    storage = LocalStorage(resolve_root(root))
    try:
        kinds = storage.list_kinds(f"{REPOSITORIES}/{repo}/_manifests/tags")
    except OSError:
        return []
    return sorted(name for name, kind in kinds if kind == DIR)


def check(
    root: str | None,
    *,
    repo_glob: str | None = None,
    verify_digests: bool = False,
    progress: Progress | None = None,
) -> CheckReport:
    """`regfs check`: everything wrong with the storage, as findings."""
    snap = open_snapshot(root, progress=progress)
    return check_snapshot(
        snap,
        repo_glob=repo_glob,
        verify_digests=verify_digests,
        workers=default_workers(),
        progress=progress,
    )


def du(
    root: str | None,
    *,
    by: str = "repo",
    sort: str = "exclusive",
    top: int | None = None,
    progress: Progress | None = None,
) -> DuReport:
    """`regfs du`: bytes per repository (and per tag), shared, exclusive, untagged."""
    validate_du_options(by=by, sort=sort, top=top)
    return disk_usage(open_snapshot(root, progress=progress), by=by, sort=sort, top=top)
