"""Execution of a :class:`~regfs.gc.plan.GcPlan` on a bucket: re-check by HEAD, then delete in
batches of 1,000 keys (``DeleteObjects``), step by step in plan order.

The same plan, the same order and the same outcomes as :class:`regfs.gc.execute.Executor` on a
filesystem (each action done, skipped with a reason, gone, or failed), with what S3 changes:

* **Batches.** The actions of one step go in chunks of up to 1,000 keys: every key of a chunk
  is re-checked in parallel (``HeadObject``: size, LastModified, ETag against the scan; a
  link's ETag against the MD5 of the digest it must hold, else a GET), then the chunk is
  deleted with ``DeleteObjects``, each key on the ETag its re-check saw (a conditional delete:
  a key written in between stays). A step never starts before the one before it is finished,
  so references still go before data.
* **A failed or partial batch ends the run** (status failed, exit 4) after that chunk: the
  actions whose keys were all deleted are done, every action with a key left is failed with
  the server's error, later chunks and steps are not started. The journal's ``done`` file is
  rewritten after each chunk (S3 has no append) and ``result.json`` lists what is left.
* **No folders.** A key prefix is not a folder: a ``folder`` step only looks that nothing is
  left under its prefix (skipped when something is); a blob, revision or link step deletes its
  one key (``data``, ``link``), never anything else under that prefix; a tag or upload step
  lists its prefix, refuses any key it does not recognise, and deletes those it does.
* **Unfinished uploads** are S3 multipart uploads: an upload step also aborts the multipart
  uploads under its folder (their parts are what it frees).
* **--trash** copies every key to ``.regfs/trash/<run-id>/`` first, then deletes the
  originals: not atomic (S3 has no rename); a key whose copy failed is not deleted. A
  multipart upload cannot be copied: it is aborted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import assert_never

from regfs.gc.execute import (
    PUSH_CHECKED_STEPS,
    StopsOnSigint,
    others_plan_on,
    planned_on_others,
)
from regfs.gc.journal import Journal
from regfs.gc.plan import GcPlan
from regfs.gc.steps import Action, ExecResult, Status, Step, StepResult
from regfs.storage.base import ListError, NotEmpty, NotFound, StorageError
from regfs.storage.s3 import DELETE_BATCH, MultipartUpload, S3Storage
from regfs.storage.s3batch import Deleted, copy_to_trash, delete_checked, head, parallel

LINK_STEPS = (Step.TAG_INDEX, Step.REVISION, Step.LAYER_LINK)
UPLOAD_FILES = ("data", "startedat")


@dataclass(slots=True)
class _Prepared:
    """One action re-checked: the keys to delete (with the ETag seen), those to delete after
    them (an upload's ``startedat``), the multipart uploads to abort; or its outcome."""

    action: Action
    index: int
    keys: list[tuple[str, str | None]] = field(default_factory=list)
    last: list[tuple[str, str | None]] = field(default_factory=list)
    uploads: list[MultipartUpload] = field(default_factory=list)
    outcome: StepResult | None = None


class _Skip(Exception):
    pass


class _Gone(Exception):
    pass


def same_second(a: float, b: float) -> bool:
    """Whether two LastModified times are the same second (S3's HEAD carries whole seconds;
    a listing may carry milliseconds)."""
    return int(a) == int(b)


def plain_md5(etag: str | None) -> bool:
    """Whether an ETag is a plain MD5 (a single-part, unencrypted upload's)."""
    return etag is not None and len(etag) == 32 and all(c in "0123456789abcdef" for c in etag)


class S3Executor(StopsOnSigint):
    """Runs a plan once on an :class:`S3Storage`; the counterpart of
    :class:`regfs.gc.execute.Executor` (same arguments, same :class:`ExecResult`)."""

    def __init__(
        self,
        plan: GcPlan,
        *,
        journal: Journal | None,
        trash_run: str | None,
        storage: S3Storage,
        progress: Callable[[str, int, int], None] | None = None,
        relinked: Callable[[set[str]], set[str]] | None = None,
        pushed: Callable[[Step], set[str]] | None = None,
        batch: int = DELETE_BATCH,
    ) -> None:
        self.plan = plan
        self.journal = journal
        self.trash_run = trash_run
        self.storage = storage
        self.progress = progress
        self.relinked = relinked
        self.pushed = pushed
        self.batch = max(1, min(batch, DELETE_BATCH))
        self._stop = False
        self._done = 0
        # A removal step not done (skipped) that a gc composed into the plan was planned on.
        self._not_removed: str | None = None

    # --- steps and chunks ----------------------------------------------------------------

    def _steps(self) -> list[tuple[Step, list[tuple[int, Action]]]]:
        """The plan's actions grouped into runs of one step, in plan order."""
        out: list[tuple[Step, list[tuple[int, Action]]]] = []
        for i, a in enumerate(self.plan.actions):
            if not out or out[-1][0] != a.step:
                out.append((a.step, []))
            out[-1][1].append((i, a))
        return out

    def _run(self, res: ExecResult) -> None:
        pushed: set[str] = set()
        looked: set[Step] = set()
        origin = self.plan.origin
        for step, items in self._steps():
            try:
                if step in PUSH_CHECKED_STEPS and step not in looked and self.pushed is not None:
                    looked.add(step)
                    pushed |= self.pushed(step)
                relinked: set[str] = set()
                if step is Step.BLOB and self.relinked is not None:
                    relinked = self.relinked({a.digest for _, a in items if a.digest})
            except StorageError as exc:
                i, a = items[0]
                detail = f"could not look for pushes since the scan: {exc.strerror or exc}"
                self._finish(res, [_Prepared(a, i, outcome=StepResult(a, Status.FAILED, detail))])
                return
            # The removal's actions of a step before the rest of it, never in one batch: a
            # gc composed into the plan was planned on the removal being done (the executor on
            # disk goes in plan order, where they come first too).
            removal = [(i, a) for i, a in items if others_plan_on(origin, a)]
            rest = [(i, a) for i, a in items if not others_plan_on(origin, a)]
            for group in (removal, rest):
                for chunk in self._chunks(step, group):
                    if self._stop:
                        res.interrupted = True
                        return
                    preps = self._prepare_all(chunk, pushed, relinked)
                    self._execute_chunk(preps)
                    if self._finish(res, preps):
                        return
                    for p in preps:
                        r = p.outcome
                        if (
                            r is not None
                            and r.status is Status.SKIPPED
                            and others_plan_on(origin, p.action)
                        ):
                            self._not_removed = self._not_removed or p.action.path

    def _prepare_all(
        self, chunk: list[tuple[int, Action]], pushed: set[str], relinked: set[str]
    ) -> list[_Prepared]:
        """Re-check every action of a chunk, in parallel."""
        return parallel(
            self.storage, lambda ia: self._prepare(ia[0], ia[1], pushed, relinked), chunk
        )

    def _chunks(self, step: str, items: list[tuple[int, Action]]) -> list[list[tuple[int, Action]]]:
        # A tag or an upload holds a few keys: fewer actions a chunk keep it near 1,000 keys.
        per = self.batch if step not in (Step.TAG, Step.UPLOAD) else max(1, self.batch // 8)
        return [items[i : i + per] for i in range(0, len(items), per)]

    def _finish(self, res: ExecResult, preps: list[_Prepared]) -> bool:
        """Record a chunk's outcomes (journal made durable); True when the run must stop."""
        stop = False
        for p in preps:
            r = p.outcome or StepResult(p.action, Status.DONE)
            res.results.append(r)
            if r.status is Status.FAILED:
                stop = True
                if res.failed is None:
                    res.failed = r
            if self.journal:
                self.journal.step(p.index, r.status, r.detail)
        if self.journal:
            self.journal.sync()
        self._done += len(preps)
        if self.progress:
            self.progress("delete", self._done, len(self.plan.actions))
        return stop

    # --- re-check ------------------------------------------------------------------------

    def _prepare(self, i: int, a: Action, pushed: set[str], relinked: set[str]) -> _Prepared:
        p = _Prepared(a, i)
        try:
            if self._not_removed is not None and planned_on_others(self.plan.origin, a):
                raise _Skip(f"planned on the removal of {self._not_removed}, which was not done")
            if a.step in PUSH_CHECKED_STEPS and a.digest in pushed:
                raise _Skip("referenced by a manifest pushed since the scan")
            if a.step is Step.BLOB and a.digest in relinked:
                raise _Skip("linked again since the scan")
            match a.step:
                case Step.FOLDER:
                    self._folder(a)
                case Step.BLOB:
                    p.keys = [self._single(a, "data")]
                case Step.TAG_INDEX | Step.REVISION | Step.LAYER_LINK:
                    p.keys = [self._single(a, "link")]
                case Step.UPLOAD:
                    self._upload(a, p)
                case Step.TAG:
                    p.keys = self._tag(a)
                case _:
                    assert_never(a.step)
        except _Skip as exc:
            p.outcome = StepResult(a, Status.SKIPPED, str(exc))
        except _Gone as exc:
            p.outcome = StepResult(a, Status.GONE, str(exc))
        except StorageError as exc:
            p.outcome = StepResult(a, Status.FAILED, f"{exc.strerror or exc} ({exc.filename})")
        return p

    def _folder(self, a: Action) -> None:
        try:
            self.storage.rmdir(a.path)  # on S3: NotEmpty when keys remain, else nothing
        except NotEmpty:
            raise _Skip("no longer empty") from None

    def _single(self, a: Action, name: str) -> tuple[str, str | None]:
        rel = f"{a.path}/{name}"
        try:
            st = head(self.storage, rel)
        except NotFound:
            raise _Gone(f"{name} already gone") from None
        if name == "data" and a.expect_size is not None and st.st_size != a.expect_size:
            raise _Skip("changed since the scan (size)")
        if a.expect_mtime is not None and not same_second(st.st_mtime, a.expect_mtime):
            raise _Skip("changed since the scan (mtime)")
        if name == "link" and a.digest is not None and a.step is not Step.LAYER_LINK:
            self._check_link(rel, st.etag, a.digest)
        return rel, st.etag

    def _check_link(self, rel: str, etag: str | None, digest: str) -> None:
        """The link holds ``digest``: proven by its ETag (the MD5 of its body) when that is a
        plain MD5, else read."""
        if plain_md5(etag):
            expected = hashlib.md5(digest.encode(), usedforsecurity=False).hexdigest()
            if etag != expected:
                raise _Skip("link content changed since the scan")
            return
        try:
            content = self.storage.read_file(rel, 256)[0]
        except StorageError as exc:
            raise _Skip(f"link unreadable: {exc.strerror}") from None
        if content != digest.encode():
            raise _Skip("link content changed since the scan")

    def _listed(self, a: Action) -> dict[str, tuple[str, str | None, float]]:
        """``{name below the action's folder: (path, etag, mtime)}`` listed now."""
        out: dict[str, tuple[str, str | None, float]] = {}
        for item in self.storage.list_prefix(a.path):
            if isinstance(item, ListError):
                raise item.error
            out[item.path[len(a.path) + 1 :]] = (item.path, item.etag, item.mtime)
        return out

    def _upload(self, a: Action, p: _Prepared) -> None:
        listed = self._listed(a)
        for name in listed:
            if name not in UPLOAD_FILES and not name.startswith("hashstates/"):
                raise _Skip(f"holds an unknown file {name}")
        newest = max((mtime for _, _, mtime in listed.values()), default=0.0)
        if a.expect_mtime is not None and int(newest) > int(a.expect_mtime):
            raise _Skip("written to since the scan")
        p.uploads = [
            u for u in self.storage.multipart_uploads(a.path) if u.path == f"{a.path}/data"
        ]
        if any(int(u.initiated) > int(self.plan.created) for u in p.uploads):
            raise _Skip("written to since the scan (a multipart upload started since)")
        if not listed and not p.uploads:
            raise _Gone("already gone")
        # ``startedat`` goes last: until then a crashed run leaves a recognisably stale upload.
        p.keys = [(path, etag) for name, (path, etag, _) in listed.items() if name != "startedat"]
        p.last = [(path, etag) for name, (path, etag, _) in listed.items() if name == "startedat"]

    def _tag(self, a: Action) -> list[tuple[str, str | None]]:
        listed = self._listed(a)
        if not listed:
            raise _Gone("already gone")
        for name in listed:
            parts = name.split("/")
            if not (name == "current/link" or (parts[0] == "index" and len(parts) == 4)):
                raise _Skip(f"holds an unknown file {name}")
            if parts[-1] != "link":
                raise _Skip(f"holds an unknown file {name}")
        current = listed.get("current/link")
        if a.expect_mtime is not None:
            if current is None:
                raise _Skip("tag changed since the scan")
            if not same_second(current[2], a.expect_mtime):
                raise _Skip("tag moved since the scan")
        return [(path, etag) for path, etag, _ in listed.values()]

    # --- change --------------------------------------------------------------------------

    def _execute_chunk(self, preps: list[_Prepared]) -> None:
        live = [p for p in preps if p.outcome is None]
        for phase in ("keys", "last"):
            todo = [p for p in live if p.outcome is None and getattr(p, phase)]
            if phase == "keys":
                self._abort_uploads([p for p in live if p.outcome is None and p.uploads])
                todo = [p for p in todo if p.outcome is None]
            pairs = [(rel, etag) for p in todo for rel, etag in getattr(p, phase)]
            if not pairs:
                continue
            results = self._remove(pairs)
            for p in todo:
                self._judge(p, [results[rel] for rel, _ in getattr(p, phase)])

    def _remove(self, pairs: list[tuple[str, str | None]]) -> dict[str, Deleted]:
        """Delete (or copy to the trash, then delete) every pair; the result of each path."""
        out: dict[str, Deleted] = {}
        if self.trash_run is not None:
            for d in copy_to_trash(self.storage, self.trash_run, [rel for rel, _ in pairs]):
                if d.error is not None:
                    out[d.path] = d
            pairs = [(rel, etag) for rel, etag in pairs if rel not in out]
        for d in delete_checked(self.storage, pairs):
            out[d.path] = d
        return out

    def _judge(self, p: _Prepared, results: list[Deleted]) -> None:
        failed = [d for d in results if d.error is not None]
        if failed:
            err = failed[0].error
            assert err is not None
            more = f" (and {len(failed) - 1} more keys)" if len(failed) > 1 else ""
            p.outcome = StepResult(
                p.action, Status.FAILED, f"{err.strerror or err} ({err.filename}){more}"
            )
        elif any(d.changed for d in results):
            p.outcome = StepResult(p.action, Status.SKIPPED, "changed since its re-check (ETag)")

    def _abort_uploads(self, preps: list[_Prepared]) -> None:
        def one(p: _Prepared) -> None:
            for u in p.uploads:
                try:
                    self.storage.abort_multipart(u)
                except NotFound:
                    continue  # finished or aborted meanwhile
                except StorageError as exc:
                    p.outcome = StepResult(
                        p.action, Status.FAILED, f"{exc.strerror or exc} ({exc.filename})"
                    )
                    return

        parallel(self.storage, one, preps)
