"""Plans compose: parts from any planners (a removal, gc, retention) become one plan with
one run id, so that one lock, one journal and one ``regfs restore`` cover them all.

:func:`compose` takes the parts in order (an earlier part's actions come first within a
step), records which part made each action (``plan.origin``), plans the folders the whole
plan leaves empty once, keeps every action off symbolic links, and sorts once. Pure: no
I/O, and neither the snapshot nor the parts are changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from regfs.gc.folders import folder_actions
from regfs.gc.plan import GcPlan, Part, PartKind, keep_off_symlinks, sort_actions
from regfs.graph.unread import unknowns
from regfs.model.snapshot import Snapshot

P = TypeVar("P", bound=GcPlan)


def compose(snap: Snapshot, plan: P, parts: Sequence[Part]) -> P:
    """Fill ``plan`` (made empty by the caller: its run id, options, time) with ``parts``.

    ``snap`` is the snapshot as the run refreshed it, before any part's changes: folders are
    planned on it against every action of every part. Already-empty folders are tidied in
    the union of the parts' scopes (everywhere when a part's scope is None, as gc's is). An
    action a previous part already planned (the same path) is not planned twice.
    """
    young: dict[str, None] = dict.fromkeys(plan.young_uploads)
    for part in parts:
        for a in part.actions:
            if a.path not in plan.origin:
                plan.origin[a.path] = part.kind
                plan.actions.append(a)
        plan.kept.extend(part.kept)
        plan.blocking.extend(part.blocking)
        plan.manifests.extend(part.manifests)
        young.update(dict.fromkeys(part.young_uploads))
    plan.young_uploads = list(young)
    scope: set[str] | None = set()
    for part in parts:
        scope = None if scope is None or part.scope is None else scope | part.scope
    for folder in folder_actions(snap, plan.actions, scope):
        plan.origin[folder.path] = PartKind.FOLDERS
        plan.actions.append(folder)
    keep_off_symlinks(plan, unknowns(snap))
    sort_actions(plan)
    return plan


def part_of(plan: GcPlan, kinds: set[PartKind]) -> list[int]:
    """Indexes (in plan order) of the actions that parts of ``kinds`` made."""
    return [i for i, a in enumerate(plan.actions) if plan.origin.get(a.path) in kinds]
