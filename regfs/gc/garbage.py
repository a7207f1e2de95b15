"""What gc deletes, planned in two pure phases around the run's refresh.

1. :func:`gc_candidates` (pure): mark what is live, and name the blobs and layer links whose
   size or age the decision needs (with a lazy scan they are known by name only);
2. the run refreshes exactly those through the storage (:func:`regfs.gc.refresh.refreshed`:
   a refreshed copy; the snapshot planned from is never changed);
3. :func:`gc_part` (pure): the gc :class:`~regfs.gc.plan.Part` of a plan, from the refreshed
   snapshot: untagged manifests (``--delete-untagged``), blobs nothing live needs, dead layer
   links, stale uploads. Folders are planned once, when the plan is composed.

Nothing here reads the disk or changes its input.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from regfs.duration import cutoff as age_cutoff
from regfs.gc.plan import GcOptions, Part, PartKind, young_uploads
from regfs.gc.steps import Action, Kept, Step
from regfs.graph.mark import Marks, Mode, mark
from regfs.graph.unread import unknowns
from regfs.layout import blob_dir, layer_dir, revision_dir, tag_index_dir, upload_dir
from regfs.model.snapshot import Link, Repository, Snapshot
from regfs.reports.orphans import manifest_closure, upload_is_stale


@dataclass(frozen=True, slots=True)
class Candidates:
    """The first phase's result: what is live, and what the run must look at again."""

    options: GcOptions
    now: float
    cutoff: float
    marks: Marks
    # repository -> every digest its live manifests use (for its layer links)
    used: dict[str, set[str]]
    # Blobs (digests) and layer links (repository, digest) whose size or age decides.
    blobs: list[str]
    layer_links: list[tuple[str, str]]


def gc_candidates(snap: Snapshot, options: GcOptions, *, now: float) -> Candidates:
    """Phase 1 (pure): mark ``snap`` and name what the run refreshes before phase 2."""
    cutoff = age_cutoff(now, options.min_age)
    unknown = unknowns(snap)
    marks = mark(snap, Mode.DEFAULT, unknown=unknown)
    if options.delete_untagged:
        # Revisions too young to judge, or that gc may not delete (at, below or containing a
        # symbolic link), stay roots: their blobs must stay with them.
        young: dict[str, set[str]] = {}
        for repo in snap.repositories.values():
            for d, link in repo.revisions.items():
                if link.mtime > cutoff or (
                    unknown.symlinks and unknown.untouchable(revision_dir(repo.name, d))
                ):
                    young.setdefault(repo.name, set()).add(link.digest or d)
        marks = mark(snap, Mode.UNTAGGED, young, unknown=unknown)
    used = {
        repo.name: _referenced_in(snap, marks, repo)
        for repo in snap.repositories.values()
        if repo.layers and not repo.incomplete
    }
    # Set operations run in C: on big stores these sets hold hundreds of thousands of digests.
    unmarked = snap.blobs.keys() - marks.marked
    links = [
        (name, d)
        for name, names in used.items()
        for d in sorted(
            (snap.repositories[name].layers.keys() - names)
            | (snap.repositories[name].layers.keys() - marks.marked - marks.protected.keys())
        )
    ]
    return Candidates(
        options=options,
        now=now,
        cutoff=cutoff,
        marks=marks,
        used=used,
        blobs=sorted(unmarked | (snap.blobs.keys() & marks.protected)),
        layer_links=links,
    )


def gc_part(snap: Snapshot, cands: Candidates) -> Part:
    """Phase 2 (pure): the gc part of a plan, from ``snap`` as the run refreshed it.

    What the refresh could not read widens what is kept like anything else; what it found
    gone is not planned."""
    options, cutoff = cands.options, cands.cutoff
    marks = _with_late_unknowns(cands.marks, snap)
    part = Part(PartKind.GC, blocking=snap.blocking)
    if options.delete_untagged:
        _plan_manifests(snap, marks, part)
    unmarked = snap.blobs.keys() - marks.marked
    # With no grace period (cutoff = infinity) no link can be young: skip the link walk.
    newest = newest_links(snap, unmarked) if cutoff != float("inf") else {}
    doomed = _plan_blobs(snap, marks, unmarked, newest, cutoff, part)
    _plan_layer_links(snap, marks, cands.used, doomed, cutoff, part)
    _plan_uploads(snap, options, cutoff, cands.now, part)
    part.young_uploads = young_uploads(snap, cutoff)
    return part


def _with_late_unknowns(marks: Marks, snap: Snapshot) -> Marks:
    """``marks`` with what the refreshed ``snap`` could not read (a new value)."""
    late = unknowns(snap)
    everything = list(marks.unknown.everything)
    if late.everything and not everything:
        everything.extend(late.everything)
    symlinks = list(marks.unknown.symlinks)
    symlinks += [s for s in late.symlinks if s not in marks.unknown.symlinks]
    unknown = dataclasses.replace(marks.unknown, everything=everything, symlinks=symlinks)
    return dataclasses.replace(marks, unknown=unknown)


