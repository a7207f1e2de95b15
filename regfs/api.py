"""The library: a :class:`Registry` over a registry's storage, one method per command.

A script imports this module; the CLI is one client of it::

    from regfs.api import Registry
    from regfs.gc.plan import GcOptions

    reg = Registry.open("/srv/registry")
    print(reg.orphans().orphaned_bytes)
    planned = reg.plan_gc(GcOptions(delete_untagged=True))   # a dry run: nothing written
    done = reg.execute(planned, confirm=lambda plan: True)    # that plan, under the lock

Every method returns a value (a report, a plan, an outcome) and prints nothing; errors are
:class:`~regfs.errors.RegfsError` subclasses carrying their exit code. Progress is a callback
``(phase, done, total)`` passed in by the caller. How much runs at once is a
:class:`~regfs.parallel.tuning.Tuning` (default: sized from the machine), given once to the
:class:`Registry`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from regfs.defaults import MIN_AGE, UPLOADS_OLDER_THAN
from regfs.errors import UsageError
from regfs.gc import trash
from regfs.gc.execute import Ops
from regfs.gc.lock import Lock
from regfs.gc.outcome import GcOutcome
from regfs.gc.plan import GcOptions, GcPlan
from regfs.gc.probe import check_url
from regfs.gc.removal import RmOutcome, remove
from regfs.gc.run import collect, execute_planned
from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.layout import REPOSITORIES, join, repo_dir, tags_dir
from regfs.layout.folders import LayoutError, check_run_id
from regfs.model.findings import Finding, Kind
from regfs.parallel.tuning import Tuning
from regfs.reports.check import CheckReport
from regfs.reports.check import check as check_snapshot
from regfs.reports.du import DuReport, validate_du_options
from regfs.reports.du import du as disk_usage
from regfs.reports.multipart import multipart_leftovers
from regfs.reports.orphans import OrphansReport, orphans
from regfs.reports.treeview import Node, build_tree
from regfs.retain.policy import Rule
from regfs.retain.run import RetainOutcome
from regfs.retain.run import retain as retain_run
from regfs.scan import Progress, Snapshot, scan
from regfs.storage.base import DIR, StateStore, Storage, StorageError
from regfs.storage.local import LocalStorage
from regfs.storage.locate import is_s3_url, open_store, state_of
from regfs.storage.s3 import S3Storage

__all__ = [
    "Registry",
    "Tuning",
    "check_url",
    "path_like",
    "split_root",
    "validate_du_options",
]


class Registry:
    """One registry's storage; the library a script (and the CLI) calls.

    Args:
        storage: the store below the registry's ``docker/registry/v2`` folder: a folder
            (:class:`~regfs.storage.local.LocalStorage`), a bucket
            (:class:`~regfs.storage.s3.S3Storage`) or any other
            :class:`~regfs.storage.base.Storage`.
        tuning: how much runs at once (scan shards, digest hashing; threads for an I/O-bound
            backend). Default: :meth:`Tuning.for_machine`.
        state: regfs's own state next to it (default: the backend's, see
            :func:`regfs.storage.locate.state_of`).

    :meth:`open` resolves ROOT (or a registry CONFIG) at once; :meth:`at` when first needed,
    so that a command's malformed arguments are reported before an unusable ROOT (as the CLI
    does).

    The thorough scan the reading reports share is taken once and kept (:meth:`snapshot`);
    ``rescan=True`` takes a fresh one. Garbage collection and removal plan from their own
    fast scan, taken when they are called: the plan must describe the storage as it is when
    it runs.
    """

    def __init__(
        self,
        storage: Storage | None = None,
        tuning: Tuning | None = None,
        *,
        state: StateStore | None = None,
    ) -> None:
        self._storage = storage
        self._state = state
        self._root: str | None = None
        self._config: str | None = None
        self._endpoint_url: str | None = None
        self._snapshot: Snapshot | None = None
        self.tuning = tuning if tuning is not None else Tuning.for_machine()

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str] | None,
        tuning: Tuning | None = None,
        *,
        config: str | None = None,
        endpoint_url: str | None = None,
    ) -> Registry:
        """The registry at ROOT: its ``rootdirectory`` or its ``v2`` folder, or
        ``s3://BUCKET/PREFIX`` (``endpoint_url``: an S3-compatible server); or the store the
        registry's ``config`` file names (``REGISTRY_*`` overrides applied). ``None`` and no
        config mean ``$REGFS_ROOT``, else ``/var/lib/registry``.

        Raises:
            RootError: ROOT or the config is missing, unreadable, unreachable or not a
                registry's storage.
            UsageError: ROOT and ``config`` both given.
        """
        tuning = tuning if tuning is not None else Tuning.for_machine()
        store = open_store(
            None if root is None else os.fspath(root),
            config=config,
            endpoint_url=endpoint_url,
            threads=tuning.threads,
        )
        return cls(store.storage, tuning, state=store.state)

    @classmethod
    def at(
        cls,
        root: str | None,
        tuning: Tuning | None = None,
        *,
        config: str | None = None,
        endpoint_url: str | None = None,
    ) -> Registry:
        """Like :meth:`open`, resolved (and :class:`~regfs.errors.RootError` raised) on first
        use rather than now."""
        registry = cls(tuning=tuning)
        registry._root = root
        registry._config = config
        registry._endpoint_url = endpoint_url
        return registry

    def _open(self) -> Storage:
        if self._storage is None:
            store = open_store(
                self._root,
                config=self._config,
                endpoint_url=self._endpoint_url,
                threads=self.tuning.threads,
            )
            self._storage, self._state = store.storage, store.state
        return self._storage

    @property
    def storage(self) -> Storage:
        """The storage (resolving ROOT on first use).

        Raises:
            RootError: ROOT is missing, empty, unreadable or not a registry's storage.
        """
        return self._open()

    @property
    def v2(self) -> str:
        """Where the ``docker/registry/v2`` folder is: an absolute path, or
        ``s3://BUCKET/PREFIX/docker/registry/v2``."""
        return self.storage.location

    @property
    def state(self) -> StateStore:
        """regfs's own state next to the store (``.regfs``: lock, journals, trash)."""
        storage = self._open()
        if self._state is None:
            self._state = state_of(storage)
        return self._state

    def _where(self) -> str | LocalStorage | S3Storage | None:
        """What the runs that open ROOT themselves (gc, rm) get, after checking their
        arguments: ROOT as given, or the store once a CONFIG, a bucket or a given storage
        says which."""
        if self._storage is None and self._config is None and not is_s3_url(self._root):
            if self._endpoint_url is not None:
                self._open()  # says why --endpoint-url does not apply
            return self._root
        storage = self._open()
        if not isinstance(storage, LocalStorage | S3Storage):
            raise UsageError(
                f"regfs gc and rm run on a folder or a bucket, not on {storage.location}"
            )
        return storage

    def _folder(self, command: str) -> str | None:
        """ROOT for the runs that read a folder only (retain).

        Raises:
            UsageError: the store is not a folder.
        """
        where = self._where()
        if where is None or isinstance(where, str):
            return where
        if not isinstance(where, LocalStorage):
            raise UsageError(
                f"regfs {command} works on a registry folder only for now, not on {where.location}"
            )
        return where.location

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self, *, rescan: bool = False, progress: Progress | None = None) -> Snapshot:
        """The thorough scan (every folder listed, every link read), taken once and kept.

        Args:
            rescan: take a fresh scan even when one is kept.
            progress: called as the scan goes (only when it scans).
        """
        if self._snapshot is None or rescan:
            # No threads: the scan is many tiny system calls plus parsing, and threads
            # contending for the GIL measured slower than one. Forked shards do pay off for
            # this thorough scan (6.1 s -> 4.3 s on the 2000x10 benchmark tree, 2 cores); see
            # benchmarks/README.md.
            self._snapshot = scan(self.storage, workers=1, progress=progress, tuning=self.tuning)
        return self._snapshot

    def tree(self, *, repo_glob: str | None = None, progress: Progress | None = None) -> Node:
        """``regfs tree``: repositories, tags, manifests, configs and layers as nested nodes.

        Raises:
            UsageError: ``repo_glob`` matches no repository.
        """
        return build_tree(self.snapshot(progress=progress), repo_glob)

    def orphans(
        self,
        *,
        uploads_older_than: float = UPLOADS_OLDER_THAN,
        progress: Progress | None = None,
    ) -> OrphansReport:
        """``regfs orphans``: orphaned blobs, untagged manifests, dangling references, stale
        uploads (started more than ``uploads_older_than`` seconds ago) and problems; on a
        bucket also the multipart uploads of unfinished uploads started that long ago
        (:func:`regfs.reports.multipart.multipart_leftovers`; when they cannot be listed, a
        problem)."""
        snap = self.snapshot(progress=progress)
        report = orphans(snap, uploads_older_than=uploads_older_than)
        storage = self.storage
        if isinstance(storage, S3Storage):
            try:
                report.multipart_uploads = multipart_leftovers(
                    storage, snap, older_than=uploads_older_than
                )
            except StorageError as exc:
                report.multipart_uploads = []
                report.problems.append(
                    Finding(
                        Kind.UNREADABLE,
                        REPOSITORIES,
                        f"cannot list multipart uploads: {exc.strerror or exc}",
                    )
                )
        return report

    def check(
        self,
        *,
        repo_glob: str | None = None,
        verify_digests: bool = False,
        progress: Progress | None = None,
    ) -> CheckReport:
        """``regfs check``: everything wrong with the storage, as findings; with
        ``verify_digests`` every blob is re-hashed.

        Raises:
            UsageError: ``repo_glob`` matches no repository.
        """
        return check_snapshot(
            self.snapshot(progress=progress),
            repo_glob=repo_glob,
            verify_digests=verify_digests,
            tuning=self.tuning,
            progress=progress,
            storage=self.storage,
        )

    def du(
        self,
        *,
        by: str = "repo",
        sort: str = "exclusive",
        top: int | None = None,
        progress: Progress | None = None,
    ) -> DuReport:
        """``regfs du``: bytes per repository (and per tag), shared, exclusive, untagged.

        Raises:
            UsageError: a bad ``by``, ``sort`` or ``top`` (checked before scanning).
        """
        validate_du_options(by=by, sort=sort, top=top)
        return disk_usage(self.snapshot(progress=progress), by=by, sort=sort, top=top)

    def repository_names(self) -> list[str]:
        """Repository names from a listing of folders only (no scan): for completion."""
        out: list[str] = []
        stack = [""]
        while stack:
            prefix = stack.pop()
            rel = repo_dir(prefix)
            try:
                kinds = self.storage.list_kinds(rel)
            except OSError:
                continue
            names = {name for name, kind in kinds if kind == DIR}
            if "_manifests" in names:
                out.append(prefix)
            stack.extend(join(prefix, n) for n in names if not n.startswith("_"))
        return sorted(out)

    def tag_names(self, repo: str) -> list[str]:
        """The tags of one repository from a folder listing: for completion."""
        try:
            kinds = self.storage.list_kinds(tags_dir(repo))
        except OSError:
            return []
        return sorted(name for name, kind in kinds if kind == DIR)

    # --- garbage collection and removal ------------------------------------------------------

    def plan_gc(
        self,
        options: GcOptions | None = None,
        *,
        registry_url: str | None = None,
        skip_live_check: bool = False,
        progress: Progress | None = None,
        now: float | None = None,
    ) -> GcOutcome:
        """A dry run of ``regfs gc``: the plan, and every reason a real run would refuse
        (``would_refuse``), decided by the rules a real run uses. Writes nothing.

        Raises:
            UsageError: a malformed ``registry_url``.
        """
        return collect(
            self._where(),
            options or GcOptions(),
            dry_run=True,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            progress=progress,
            tuning=self.tuning,
            now=now,
        )

    def plan_rm(
        self,
        targets: list[str],
        *,
        trash: bool = False,
        run_gc: bool = False,
        gc_options: GcOptions | None = None,
        registry_url: str | None = None,
        skip_live_check: bool = False,
        progress: Progress | None = None,
        now: float | None = None,
    ) -> RmOutcome:
        """A dry run of ``regfs rm TARGET...``: the removal plan (``.removal``), the gc
        that would follow (``.gc``) and every reason a real run would refuse. Writes nothing.

        Raises:
            UsageError: a malformed target, or one that matches nothing.
        """
        return remove(
            self._where(),
            targets,
            dry_run=True,
            trash=trash,
            run_gc=run_gc,
            gc_options=gc_options,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            progress=progress,
            tuning=self.tuning,
            now=now,
        )

    def execute(
        self,
        planned: GcOutcome,
        *,
        confirm: Callable[[GcPlan], bool] | None = None,
        force: bool | None = None,
        registry_url: str | None = None,
        skip_live_check: bool = False,
        progress: Progress | None = None,
        ops: Ops | None = None,
        command: str = "regfs (library)",
    ) -> GcOutcome:
        """Execute a plan from :meth:`plan_gc` (or ``plan_rm(...).removal``): that plan
        object, under the lock, after the safety rules are decided again (see
        :func:`regfs.gc.run.execute_planned`). The gc after a removal is planned anew
        (:meth:`plan_gc`): it must see the storage as the removal left it.

        Raises:
            UsageError: not a dry run's plan, a malformed ``registry_url``, not confirmed.
            GcRefused: refused for safety (its ``outcome`` holds every reason); nothing
                deleted.
        """
        if planned.plan.v2 != self.v2:
            raise UsageError(f"the plan is for {planned.plan.v2}, not {self.v2}")
        storage = self._open()
        if not isinstance(storage, LocalStorage | S3Storage):
            raise UsageError(f"no executor for {storage.location}")
        return execute_planned(
            planned,
            storage,
            force=force,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=progress,
            ops=ops,
            command=command,
        )

    def gc(
        self,
        options: GcOptions,
        *,
        dry_run: bool,
        registry_url: str | None = None,
        skip_live_check: bool = False,
        confirm: Callable[[GcPlan], bool] | None = None,
        progress: Progress | None = None,
        ops: Ops | None = None,
        command: str = "regfs gc",
    ) -> GcOutcome:
        """``regfs gc``: plan and (unless ``dry_run``) execute in one run, the scan taken
        under the lock (:func:`regfs.gc.run.collect`).

        Raises:
            UsageError: a malformed ``registry_url``, or not confirmed.
            GcRefused: a real run refused for safety; nothing deleted.
        """
        return collect(
            self._where(),
            options,
            dry_run=dry_run,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=progress,
            tuning=self.tuning,
            ops=ops,
            command=command,
        )

    def rm(
        self,
        targets: list[str],
        *,
        dry_run: bool,
        trash: bool = False,
        run_gc: bool = False,
        gc_options: GcOptions | None = None,
        registry_url: str | None = None,
        skip_live_check: bool = False,
        confirm: Callable[[GcPlan], bool] | None = None,
        progress: Progress | None = None,
        ops: Ops | None = None,
        command: str = "regfs rm",
    ) -> RmOutcome:
        """``regfs rm``: remove tags, manifests or repositories, then report (or with
        ``run_gc`` run) the gc after it (:func:`regfs.gc.run.remove`).

        Raises:
            UsageError: a malformed or unknown target, or not confirmed.
            GcRefused: refused for safety; its ``outcome`` is the :class:`RmOutcome`.
        """
        return remove(
            self._where(),
            targets,
            dry_run=dry_run,
            trash=trash,
            run_gc=run_gc,
            gc_options=gc_options,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=progress,
            tuning=self.tuning,
            ops=ops,
            command=command,
        )

    def retain(
        self,
        rules: list[Rule],
        *,
        dry_run: bool,
        trash: bool = False,
        min_age: float = MIN_AGE,
        registry_url: str | None = None,
        skip_live_check: bool = False,
        confirm: Callable[[GcPlan], bool] | None = None,
        progress: Progress | None = None,
        ops: Ops | None = None,
        command: str = "regfs retain",
    ) -> RetainOutcome:
        """``regfs retain``: remove the tags retention ``rules`` let go (and what only they
        kept), or with ``dry_run`` only plan it (:func:`regfs.retain.run.retain`).

        Raises:
            UsageError: a malformed ``registry_url``, or not confirmed.
            RetainRefused: refused for safety; its ``result`` holds the plan and reasons.
        """
        return retain_run(
            self._folder("retain"),
            rules,
            dry_run=dry_run,
            trash=trash,
            min_age=min_age,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=progress,
            tuning=self.tuning,
            ops=ops,
            command=command,
        )

    # --- the trash -------------------------------------------------------------------------

    def restore(self, run_id: str) -> RestoreResult:
        """Put a trash run back, under the same lock gc takes; never overwrites.

        ``run_id`` is checked through the layout before it names anything on disk: what is
        not a run id regfs writes (``../..``, a path) is no run, and nothing is joined to it.

        Raises:
            UsageError: no such run.
            RefusedError: another regfs holds the lock.
        """
        try:
            check_run_id(run_id)
        except LayoutError:
            raise UsageError(f"no run {run_id!r} in {self.state.path('runs')}") from None
        with Lock(self.state, f"regfs restore {run_id}"):
            return trash.restore(self.state, self.storage, run_id)

    def trash_runs(self) -> list[TrashRun]:
        """The runs in the trash, oldest first."""
        return trash.list_trash(self.state)

    def purge_trash(
        self,
        older_than: float,
        *,
        dry_run: bool = False,
        confirm: Callable[[list[TrashRun]], bool] | None = None,
        now: float | None = None,
    ) -> PurgeResult:
        """Purge trash runs older than ``older_than`` seconds (0: all): under the lock,
        after ``confirm``.

        Raises:
            UsageError: not confirmed (nothing deleted).
            RefusedError: another regfs holds the lock.
        """
        if dry_run:
            return PurgeResult(trash.purgeable(self.state, older_than, now), dry_run=True)
        with Lock(self.state, "regfs trash purge"):
            runs = trash.purgeable(self.state, older_than, now)
            if runs and confirm is not None and not confirm(runs):
                raise UsageError("not confirmed; nothing deleted")
            return PurgeResult(trash.purge(self.state, runs), dry_run=False)


def path_like(arg: str) -> bool:
    """Whether an argument can only be ROOT: ``.``, ``..``, ``/…``, ``./…``, ``~…``, ``…/``,
    ``s3://…``.

    No repository name, tag reference or run id looks like this (a name starts with a
    lowercase letter or digit and never ends with ``/``).
    """
    return (
        arg in (".", "..") or arg.startswith(("/", "./", "../", "~", "s3://")) or arg.endswith("/")
    )


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
