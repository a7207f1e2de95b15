"""The run's look at the candidates between the two pure phases of gc planning.

:func:`refreshed` stats, through the storage, the blobs and layer links
:func:`regfs.gc.garbage.gc_candidates` named, on a copy of the snapshot: the snapshot the
candidates were planned from is never changed. :func:`build_plan` is gc alone in one call
(candidates, refresh, gc part, composed into one plan), as ``regfs gc`` plans.
"""

from __future__ import annotations

import copy
import dataclasses
import time

from regfs.gc.compose import compose
from regfs.gc.garbage import Candidates, gc_candidates, gc_part
from regfs.gc.plan import GcOptions, GcPlan, new_run_id
from regfs.model.snapshot import Snapshot
from regfs.scan import Refresher
from regfs.storage.base import Storage


def refreshed(storage: Storage, snap: Snapshot, cands: Candidates) -> Snapshot:
    """``snap`` with the candidates' blobs and layer links stat'ed (a copy: what vanished is
    dropped and reported there, as the scan would have). A snapshot that knows every size
    and age already (not lazy) is returned as it is."""
    if not snap.lazy or not (cands.blobs or cands.layer_links):
        return snap
    out = copy_for_refresh(snap, {name for name, _d in cands.layer_links})
    refresher = Refresher(storage, out)
    refresher.blobs(cands.blobs)
    refresher.layer_links(cands.layer_links)
    return out


def copy_for_refresh(snap: Snapshot, repositories: set[str]) -> Snapshot:
    """A copy of ``snap`` a refresh may change: what it changes is copied (blobs, findings,
    empty folders, blobs without data, the layer links of ``repositories``); the rest is
    shared."""
    repos = dict(snap.repositories)
    for name in repositories:
        r = copy.copy(repos[name])
        r.layers = dict(r.layers)
        repos[name] = r
    return dataclasses.replace(
        snap,
        blobs=dict(snap.blobs),
        repositories=repos,
        findings=list(snap.findings),
        blobs_without_data=set(snap.blobs_without_data),
        empty_dirs=list(snap.empty_dirs),
    )


def build_plan(
    snap: Snapshot,
    options: GcOptions,
    *,
    now: float | None = None,
    refresh: Refresher | None = None,
) -> GcPlan:
    """Plan a garbage collection of ``snap`` in one call: candidates, then (with
    ``refresh``, the storage's refresher) the refreshed copy, then the gc part, composed.

    Returns:
        The plan; ``snap`` is left as it was.
    """
    now = time.time() if now is None else now
    cands = gc_candidates(snap, options, now=now)
    fresh = snap if refresh is None else refreshed(refresh.storage, snap, cands)
    plan = GcPlan(new_run_id(now), str(snap.v2), options, now, [], [], [])
    return compose(fresh, plan, [gc_part(fresh, cands)])
