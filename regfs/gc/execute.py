"""Single-use execution of a :class:`GcPlan`: re-check, then delete or move to trash.

Every filesystem change goes through :class:`Ops`, so tests can inject failures and crashes
at any step. A step either completes, is skipped with a reason (changed since the scan,
unknown content), is found already gone (a warning), or fails (the run stops, exit 4).
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from regfs.gc.journal import Journal
from regfs.gc.plan import Action, GcPlan
from regfs.layout import blob_data
from regfs.manifests import parse_manifest
from regfs.model.digest import ALGORITHMS, is_hex_for, split_digest
from regfs.model.manifest import ManifestError
from regfs.scan import MANIFEST_READ_LIMIT

ALLOWED_UPLOAD_FILES = ("data", "startedat")
# Steps whose targets a manifest pushed since the scan may need (see ``pushed_since``).
PUSH_CHECKED_STEPS = ("tag_index", "revision", "layer_link", "blob")


class Ops:
    """The primitive filesystem operations a run performs."""

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def rename(self, src: str, dst: str) -> None:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)


@dataclass(slots=True)
class StepResult:
    action: Action
    status: str  # done | skipped | gone | failed
    detail: str = ""


@dataclass(slots=True)
class ExecResult:
    results: list[StepResult] = field(default_factory=list)
    interrupted: bool = False
    failed: StepResult | None = None
    seconds: float = 0.0

    def with_status(self, status: str) -> list[StepResult]:
        return [r for r in self.results if r.status == status]

    @property
    def reclaimed_bytes(self) -> int:
        return sum(r.action.size for r in self.results if r.status == "done")


class _Skip(Exception):
    pass


class _Gone(Exception):
    pass


class Executor:
    def __init__(
        self,
        plan: GcPlan,
        *,
        journal: Journal | None,
        trash_dir: str | None,
        ops: Ops | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        relinked: Callable[[set[str]], set[str]] | None = None,
        pushed: Callable[[str], set[str]] | None = None,
    ) -> None:
        self.plan = plan
        self.v2 = plan.v2
        self.journal = journal
        self.trash_dir = trash_dir
        self.ops = ops or Ops()
        self.progress = progress
        self.relinked = relinked
        self.pushed = pushed
        self._stop = False

    def _abs(self, rel: str) -> str:
        return f"{self.v2}/{rel}"

    def _no_symlink_on(self, rel: str) -> None:
        """Refuse (skip) a target at or beyond a symbolic link below the root: the registry
        serves through links, so nothing is deleted through or beyond one, nor a link itself.
        A component that does not exist is left to the step (gone)."""
        path = self.v2
        for part in rel.split("/"):
            path = f"{path}/{part}"
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return
            if stat.S_ISLNK(st.st_mode):
                shown = os.path.relpath(path, self.v2)
                raise _Skip(f"{shown} is a symbolic link: nothing is deleted through or beyond one")

    def run(self) -> ExecResult:
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

    def _install_sigint(self) -> Any:
        try:
            return signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread
            return None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _run(self, res: ExecResult) -> None:
        actions = self.plan.actions
        total = len(actions)
        relinked: set[str] = set()
        checked_links = False
        pushed: set[str] = set()
        looked: set[str] = set()
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
            if action.step == "blob" and not checked_links:
                # A push since the scan creates a link: its blob must stay.
                checked_links = True
                if self.relinked is not None:
                    wanted = {a.digest for a in actions if a.step == "blob" and a.digest}
                    relinked = self.relinked(wanted)
            try:
                if action.step in PUSH_CHECKED_STEPS and action.digest in pushed:
                    raise _Skip("referenced by a manifest pushed since the scan")
                if action.step == "blob" and action.digest in relinked:
                    raise _Skip("linked again since the scan")
                self._do(action)
            except _Skip as exc:
                r = StepResult(action, "skipped", str(exc))
            except _Gone as exc:
                r = StepResult(action, "gone", str(exc))
            except OSError as exc:
                r = StepResult(
                    action, "failed", f"{exc.strerror or exc} ({self._abs(action.path)})"
                )
                res.results.append(r)
                res.failed = r
                if self.journal:
                    self.journal.step(i, "failed", r.detail)
                return
            else:
                r = StepResult(action, "done")
            res.results.append(r)
            if self.journal:
                self.journal.step(i, r.status, r.detail)
            if self.progress and (i % 64 == 0 or i == total - 1):
                self.progress("delete", i + 1, total)

    # --- steps -----------------------------------------------------------------------------

    def _do(self, a: Action) -> None:
        self._no_symlink_on(a.path)
        if a.step == "folder":
            self._folder(a)
        elif a.step == "blob":
            self._single_file_dir(a, "data", check_size=True)
        elif a.step == "upload":
            self._upload(a)
        elif a.step == "tag":
            self._tag(a)
        else:
            self._single_file_dir(a, "link", check_size=False)

    def _listing(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except FileNotFoundError:
            raise _Gone("already gone") from None
        except NotADirectoryError:
            raise _Skip("no longer a folder") from None

    def _single_file_dir(self, a: Action, name: str, *, check_size: bool) -> None:
        folder = self._abs(a.path)
        if os.path.islink(folder):
            raise _Skip("is a symbolic link")
        names = self._listing(folder)
        if names != [name]:
            if not names:
                # An earlier run was interrupted between the file and its folder.
                self.ops.rmdir(folder)
                raise _Gone(f"{name} already gone; removed its empty folder")
            raise _Skip(f"folder holds {sorted(names)!r}, expected only {name!r}")
        target = f"{folder}/{name}"
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise _Gone(f"{name} already gone") from None
        if not _is_regular(st.st_mode):
            raise _Skip(f"{name} is not a regular file")
        if a.expect_mtime is not None and st.st_mtime != a.expect_mtime:
            raise _Skip("changed since the scan (mtime)")
        if check_size and a.expect_size is not None and st.st_size != a.expect_size:
            raise _Skip("changed since the scan (size)")
        if name == "link" and a.digest is not None and a.step != "layer_link":
            _check_link_content(target, a.digest)
        self._remove_dir_with(a, folder, [target])

    def _known_tree(
        self, a: Action, known: Callable[[str, str], bool]
    ) -> tuple[str, list[str], list[str], float]:
        """The folder of ``a`` with its files and subfolders, refusing (skip) symbolic links and
        any file ``known(relative folder, name)`` does not recognise; plus the newest mtime."""
        folder = self._abs(a.path)
        if os.path.islink(folder):
            raise _Skip("is a symbolic link")
        self._listing(folder)
        files: list[str] = []
        dirs: list[str] = []
        newest = 0.0
        for cur, dnames, fnames in os.walk(folder, followlinks=False):
            rel = os.path.relpath(cur, folder)
            for d in dnames:
                if os.path.islink(os.path.join(cur, d)):
                    raise _Skip("holds a symbolic link")
                dirs.append(os.path.join(cur, d))
            for fn in fnames:
                p = os.path.join(cur, fn)
                if not known(rel, fn) or os.path.islink(p):
                    raise _Skip(f"holds an unknown file {os.path.relpath(p, folder)}")
                files.append(p)
                newest = max(newest, os.lstat(p).st_mtime)
        return folder, files, dirs, newest

    def _remove_tree(
        self, a: Action, folder: str, files: list[str], dirs: list[str], last: str | None = None
    ) -> None:
        """Move to trash, or delete files then folders deepest first; ``last`` (a file) goes
        after every other file and subfolder, just before the folder itself."""
        if self.trash_dir is not None:
            self.ops.rename(folder, self._trash_path(a.path))
            return
        for p in files:
            if p != last:
                self.ops.unlink(p)
        for d in sorted(dirs, key=lambda p: -p.count("/")):
            self.ops.rmdir(d)
        if last in files:
            self.ops.unlink(last)
        self.ops.rmdir(folder)

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
        self._remove_tree(a, folder, files, dirs, last=os.path.join(folder, "startedat"))

    def _tag(self, a: Action) -> None:
        """A whole tag folder: ``current/link`` and ``index/<alg>/<hex>/link`` files only."""

        def known(rel: str, fn: str) -> bool:
            return fn == "link" and (
                rel == "current" or (rel.startswith("index/") and rel.count("/") == 2)
            )

        folder, files, dirs, _newest = self._known_tree(a, known)
        current = os.path.join(folder, "current", "link")
        if a.expect_mtime is not None:
            try:
                if os.lstat(current).st_mtime != a.expect_mtime:
                    raise _Skip("tag moved since the scan")
            except FileNotFoundError:
                raise _Skip("tag changed since the scan") from None
        self._remove_tree(a, folder, files, dirs)

    def _remove_dir_with(self, a: Action, folder: str, files: list[str]) -> None:
        if self.trash_dir is not None:
            self.ops.rename(folder, self._trash_path(a.path))
            return
        for p in files:
            self.ops.unlink(p)
        self.ops.rmdir(folder)

    def _folder(self, a: Action) -> None:
        path = self._abs(a.path)
        try:
            self.ops.rmdir(path)
        except FileNotFoundError:
            raise _Gone("already gone") from None
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _Skip("no longer empty") from None
            if exc.errno == errno.ENOTDIR:
                raise _Skip("no longer a folder") from None
            raise

    def _trash_path(self, rel: str) -> str:
        assert self.trash_dir is not None
        return os.path.join(self.trash_dir, rel)


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _check_link_content(path: str, digest: str) -> None:
    try:
        with open(path, "rb") as f:
            content = f.read(256)
    except OSError as exc:
        raise _Skip(f"link unreadable: {exc.strerror}") from None
    if content != digest.encode():
        raise _Skip("link content changed since the scan")


def relinked_digests(v2: str, wanted: set[str]) -> set[str]:
    """Digests in ``wanted`` that some repository links now (layer link or revision), also
    through symbolic links (this only reads).

    Lists each repository's ``_layers/<alg>`` and ``_manifests/revisions/<alg>`` folders once
    and stats the link files of the names that match: cheap next to a full scan.
    """
    found: set[str] = set()
    if not wanted:
        return found
    by_alg: dict[str, set[str]] = {}
    for d in wanted:
        alg, hexpart = split_digest(d)
        by_alg.setdefault(alg, set()).add(hexpart)
    for _repo, part in _repository_parts(v2):
        if part.name == "_layers":
            _match(part.path, by_alg, found)
        else:
            _match(os.path.join(part.path, "revisions"), by_alg, found)
    return found


def _repository_parts(v2: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every ``_layers`` and ``_manifests`` folder under ``repositories/``, with the name of
    the repository holding it; through symbolic links too (the registry serves through
    them; this only reads), each folder read once (a link loop or a folder linked twice)."""
    top = os.path.join(v2, "repositories")
    stack = [top]
    seen: set[tuple[int, int]] = set()
    while stack:
        cur = stack.pop()
        try:
            st = os.stat(cur)
            entries = list(os.scandir(cur))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        for e in entries:
            try:
                if not e.is_dir():
                    continue
            except OSError:
                continue
            if e.name in ("_layers", "_manifests"):
                yield os.path.relpath(cur, top), e
            elif not e.name.startswith("_"):
                stack.append(e.path)