def mismatched(links: dict[str, Link]) -> list[tuple[str, str]]:
    """(folder digest, content digest) of the links whose content names another digest."""
    return [(d, t) for d, link in links.items() if (t := link.digest) is not None and t != d]


def newest_links(snap: Snapshot, wanted: set[str]) -> dict[str, float]:
    """digest -> newest mtime of any link naming it (by folder name or by content), for the
    digests in ``wanted``."""
    out: dict[str, float] = {}

    def note(d: str, mtime: float) -> None:
        if mtime > out.get(d, 0.0):
            out[d] = mtime

    for repo in snap.repositories.values():
        for links in (repo.layers, repo.revisions):
            if not links:
                continue
            for d in links.keys() & wanted:
                note(d, links[d].mtime)
            for d, t in mismatched(links):
                if t in wanted:
                    note(t, links[d].mtime)
        for tag in repo.tags.values():
            cur = tag.current
            if cur is not None and cur.digest in wanted:
                note(cur.digest, cur.mtime)
            if tag.index:
                for d in tag.index.keys() & wanted:
                    note(d, tag.index[d].mtime)
                for d, t in mismatched(tag.index):
                    if t in wanted:
                        note(t, tag.index[d].mtime)
    return out


def _plan_manifests(snap: Snapshot, marks: Marks, plan: Part) -> None:
    for repo in snap.repositories.values():
        if repo.incomplete:
            continue
        for d, link in sorted(repo.revisions.items()):
            target = link.digest or d
            if (
                link.digest is None
                or marks.is_live(repo.name, target)
                or marks.is_live(repo.name, d)
            ):
                continue
            for tag_name, tag in sorted(repo.tags.items()):
                entry = tag.index.get(target)
                if entry is not None:
                    plan.actions.append(
                        Action(
                            Step.TAG_INDEX,
                            tag_index_dir(repo.name, tag_name, target),
                            repo.name,
                            target,
                            expect_mtime=entry.mtime or None,
                        )
                    )
            plan.actions.append(
                Action(
                    Step.REVISION,
                    revision_dir(repo.name, d),
                    repo.name,
                    target,
                    expect_mtime=link.mtime or None,
                )
            )
            plan.manifests.append((repo.name, target))


def _plan_blobs(
    snap: Snapshot,
    marks: Marks,
    unmarked: set[str],
    newest: dict[str, float],
    cutoff: float,
    plan: Part,
) -> set[str]:
    doomed: set[str] = set()
    for d in sorted(unmarked):
        blob = snap.blobs[d]
        path = blob_dir(d)
        why = marks.undecided_reason(d)
        if why is not None:
            plan.kept.append(
                Kept(Step.BLOB, path, f"cannot be decided: {why}", d, size=blob.known_size)
            )
            continue
        if blob.mtime > cutoff or newest.get(d, 0.0) > cutoff:
            plan.kept.append(
                Kept(Step.BLOB, path, "younger than --min-age", d, size=blob.known_size)
            )
            continue
        doomed.add(d)
        plan.actions.append(
            Action(Step.BLOB, path, None, d, blob.known_size, blob.known_size, blob.mtime)
        )
    return doomed


def _referenced_in(snap: Snapshot, marks: Marks, repo: Repository) -> set[str]:
    """Every live manifest of the repository with its config and layers."""
    out: set[str] = set()
    for d in marks.live.get(repo.name, {}):
        manifest_closure(snap, d, into=out)
    return out


def _plan_layer_links(
    snap: Snapshot,
    marks: Marks,
    used_by: dict[str, set[str]],
    doomed: set[str],
    cutoff: float,
    plan: Part,
) -> None:
    for name, used in used_by.items():
        repo = snap.repositories[name]
        for d, link in sorted(repo.layers.items()):
            target = link.digest or d
            path = layer_dir(repo.name, d)
            if d in doomed or target in doomed:
                plan.actions.append(
                    Action(
                        Step.LAYER_LINK, path, repo.name, target, expect_mtime=link.mtime or None
                    )
                )
                continue
            if d in used or target in used or d in marks.protected:
                continue
            if link.mtime > cutoff:
                plan.kept.append(
                    Kept(Step.LAYER_LINK, path, "younger than --min-age", target, repo.name)
                )
                continue
            plan.actions.append(
                Action(Step.LAYER_LINK, path, repo.name, target, expect_mtime=link.mtime or None)
            )


def _plan_uploads(
    snap: Snapshot, options: GcOptions, cutoff: float, now: float, plan: Part
) -> None:
    """Stale uploads (:func:`regfs.reports.orphans.upload_is_stale`) go, except one written
    to within the grace period (a registry may still be writing to an upload it started
    long ago)."""
    for repo in snap.repositories.values():
        for up in sorted(repo.uploads.values(), key=lambda u: u.uuid):
            if not upload_is_stale(up, options.uploads_older_than, now):
                continue
            path = upload_dir(repo.name, up.uuid)
            if up.mtime > cutoff:
                plan.kept.append(
                    Kept(Step.UPLOAD, path, "written to within --min-age", None, repo.name, up.size)
                )
                continue
            plan.actions.append(
                Action(Step.UPLOAD, path, repo.name, None, up.size, expect_mtime=up.mtime)
            )
