"""A plan and its parts: :class:`GcPlan`, :class:`Part`, :class:`GcOptions`, and the rules
every planner shares (symbolic links are kept off, plan order). Nothing here touches the disk.

Planners (:mod:`regfs.gc.garbage` for gc, :mod:`regfs.gc.rm` for removals,
:mod:`regfs.retain.plan` for retention) each make a :class:`Part`; :mod:`regfs.gc.compose`
combines parts into one plan. The plan is an ordered list of actions, references before
data, so that a crash at any point leaves only harmless orphans and never a link to missing
data:

0. ``tag``: whole tag folders (only ``regfs rm``);
1. ``tag_index``: ``tags/<tag>/index/<alg>/<hex>`` entries of deleted manifests;
2. ``revision``: revision folders of deleted (untagged) manifests;
3. ``layer_link``: ``_layers`` links of deleted blobs, and links no surviving manifest of the
   repository references;
4. ``upload``: stale unfinished uploads;
5. ``blob``: blob folders nothing live needs;
6. ``folder``: folders the run leaves empty, deepest first, up to whole repositories.

``--dry-run`` renders this very object; a real run executes it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from regfs.defaults import MIN_AGE, UPLOADS_OLDER_THAN
from regfs.gc.steps import Action, Kept, Step, step_rank
from regfs.graph.unread import Unknowns
from regfs.layout import upload_dir
from regfs.model.findings import Finding
from regfs.model.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class GcOptions:
    """What ``regfs gc`` deletes and how (the options of its command line).

    ``min_age``: the grace period in seconds (anything younger is kept); ``uploads_older_than``:
    unfinished uploads started before this are stale; ``force``: proceed despite unreadable
    parts (what they might reference is kept); ``trash``: move instead of deleting.
    """

    delete_untagged: bool = False
    min_age: float = MIN_AGE
    uploads_older_than: float = UPLOADS_OLDER_THAN
    force: bool = False
    trash: bool = False


class PartKind(StrEnum):
    """Which planner made a part of a plan."""

    RM = "rm"  # the removal of ``regfs rm`` targets
    GC = "gc"  # garbage collection
    RETAIN = "retain"  # the removal retention rules ask for
    FOLDERS = "folders"  # folders the whole plan leaves empty (planned once, at the end)


@dataclass(slots=True)
class Part:
    """One planner's contribution to a plan, before composing (:mod:`regfs.gc.compose`):
    its actions, what it keeps and why, the findings that stop it, the manifests it removes,
    and the young uploads it saw (evidence of a live registry)."""

    kind: PartKind
    actions: list[Action] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    blocking: list[Finding] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)
    young_uploads: list[str] = field(default_factory=list)
    # Repositories whose already-empty folders this part tidies; None: every one (gc).
    scope: frozenset[str] | None = None

    def by_step(self, step: Step) -> list[Action]:
        """The actions of one step, in the order planned."""
        return [a for a in self.actions if a.step == step]


@dataclass(slots=True)
class GcPlan:
    """One plan: one run id, ordered actions (references before data, folders last), what
    is kept and why, and what stops it. ``origin`` says which part made each action (by
    path); composing fills it."""

    run_id: str
    v2: str
    options: GcOptions
    created: float
    actions: list[Action]
    kept: list[Kept]
    blocking: list[Finding]
    # Manifests removed (repository, digest), for reporting.
    manifests: list[tuple[str, str]] = field(default_factory=list)
    # Young unfinished uploads: evidence of a live registry.
    young_uploads: list[str] = field(default_factory=list)
    origin: dict[str, PartKind] = field(default_factory=dict)

    def by_step(self, step: Step) -> list[Action]:
        """The actions of one step, in plan order."""
        return [a for a in self.actions if a.step == step]

    @property
    def reclaimed_bytes(self) -> int:
        """Bytes of every action (what a run that does them all frees)."""
        return sum(a.size for a in self.actions)


# Anything with planned actions: a whole plan, or a part of one.
Planned = GcPlan | Part


def new_run_id(now: float) -> str:
    """A run id: the UTC time and 8 random hex digits (``YYYYmmddTHHMMSSZ-xxxxxxxx``)."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def keep_off_symlinks(plan: GcPlan | Part, unknown: Unknowns) -> None:
    """Drop every action at, below or containing a symbolic link (the registry serves through
    it; gc never deletes through or beyond one, nor the link itself), keeping them listed."""
    if not unknown.symlinks:
        return
    kept: list[Action] = []
    for a in plan.actions:
        link = unknown.untouchable(a.path)
        if link is None:
            kept.append(a)
            continue
        plan.kept.append(
            Kept(
                a.step,
                a.path,
                f"at, below or containing the symbolic link {link}",
                a.digest,
                a.repository,
                a.size,
            )
        )
    plan.actions = kept


def sort_actions(plan: GcPlan | Part) -> None:
    """References before data, folders last (they were computed deepest first)."""
    plan.actions.sort(key=lambda a: step_rank(a.step))


def young_uploads(snap: Snapshot, cutoff: float) -> list[str]:
    """Unfinished uploads started within the grace period: a registry at work.

    Started means :attr:`Upload.started`: the ``startedat`` the registry wrote (its clock,
    which a copy or a checkout does not change), else the time in a UUIDv7 id, else (a
    cancelled upload of a 2.x registry) the newest mtime, the only evidence there is. File
    mtimes of an upload that has a start time are not evidence: a copy refreshes them (such
    an upload is kept by :func:`_plan_uploads`, not taken for a live registry)."""
    out = []
    for repo in snap.repositories.values():
        for up in sorted(repo.uploads.values(), key=lambda u: u.uuid):
            if up.started > cutoff:
                out.append(upload_dir(repo.name, up.uuid))
    return out


def state_dir(v2: str) -> str:
    """Where regfs keeps its lock, journals and trash: ``<rootdirectory>/.regfs``."""
    parts = v2.rstrip("/").split("/")
    if parts[-3:] == ["docker", "registry", "v2"]:
        return os.path.join("/".join(parts[:-3]) or "/", ".regfs")
    return os.path.join(v2, ".regfs")
