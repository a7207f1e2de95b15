"""Single-use execution of a :class:`GcPlan`: re-check, then delete or move to trash.

Every read, re-check and change goes through a :class:`~regfs.storage.base.Storage` (paths
relative to v2); every change through :class:`Ops` on top of it, so tests can inject
failures, crashes and swaps at any step. A step either completes, is skipped with a reason
(changed since the scan, unknown content, a symbolic link on the way), is found already gone
(a warning), or fails (the run stops, exit 4).
"""

from __future__ import annotations

import errno
import signal
import stat
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, assert_never

from regfs.gc.journal import Journal
from regfs.gc.plan import GcPlan, PartKind
from regfs.gc.steps import Action, ExecResult, Status, Step, StepResult
from regfs.layout import DATA, LINK, STARTEDAT, join, tag_current_link
from regfs.layout.folders import Level, parse_folder
from regfs.storage.base import DIR, SYMLINK, Entry, Storage, SymlinkFound
from regfs.storage.local import LocalStorage

ALLOWED_UPLOAD_FILES = (DATA, STARTEDAT)
# Steps whose targets a manifest pushed since the scan may need (see ``pushed_since``).
PUSH_CHECKED_STEPS = (Step.TAG_INDEX, Step.REVISION, Step.LAYER_LINK, Step.BLOB)


class Ops:
    """The primitive changes a run performs, each one call on the storage (paths relative to
    v2). The seam where tests inject failures, crashes and swaps."""

    def unlink(self, storage: Storage, path: str) -> None:
        """Delete a file."""
        storage.unlink(path)

    def rmdir(self, storage: Storage, path: str) -> None:
        """Remove an empty folder."""
        storage.rmdir(path)

    def move_to_trash(self, storage: Storage, path: str, run_id: str) -> None:
        """Move a folder to the run's trash."""
        storage.move_to_trash(path, run_id)


class _Skip(Exception):
    pass


class _Gone(Exception):
    pass


class StopsOnSigint:
    """What every executor shares: :meth:`run` times ``_run`` and turns SIGINT into
    ``_stop``, which ``_run`` checks at its own boundaries (an item on disk, a chunk on S3)."""

    _stop: bool = False

    def run(self) -> ExecResult:
        """Execute the plan in order; SIGINT stops it at the next boundary."""
        res = ExecResult()
        t0 = time.monotonic()
        previous = self._install_sigint()
        try:
            self._run(res)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            res.seconds = time.monotonic() - t0
        return res

    def _run(self, res: ExecResult) -> None:
        raise NotImplementedError

    def _install_sigint(self) -> Any:
        try:
            return signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread
            return None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True