def _match(base: str, by_alg: dict[str, set[str]], found: set[str]) -> None:
    for alg, hexes in by_alg.items():
        try:
            names = os.listdir(os.path.join(base, alg))
        except OSError:
            continue
        for h in hexes.intersection(names):
            if os.path.lexists(os.path.join(base, alg, h, "link")):
                found.add(f"{alg}:{h}")


def pushed_since(v2: str, known: Mapping[str, Collection[str]]) -> set[str]:
    """Manifests linked now that the scan did not know, with everything they reference.

    ``known`` maps each repository to the revisions it may still hold (the scan's, minus
    those the plan removes). A revision link outside it is a manifest pushed, or pushed
    again, since the scan: its blob, config, layers and children (read from disk now,
    recursively) are returned so that neither they nor their layer links are deleted.
    Lists each repository's revision folders once, through symbolic links as the registry
    does; reads only the new manifests.
    """
    new: set[str] = set()
    for repo, part in _repository_parts(v2):
        if part.name == "_manifests":
            _new_revisions(os.path.join(part.path, "revisions"), known.get(repo, ()), new)
    return referenced_by(v2, new)


def _new_revisions(base: str, known: Collection[str], into: set[str]) -> None:
    try:
        algs = os.listdir(base)
    except OSError:
        return
    for alg in algs:
        if alg not in ALGORITHMS:
            continue
        try:
            names = os.listdir(os.path.join(base, alg))
        except OSError:
            continue
        for h in names:
            d = f"{alg}:{h}"
            if (
                d not in known
                and is_hex_for(alg, h)
                and os.path.lexists(os.path.join(base, alg, h, "link"))
            ):
                into.add(d)


def referenced_by(v2: str, manifests: Iterable[str]) -> set[str]:
    """The manifests with their configs, layers and children (recursively), as on disk now.

    A manifest whose blob is missing or unparseable contributes only its own digest."""
    out: set[str] = set()
    stack = list(manifests)
    while stack:
        d = stack.pop()
        if d in out:
            continue
        out.add(d)
        try:
            with open(os.path.join(v2, blob_data(d)), "rb") as f:
                data = f.read(MANIFEST_READ_LIMIT + 1)
            if len(data) > MANIFEST_READ_LIMIT:
                continue
            m = parse_manifest(data)
        except (OSError, ValueError, ManifestError):
            continue
        out.update(desc.digest for desc in m.blob_refs())
        stack.extend(desc.digest for desc in m.children)
    return out
