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
from typing import Unpack, overload

from regfs.defaults import MIN_AGE, UPLOADS_OLDER_THAN
from regfs.errors import UsageError
from regfs.gc import trash
from regfs.gc.outcome import GcOutcome
from regfs.gc.plan import GcOptions
from regfs.gc.removal import RmOutcome, execute_removal, remove
from regfs.gc.run import collect, execute_planned
from regfs.gc.runoptions import Look, RunOptions
from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.gc.trashrun import purge_runs, restore_run
from regfs.parallel.tuning import Tuning
from regfs.reports.check import CheckReport
from regfs.reports.check import check as check_snapshot
from regfs.reports.du import DuReport, validate_du_options
from regfs.reports.du import du as disk_usage
from regfs.reports.multipart import add_multipart_leftovers
from regfs.reports.orphans import OrphansReport, orphans
from regfs.reports.treeview import Node, build_tree
from regfs.retain.policy import Rule
from regfs.retain.run import RetainOutcome
from regfs.retain.run import retain as retain_run
from regfs.scan import Progress, Snapshot, scan
from regfs.storage.base import StateStore, Storage
from regfs.storage.local import LocalStorage
from regfs.storage.locate import Place
from regfs.storage.names import repository_names, tag_names
from regfs.storage.s3 import S3Storage