class Executor(StopsOnSigint):
    """Runs a plan once, through ``storage`` (default: the local store at ``plan.v2``):
    re-checks each target, then deletes it or moves it to the run's trash (``trash_run``)."""

    def __init__(
        self,
        plan: GcPlan,
        *,
        journal: Journal | None,
        trash_run: str | None,
        storage: Storage | None = None,
        ops: Ops | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        relinked: Callable[[set[str]], set[str]] | None = None,
        pushed: Callable[[Step], set[str]] | None = None,
    ) -> None:
        self.plan = plan
        self.v2 = plan.v2
        self.journal = journal
        # Move to ``trash/<trash_run>/`` of the state store instead of deleting.
        self.trash_run = trash_run
        self.storage: Storage = storage if storage is not None else LocalStorage(self.v2)
        self.ops = ops or Ops()
        self.progress = progress
        self.relinked = relinked
        self.pushed = pushed
        self._stop = False

    def _abs(self, rel: str) -> str:
        return self.storage.abspath(rel)

    def _no_symlink_on(self, rel: str) -> None:
        """Refuse (skip) a target at or beyond a symbolic link below the root: the registry
        serves through links, so nothing is deleted through or beyond one, nor a link itself.
        A component that does not exist is left to the step (gone). (A link that appears
        after this look is refused by the storage itself: :class:`SymlinkFound`.)"""
        path = ""
        for part in rel.split("/"):
            path = join(path, part)
            try:
                st = self.storage.lstat(path)
            except FileNotFoundError:
                return
            if stat.S_ISLNK(st.st_mode):
                raise _Skip(f"{path} is a symbolic link: nothing is deleted through or beyond one")

    def _is_link(self, rel: str) -> bool:
        try:
            return stat.S_ISLNK(self.storage.lstat(rel).st_mode)
        except OSError:
            return False

    def _run(self, res: ExecResult) -> None:
        actions = self.plan.actions
        total = len(actions)
        relinked: set[str] = set()
        checked_links = False
        pushed: set[str] = set()
        looked: set[Step] = set()
        # A removal step not done (skipped) that a gc composed into the plan was planned on.
        not_removed: str | None = None
        origin = self.plan.origin
        for i, action in enumerate(actions):
            if self._stop:
                res.interrupted = True
                return
            if action.step in PUSH_CHECKED_STEPS and action.step not in looked:
                # A manifest pushed (or pushed again) since the scan needs what it references,
                # and the registry accepted it because those revisions and layer links were
                # still there: look again before each kind of them starts to go.
                looked.add(action.step)
                if self.pushed is not None:
                    pushed |= self.pushed(action.step)
            if action.step is Step.BLOB and not checked_links:
                # A push since the scan creates a link: its blob must stay.
                checked_links = True
                if self.relinked is not None:
                    wanted = {a.digest for a in actions if a.step is Step.BLOB and a.digest}
                    relinked = self.relinked(wanted)
            try:
                if not_removed is not None and planned_on_others(origin, action):
                    raise _Skip(f"planned on the removal of {not_removed}, which was not done")
                if action.step in PUSH_CHECKED_STEPS and action.digest in pushed:
                    raise _Skip("referenced by a manifest pushed since the scan")
                if action.step is Step.BLOB and action.digest in relinked:
                    raise _Skip("linked again since the scan")
                self._do(action)
            except _Skip as exc:
                r = StepResult(action, Status.SKIPPED, str(exc))
            except _Gone as exc:
                r = StepResult(action, Status.GONE, str(exc))
            except SymlinkFound as exc:
                # A folder became a link after the re-check: the storage refused to go
                # through it, and nothing outside ROOT was touched.
                r = StepResult(
                    action,
                    Status.SKIPPED,
                    f"{exc.filename} became a symbolic link: nothing is deleted through or "
                    "beyond one",
                )
            except OSError as exc:
                r = StepResult(
                    action, Status.FAILED, f"{exc.strerror or exc} ({self._abs(action.path)})"
                )
                res.results.append(r)
                res.failed = r
                if self.journal:
                    self.journal.step(i, Status.FAILED, r.detail)
                return
            else:
                r = StepResult(action, Status.DONE)
            if r.status is Status.SKIPPED and others_plan_on(origin, action):
                not_removed = not_removed or action.path
            res.results.append(r)
            if self.journal:
                self.journal.step(i, r.status, r.detail)
            if self.progress and (i % 64 == 0 or i == total - 1):
                self.progress("delete", i + 1, total)

    # --- steps -----------------------------------------------------------------------------

    def _do(self, a: Action) -> None:
        self._no_symlink_on(a.path)
        match a.step:
            case Step.FOLDER:
                self._folder(a)
            case Step.BLOB:
                self._single_file_dir(a, DATA, check_size=True)
            case Step.UPLOAD:
                self._upload(a)
            case Step.TAG:
                self._tag(a)
            case Step.TAG_INDEX | Step.REVISION | Step.LAYER_LINK:
                self._single_file_dir(a, LINK, check_size=False)
            case _:
                assert_never(a.step)

    def _listing(self, rel: str) -> list[str]:
        try:
            return [name for name, _kind in self.storage.list_kinds(rel)]
        except FileNotFoundError:
            raise _Gone("already gone") from None
        except NotADirectoryError:
            raise _Skip("no longer a folder") from None

    def _single_file_dir(self, a: Action, name: str, *, check_size: bool) -> None:
        folder = a.path
        if self._is_link(folder):
            raise _Skip("is a symbolic link")
        names = self._listing(folder)
        if names != [name]:
            if not names:
                # An earlier run was interrupted between the file and its folder.
                self.ops.rmdir(self.storage, folder)
                raise _Gone(f"{name} already gone; removed its empty folder")
            raise _Skip(f"folder holds {sorted(names)!r}, expected only {name!r}")
        target = join(folder, name)
        try:
            st = self.storage.lstat(target)
        except FileNotFoundError:
            raise _Gone(f"{name} already gone") from None
        if not _is_regular(st.st_mode):
            raise _Skip(f"{name} is not a regular file")
        if a.expect_mtime is not None and st.st_mtime != a.expect_mtime:
            raise _Skip("changed since the scan (mtime)")
        if check_size and a.expect_size is not None and st.st_size != a.expect_size:
            raise _Skip("changed since the scan (size)")
        if name == LINK and a.digest is not None and a.step is not Step.LAYER_LINK:
            _check_link_content(self.storage, target, a.digest)
        self._remove_dir_with(a, folder, [target])

    def _known_tree(
        self, a: Action, known: Callable[[str, str], bool]
    ) -> tuple[str, list[str], list[str], float]:
        """The folder of ``a`` with its files and subfolders, refusing (skip) symbolic links and
        any file ``known(relative folder, name)`` does not recognise; plus the newest mtime.
        (Walked top-down as ``os.walk`` does: a link to a folder counts as a folder, any other
        link as a file; a subfolder that cannot be listed is left to the removal.)"""
        folder = a.path
        if self._is_link(folder):
            raise _Skip("is a symbolic link")
        self._listing(folder)
        files: list[str] = []
        dirs: list[str] = []
        newest = 0.0
        stack = [folder]
        while stack:
            cur = stack.pop()
            rel = cur[len(folder) + 1 :] or "."
            try:
                entries = self.storage.list_dir(cur)
            except OSError:
                continue
            dnames, fnames = self._split_entries(cur, entries)
            for d in dnames:
                if d.kind == SYMLINK:
                    raise _Skip("holds a symbolic link")
                dirs.append(join(cur, d.name))
            for f in fnames:
                p = join(cur, f.name)
                if not known(rel, f.name) or f.kind == SYMLINK:
                    raise _Skip(f"holds an unknown file {p[len(folder) + 1 :]}")
                files.append(p)
                newest = max(newest, self.storage.lstat(p).st_mtime)
            stack.extend(reversed([join(cur, d.name) for d in dnames]))
        return folder, files, dirs, newest

    def _split_entries(self, cur: str, entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
        """(folders, the rest) as ``os.walk`` splits them: a link to a folder is a folder."""
        dnames: list[Entry] = []
        fnames: list[Entry] = []
        for e in entries:
            if e.kind == DIR:
                dnames.append(e)
            elif e.kind == SYMLINK:
                try:
                    to_dir = stat.S_ISDIR(self.storage.stat(join(cur, e.name)).st_mode)
                except OSError:
                    to_dir = False
                (dnames if to_dir else fnames).append(e)
            else:
                fnames.append(e)
        return dnames, fnames

    def _remove_tree(
        self, a: Action, folder: str, files: list[str], dirs: list[str], last: str | None = None
    ) -> None:
        """Move to trash, or delete files then folders deepest first; ``last`` (a file) goes
        after every other file and subfolder, just before the folder itself."""
        if self.trash_run is not None:
            self.ops.move_to_trash(self.storage, folder, self.trash_run)
            return
        for p in files:
            if p != last:
                self.ops.unlink(self.storage, p)
        for d in sorted(dirs, key=lambda p: -p.count("/")):
            self.ops.rmdir(self.storage, d)
        if last in files:
            self.ops.unlink(self.storage, last)
        self.ops.rmdir(self.storage, folder)

    def _upload(self, a: Action) -> None:
        folder, files, dirs, newest = self._known_tree(
            a,
            lambda rel, fn: (
                (rel == "." and fn in ALLOWED_UPLOAD_FILES) or rel.startswith("hashstates")
            ),
        )
        if a.expect_mtime is not None and newest > a.expect_mtime:
            raise _Skip("written to since the scan")
        # ``startedat`` goes last: until then a crashed run leaves an upload that is still
        # recognisably stale, and afterwards only empty folders.
        self._remove_tree(a, folder, files, dirs, last=join(folder, STARTEDAT))

    def _tag(self, a: Action) -> None:
        """A whole tag folder: ``current/link`` and ``index/<alg>/<hex>/link`` files only."""

        def known(rel: str, fn: str) -> bool:
            return fn == LINK and (
                rel == "current" or (rel.startswith("index/") and rel.count("/") == 2)
            )

        where = parse_folder(a.path)
        if where is None or where.level is not Level.TAG:
            raise _Skip("not a tag folder")
        folder, files, dirs, _newest = self._known_tree(a, known)
        current = tag_current_link(where.repo, where.tag)
        if a.expect_mtime is not None:
            try:
                if self.storage.lstat(current).st_mtime != a.expect_mtime:
                    raise _Skip("tag moved since the scan")
            except FileNotFoundError:
                raise _Skip("tag changed since the scan") from None
        self._remove_tree(a, folder, files, dirs)

    def _remove_dir_with(self, a: Action, folder: str, files: list[str]) -> None:
        if self.trash_run is not None:
            self.ops.move_to_trash(self.storage, folder, self.trash_run)
            return
        for p in files:
            self.ops.unlink(self.storage, p)
        self.ops.rmdir(self.storage, folder)

    def _folder(self, a: Action) -> None:
        try:
            self.ops.rmdir(self.storage, a.path)
        except FileNotFoundError:
            raise _Gone("already gone") from None
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _Skip("no longer empty") from None
            if exc.errno == errno.ENOTDIR:
                raise _Skip("no longer a folder") from None
            raise


def planned_on_others(origin: dict[str, PartKind], a: Action) -> bool:
    """An action of gc composed after a removal: gc planned it on the tree as the removal
    leaves it (a folder is only removed when empty: never on others' say)."""
    return origin.get(a.path) is PartKind.GC and a.step is not Step.FOLDER


def others_plan_on(origin: dict[str, PartKind], a: Action) -> bool:
    """A removal's step another part of the plan counts on (an upload's does not matter)."""
    kind = origin.get(a.path)
    return kind in (PartKind.RM, PartKind.RETAIN) and a.step is not Step.UPLOAD


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _check_link_content(storage: Storage, path: str, digest: str) -> None:
    try:
        content = storage.read_file(path, 256)[0]
    except OSError as exc:
        raise _Skip(f"link unreadable: {exc.strerror}") from None
    if content != digest.encode():
        raise _Skip("link content changed since the scan")
