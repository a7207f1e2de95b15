"""What removing tags frees: the manifests by role, and the blobs and layer links nothing left
needs (the gc part of a retention plan, :mod:`regfs.retain.plan`). Pure but for the lazy
refresh of the blobs and layer links whose size or age decides."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

from regfs.gc.garbage import mismatched, newest_links
from regfs.gc.plan import Part
from regfs.gc.steps import Action, Kept, Step
from regfs.graph.mark import Marks, Mode, mark
from regfs.graph.unread import unknowns
from regfs.layout import blob_dir, layer_dir
from regfs.model.snapshot import Link, Snapshot
from regfs.reports.orphans import manifest_closure
from regfs.scan import Refresher


@dataclass(frozen=True, slots=True)
class FreedManifest:
    """A manifest the run removes: ``role`` is ``tagged`` (a removed tag pointed at it),
    ``child`` (of an index it removes) or ``referrer`` (its subject goes)."""

    repository: str
    digest: str
    role: str
    # The tag, index or subject through which it was live before the run.
    via: str


@dataclass(slots=True)
class FreedPart(Part):
    """What the removal of tags frees (a gc part planned on that removal), with the
    manifests it removes by role and the bytes each repository frees alone."""

    freed_manifests: list[FreedManifest] = field(default_factory=list)
    freed_bytes: dict[str, int] = field(default_factory=dict)


def without_removed(
    snap: Snapshot, gone_tags: dict[str, set[str]], gone_revisions: dict[str, set[str]]
) -> Snapshot:
    """The snapshot without the tags and revisions the plan removes (for marking only).

    Repositories the plan does not touch are shared, not copied; layer links are left as
    they are (marking never reads them). Cheaper than :func:`regfs.gc.rm.without`, which
    rebuilds every path of every repository.
    """
    repos = dict(snap.repositories)
    for name in gone_tags.keys() | gone_revisions.keys():
        if name not in repos:
            continue
        r = copy.copy(repos[name])
        tags, revs = gone_tags.get(name, set()), gone_revisions.get(name, set())
        if tags:
            r.tags = {t: v for t, v in r.tags.items() if t not in tags}
        if revs:
            r.revisions = {d: v for d, v in r.revisions.items() if d not in revs}
        repos[name] = r
    return dataclasses.replace(snap, repositories=repos)


def plan_blobs(
    snap: Snapshot,
    plan: FreedPart,
    gone: tuple[dict[str, set[str]], dict[str, set[str]]],
    released: dict[str, set[str]],
    refresh: Refresher | None,
    cutoff: float,
) -> set[str]:
    """The blobs the removed manifests used that nothing left needs; returns them.

    ``gone`` is (repository -> removed tags, repository -> removed revision folders);
    ``released`` is repository -> every blob its removed manifests used.
    """
    marks: Marks = mark(without_removed(snap, *gone), Mode.DEFAULT)
    users: set[str] = set().union(*released.values())
    candidates = (users & snap.blobs.keys()) - marks.marked
    used_in: dict[str, set[str]] = {}

    def used(name: str) -> set[str]:
        """Every blob the repository's remaining manifests use."""
        if name not in used_in:
            out: set[str] = set()
            for m in marks.live.get(name, {}):
                manifest_closure(snap, m, into=out)
            used_in[name] = out
        return used_in[name]

    def only_ours(name: str) -> set[str]:
        """What the repository's removed manifests used and its remaining ones do not."""
        mine = released.get(name)
        return mine - used(name) if mine else set()

    if refresh is not None:
        refresh.blobs(sorted(candidates))
        # The links whose age decides: to a candidate blob (anywhere), and, in the
        # repositories that lost manifests, to a released blob no remaining manifest uses.
        pairs: list[tuple[str, str]] = []
        for name, repo in snap.repositories.items():
            layers = repo.layers
            if not layers:
                continue
            hit = _hits(layers, candidates, only_ours(name))
            pairs.extend((name, d) for d in hit)
        refresh.layer_links(sorted(pairs))
        late = unknowns(snap)
        if late.everything and not marks.keep_all:
            marks.unknown.everything.extend(late.everything)
    newest = newest_links(snap, candidates) if cutoff != float("inf") else {}
    doomed: set[str] = set()
    owners: dict[str, list[str]] = {}
    for name in sorted(released):
        for d in released[name]:
            owners.setdefault(d, []).append(name)
    for d in sorted(candidates):
        blob = snap.blobs.get(d)
        if blob is None:
            continue  # vanished since the scan (reported by the refresh)
        why = marks.undecided_reason(d)
        if why is not None:
            plan.kept.append(
                Kept(Step.BLOB, blob_dir(d), f"cannot be decided: {why}", d, size=blob.known_size)
            )
            continue
        if blob.mtime > cutoff or newest.get(d, 0.0) > cutoff:
            plan.kept.append(
                Kept(Step.BLOB, blob_dir(d), "younger than --min-age", d, size=blob.known_size)
            )
            continue
        doomed.add(d)
        plan.actions.append(
            Action(Step.BLOB, blob_dir(d), None, d, blob.known_size, blob.known_size, blob.mtime)
        )
        who = owners[d]
        if len(who) == 1:
            plan.freed_bytes[who[0]] = plan.freed_bytes.get(who[0], 0) + blob.known_size
    # Links: to a removed blob, anywhere; and, where manifests went, links only they used.
    protected = marks.protected
    for name in sorted(snap.repositories):
        repo = snap.repositories[name]
        layers = repo.layers
        if repo.incomplete or not layers:
            continue
        mine = released.get(name, set())
        for d in sorted(_hits(layers, doomed, mine)):
            link = layers[d]
            target = link.digest or d
            if d in doomed or target in doomed:
                plan.actions.append(
                    Action(
                        Step.LAYER_LINK,
                        layer_dir(name, d),
                        name,
                        target,
                        expect_mtime=link.mtime or None,
                    )
                )
                continue
            if target not in mine:
                continue
            here = used(name)
            if target in here or d in here or d in protected or target in protected:
                continue
            path = layer_dir(name, d)
            if link.mtime > cutoff:
                plan.kept.append(
                    Kept(Step.LAYER_LINK, path, "younger than --min-age", target, name)
                )
                continue
            plan.actions.append(
                Action(Step.LAYER_LINK, path, name, target, expect_mtime=link.mtime or None)
            )
    return doomed


def _hits(layers: dict[str, Link], wanted: set[str], only: set[str]) -> set[str]:
    """The layer links of one repository that name a ``wanted`` digest (by folder or by
    content) or, by content or by a folder whose content agrees, one of ``only`` (digests
    only this repository's removed manifests used)."""
    hit = layers.keys() & wanted
    if only:
        hit |= layers.keys() & only
    for d, target in mismatched(layers):
        if d in wanted or target in wanted or target in only:
            hit.add(d)
        else:
            hit.discard(d)
    return hit