__all__ = ["Registry"]


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

    The reading reports share one thorough scan, kept (:meth:`snapshot`; ``rescan=True``: a
    fresh one); each plan of gc, rm or retain takes its own fast scan when it is made.
    """

    def __init__(
        self,
        storage: Storage | None = None,
        tuning: Tuning | None = None,
        *,
        state: StateStore | None = None,
    ) -> None:
        self.tuning = tuning if tuning is not None else Tuning.for_machine()
        self._place = Place(threads=self.tuning.threads)
        if storage is not None:
            self._place.given(storage, state)
        self._snapshot: Snapshot | None = None

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
        registry = cls.at(
            None if root is None else os.fspath(root),
            tuning,
            config=config,
            endpoint_url=endpoint_url,
        )
        _ = registry.storage
        return registry

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
        registry._place = Place(
            root, config=config, endpoint_url=endpoint_url, threads=registry.tuning.threads
        )
        return registry

    @property
    def storage(self) -> Storage:
        """The storage (resolving ROOT on first use).

        Raises:
            RootError: ROOT is missing, empty, unreadable or not a registry's storage.
        """
        return self._place.storage

    @property
    def v2(self) -> str:
        """Where the ``docker/registry/v2`` folder is: an absolute path, or
        ``s3://BUCKET/PREFIX/docker/registry/v2``."""
        return self.storage.location

    @property
    def state(self) -> StateStore:
        """regfs's own state next to the store (``.regfs``: lock, journals, trash)."""
        return self._place.state

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self, *, rescan: bool = False, progress: Progress | None = None) -> Snapshot:
        """The thorough scan (every folder listed, every link read), taken once and kept.

        Args:
            rescan: take a fresh scan even when one is kept.
            progress: called as the scan goes (only when it scans).
        """
        if self._snapshot is None or rescan:
            # Forked shards, no threads: measured in benchmarks/README.md.
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
        if isinstance(self.storage, S3Storage):
            add_multipart_leftovers(report, self.storage, snap, older_than=uploads_older_than)
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
        return repository_names(self.storage)

    def tag_names(self, repo: str) -> list[str]:
        """The tags of one repository from a folder listing: for completion."""
        return tag_names(self.storage, repo)

    # --- garbage collection, removal, retention ---------------------------------------------

    def plan_gc(
        self, options: GcOptions | None = None, *, now: float | None = None, **kw: Unpack[Look]
    ) -> GcOutcome:
        """A dry run of ``regfs gc``: the plan :meth:`execute` runs, and every reason a real
        run would refuse (``would_refuse``), by the rules a real run uses. Writes nothing.

        Raises:
            UsageError: a malformed ``registry_url``.
        """
        return self.gc(options or GcOptions(), dry_run=True, now=now, **kw)

    def plan_rm(
        self,
        targets: list[str],
        *,
        trash: bool = False,
        run_gc: bool = False,
        gc_options: GcOptions | None = None,
        now: float | None = None,
        **kw: Unpack[Look],
    ) -> RmOutcome:
        """A dry run of ``regfs rm TARGET...``: the one plan :meth:`execute` runs (``.run``:
        the removal and, with ``run_gc``, the gc composed in), its parts as reports
        (``.removal``, ``.gc``) and every reason a real run would refuse. Writes nothing.

        Raises:
            UsageError: a malformed target, or one that matches nothing.
        """
        return self.rm(
            targets, dry_run=True, trash=trash, run_gc=run_gc, gc_options=gc_options, now=now, **kw
        )

    @overload
    def execute(
        self, planned: GcOutcome, *, force: bool | None = None, **kw: Unpack[RunOptions]
    ) -> GcOutcome: ...

    @overload
    def execute(
        self, planned: RmOutcome, *, force: bool | None = None, **kw: Unpack[RunOptions]
    ) -> RmOutcome: ...

    def execute(
        self,
        planned: GcOutcome | RmOutcome,
        *,
        force: bool | None = None,
        **kw: Unpack[RunOptions],
    ) -> GcOutcome | RmOutcome:
        """Execute a plan from :meth:`plan_gc` or :meth:`plan_rm`: that plan object, under
        the lock, after the safety rules are decided again (see
        :func:`regfs.gc.run.execute_planned`); ``force`` defaults to the plan's own.

        Raises:
            UsageError: not a dry run's plan, a malformed ``registry_url``, not confirmed.
            GcRefused: refused for safety (its ``outcome`` holds every reason); nothing
                deleted.
        """
        kw.setdefault("command", "regfs (library)")
        run = planned.run if isinstance(planned, RmOutcome) else planned
        if run is not None and run.plan.v2 != self.v2:
            raise UsageError(f"the plan is for {run.plan.v2}, not {self.v2}")
        storage = self.storage
        if not isinstance(storage, LocalStorage | S3Storage):
            raise UsageError(f"no executor for {storage.location}")
        if isinstance(planned, RmOutcome):
            return execute_removal(
                planned, storage, root=self._place.runnable(), tuning=self.tuning, **kw
            )
        return execute_planned(planned, storage, force=force, **kw)

    def gc(
        self,
        options: GcOptions,
        *,
        dry_run: bool,
        now: float | None = None,
        **kw: Unpack[RunOptions],
    ) -> GcOutcome:
        """``regfs gc``: plan and (unless ``dry_run``) execute in one run, the scan taken
        under the lock (:func:`regfs.gc.run.collect`): nothing can change between the scan
        and the plan that runs, not even another regfs's ``restore``.

        Raises:
            UsageError: a malformed ``registry_url``, or not confirmed.
            GcRefused: a real run refused for safety; nothing deleted.
        """
        kw.setdefault("command", "regfs gc")
        where = self._place.runnable()
        return collect(where, options, dry_run=dry_run, tuning=self.tuning, now=now, **kw)

    def rm(
        self,
        targets: list[str],
        *,
        dry_run: bool,
        trash: bool = False,
        run_gc: bool = False,
        gc_options: GcOptions | None = None,
        now: float | None = None,
        **kw: Unpack[RunOptions],
    ) -> RmOutcome:
        """``regfs rm``: plan and (unless ``dry_run``) execute the removal and (with
        ``run_gc``) the gc composed in, as one run with the scan taken under the lock
        (:func:`regfs.gc.removal.remove`).

        Raises:
            UsageError: a malformed or unknown target, or not confirmed.
            GcRefused: refused for safety; its ``outcome`` is the :class:`RmOutcome`.
        """
        kw.setdefault("command", "regfs rm")
        return remove(
            self._place.runnable(),
            targets,
            dry_run=dry_run,
            trash=trash,
            run_gc=run_gc,
            gc_options=gc_options,
            tuning=self.tuning,
            now=now,
            **kw,
        )

    def retain(
        self,
        rules: list[Rule],
        *,
        dry_run: bool,
        trash: bool = False,
        min_age: float = MIN_AGE,
        **kw: Unpack[RunOptions],
    ) -> RetainOutcome:
        """``regfs retain``: remove the tags retention ``rules`` let go (and what only they
        kept), or with ``dry_run`` only plan it (:func:`regfs.retain.run.retain`).

        Raises:
            UsageError: a malformed ``registry_url``, or not confirmed.
            RetainRefused: refused for safety; its ``result`` holds the plan and reasons.
        """
        return retain_run(
            self._place.runnable(),
            rules,
            dry_run=dry_run,
            trash=trash,
            min_age=min_age,
            tuning=self.tuning,
            **kw,
        )

    # --- the trash -------------------------------------------------------------------------

    def restore(self, run_id: str) -> RestoreResult:
        """``regfs restore``: put a trash run back (:func:`regfs.gc.trashrun.restore_run`).

        Raises:
            UsageError: no such run.
            RefusedError: another regfs holds the lock.
        """
        return restore_run(self.state, self.storage, run_id)

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
        """``regfs trash purge`` (:func:`regfs.gc.trashrun.purge_runs`).

        Raises:
            UsageError: not confirmed (nothing deleted).
            RefusedError: another regfs holds the lock.
        """
        return purge_runs(self.state, older_than, dry_run=dry_run, confirm=confirm, now=now)
