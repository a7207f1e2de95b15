"""The gc protocol's vocabulary: the kinds of step a plan holds (:class:`Step`), what became
of each one (:class:`Status`), one deletion (:class:`Action`) or one thing kept
(:class:`Kept`), and what a run did (:class:`StepResult`, :class:`ExecResult`).

Both enums are string enums whose values are what the ``--json`` documents and the run
journal have always held. An action read back from a journal goes through
:meth:`Action.from_dict`, which accepts only a known step on a path of the storage layout of
that step's level (:func:`regfs.layout.folders.check_rel`): a tampered journal is a
:class:`~regfs.layout.folders.LayoutError`, never a path joined to ROOT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from regfs.layout.folders import LayoutError, Level, check_rel, parse_folder
from regfs.model.digest import DigestError, parse_digest


class Step(StrEnum):
    """A kind of deletion, in plan order: references before data, folders last."""

    TAG = "tag"  # a whole tag folder (``regfs rm``, ``regfs retain``)
    TAG_INDEX = "tag_index"  # ``tags/<tag>/index/<alg>/<hex>`` of a deleted manifest
    REVISION = "revision"  # the revision folder of a deleted manifest
    LAYER_LINK = "layer_link"  # a repository's ``_layers`` link
    UPLOAD = "upload"  # a stale unfinished upload
    BLOB = "blob"  # a blob folder nothing live needs
    FOLDER = "folder"  # a folder the run leaves empty


# The order a plan executes in (the enum's own order).
STEP_ORDER: tuple[Step, ...] = tuple(Step)
_RANK = {s: i for i, s in enumerate(STEP_ORDER)}

# The folder level each step's path is (a ``folder`` step: any folder of the layout).
STEP_LEVEL: dict[Step, Level] = {
    Step.TAG: Level.TAG,
    Step.TAG_INDEX: Level.TAG_INDEX,
    Step.REVISION: Level.REVISION,
    Step.LAYER_LINK: Level.LAYER,
    Step.UPLOAD: Level.UPLOAD,
    Step.BLOB: Level.BLOB,
}


def step_rank(step: Step) -> int:
    """The position of ``step`` in :data:`STEP_ORDER` (the sort key of a plan)."""
    return _RANK[step]


class Status(StrEnum):
    """What became of one step of a run (the journal's and the JSON's status)."""

    DONE = "done"  # deleted (or moved to the trash)
    SKIPPED = "skipped"  # not done, for the reason given (changed since the scan, ...)
    GONE = "gone"  # already gone (a warning)
    FAILED = "failed"  # the change failed; the run stopped there


_STEPS = frozenset(s.value for s in Step)
_STATUSES = frozenset(s.value for s in Status)


def parse_step(value: object) -> Step:
    """``value`` as a :class:`Step`; :class:`LayoutError` when it is not one."""
    if isinstance(value, str) and value in _STEPS:
        return Step(value)
    raise LayoutError(f"unknown step {value!r}")


def parse_status(value: object) -> Status:
    """``value`` as a :class:`Status`; :class:`LayoutError` when it is not one."""
    if isinstance(value, str) and value in _STATUSES:
        return Status(value)
    raise LayoutError(f"unknown step status {value!r}")


@dataclass(frozen=True, slots=True)
class Action:
    """One deletion. ``path`` is a folder relative to ``v2``; ``expect_*`` describe its primary
    file (``link``, ``data`` or an upload's ``data``) at scan time, re-checked before deleting."""

    step: Step
    path: str
    repository: str | None = None
    digest: str | None = None
    size: int = 0
    expect_size: int | None = None
    expect_mtime: float | None = None

    def as_dict(self) -> dict[str, object]:
        """The journal's form (``plan.json``)."""
        return {
            "step": str(self.step),
            "path": self.path,
            "repository": self.repository,
            "digest": self.digest,
            "size": self.size,
            "expect_size": self.expect_size,
            "expect_mtime": self.expect_mtime,
        }

    @classmethod
    def from_dict(cls, d: object) -> Action:
        """An action read back from a journal, checked before anything uses it: a known
        step, a path of the layout at that step's level, the repository that path names, a
        valid digest.

        Raises:
            LayoutError: anything else (a tampered or foreign journal).
        """
        if not isinstance(d, dict):
            raise LayoutError(f"not an action: {d!r}")
        step = parse_step(d.get("step"))
        path = d.get("path")
        if not isinstance(path, str):
            raise LayoutError(f"not a path: {path!r}")
        check_rel(path)
        repository = _opt_str(d, "repository")
        digest = _opt_str(d, "digest")
        level = STEP_LEVEL.get(step)
        if level is not None:
            folder = parse_folder(path)
            if folder is None or folder.level is not level:
                raise LayoutError(f"{path!r} is not the folder of a {step} step")
            if folder.repo and repository != folder.repo:
                raise LayoutError(f"{path!r} is not in repository {repository!r}")
        if digest is not None:
            try:
                parse_digest(digest)
            except DigestError:
                raise LayoutError(f"not a digest: {digest!r}") from None
        expect_mtime = _opt_number(d, "expect_mtime")
        return cls(
            step=step,
            path=path,
            repository=repository,
            digest=digest,
            size=_opt_int(d, "size") or 0,
            expect_size=_opt_int(d, "expect_size"),
            expect_mtime=None if expect_mtime is None else float(expect_mtime),
        )


def _opt_str(d: dict[object, object], key: str) -> str | None:
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    raise LayoutError(f"{key} is not a string: {v!r}")


def _opt_int(d: dict[object, object], key: str) -> int | None:
    v = d.get(key)
    if v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
        return v
    raise LayoutError(f"{key} is not a size: {v!r}")


def _opt_number(d: dict[object, object], key: str) -> float | int | None:
    v = d.get(key)
    if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
        return v
    raise LayoutError(f"{key} is not a number: {v!r}")


@dataclass(frozen=True, slots=True)
class Kept:
    """Something that would be garbage but is kept, and why."""

    kind: Step
    path: str
    reason: str
    digest: str | None = None
    repository: str | None = None
    size: int = 0


@dataclass(slots=True)
class StepResult:
    """What became of one action, with the reason when it was not done."""

    action: Action
    status: Status
    detail: str = ""


@dataclass(slots=True)
class ExecResult:
    """Every step's result, and whether the run stopped early (interrupted, failed)."""

    results: list[StepResult] = field(default_factory=list)
    interrupted: bool = False
    failed: StepResult | None = None
    seconds: float = 0.0

    def with_status(self, status: Status) -> list[StepResult]:
        """The results with this status."""
        return [r for r in self.results if r.status == status]

    @property
    def reclaimed_bytes(self) -> int:
        """Bytes of the actions done."""
        return sum(r.action.size for r in self.results if r.status is Status.DONE)
