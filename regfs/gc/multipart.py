"""Abandoned multipart uploads in a gc plan (S3 only): pure, from the leftovers listed.

A stale upload the plan already removes gets its multipart bytes added to its size (its
executor aborts them with it). A leftover whose upload folder has no visible file left (the
registry's purger removed ``startedat`` and ``hashstates``, the parts stayed) becomes an
``upload`` step of its own: nothing else would ever free it. A leftover whose folder is still
there but not stale by the plan's rules is left alone, as that upload is.
"""

from __future__ import annotations

import dataclasses

from regfs.gc.plan import GcPlan
from regfs.gc.steps import Action, Step, step_rank
from regfs.reports.multipart import MultipartLeftover

UPLOAD = Step.UPLOAD


def with_multipart(plan: GcPlan, leftovers: list[MultipartLeftover]) -> None:
    """Put ``leftovers`` (already filtered by ``--uploads-older-than``) into ``plan``, in
    place, keeping the plan's step order."""
    by_folder: dict[str, list[MultipartLeftover]] = {}
    for m in leftovers:
        by_folder.setdefault(m.path, []).append(m)
    planned = {a.path: i for i, a in enumerate(plan.actions) if a.step == UPLOAD}
    new: list[Action] = []
    for folder, ups in sorted(by_folder.items()):
        size = sum(m.size for m in ups)
        if folder in planned:
            i = planned[folder]
            plan.actions[i] = dataclasses.replace(plan.actions[i], size=plan.actions[i].size + size)
        elif not any(m.has_folder for m in ups):
            new.append(
                Action(
                    UPLOAD,
                    folder,
                    repository=ups[0].repository,
                    size=size,
                    expect_mtime=max(m.initiated for m in ups),
                )
            )
    if not new:
        return
    at = next(
        (i for i, a in enumerate(plan.actions) if step_rank(a.step) > step_rank(UPLOAD)),
        len(plan.actions),
    )
    plan.actions[at:at] = new
