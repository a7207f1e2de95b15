"""``regfs rm``: delete tags, manifests and whole repositories offline.

``REPO:TAG`` removes one tag folder; ``REPO@DIGEST`` removes a manifest as the registry's API
DELETE does (its revision, every tag pointing at it, its tag history entries); ``REPO`` removes
the whole repository (``_manifests``, ``_layers``, ``_uploads``, and the folder when nothing
else lives in it; child repositories stay). Targets are parsed and selected in
:mod:`regfs.gc.targets`. Blobs are left to gc: ``rm --gc`` composes a gc part into the same
plan (:mod:`regfs.gc.compose`).

Safety, decided before anything is deleted:

* removing a manifest takes its referrers (signatures, SBOMs, attestations: manifests of the
  repository whose ``subject`` is it, transitively) with it, since nothing could reach them any
  more; a referrer that something else keeps live (its own tag) stays;
* a removal that would change what a surviving tag pulls (a child of a tagged index,
  recursively) is a :class:`Breakage`; the caller refuses it unless forced.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from regfs.defaults import MIN_AGE
from regfs.duration import cutoff as age_cutoff
from regfs.duration import format_duration
from regfs.gc.compose import compose
from regfs.gc.plan import GcOptions, GcPlan, Part, PartKind, Planned, new_run_id, young_uploads
from regfs.gc.steps import Action, Step
from regfs.gc.targets import Selection
from regfs.graph.mark import Mode, mark, referrers_index
from regfs.graph.servable import AbsentChild, tag_report
from regfs.layout import (
    layer_dir,
    revision_dir,
    tag_dir,
    tag_index_dir,
    upload_dir,
)
from regfs.reports.orphans import manifest_closure
from regfs.scan import Repository, Snapshot


@dataclass(frozen=True, slots=True)
class Referrer:
    """A manifest removed with its subject: nothing could reach it any more."""

    repository: str
    digest: str
    subject: str
    artifact_type: str | None


@dataclass(frozen=True, slots=True)
class Breakage:
    """What a removal does to a tag that stays: index children it makes absent."""

    repository: str
    # None: the repository's tags cannot all be read, so which one breaks is unknown.
    tag: str | None
    absent: tuple[AbsentChild, ...]
    # False when nothing of the tag pulls any more (no platform left, or other damage).
    still_pulls: bool
    # What stops its pull that did not before (e.g. in a repository not fully readable,
    # where a child that is not found cannot be called absent).
    issues: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for reports and refusals: what the tag loses, or that it no longer pulls."""
        if self.tag is None:
            return f"{self.repository}: {'; '.join(self.issues)}"
        name = f"{self.repository}:{self.tag}"
        lost = ", ".join(
            f"{a.platform or 'no platform'} ({a.digest}, a child of index {a.index})"
            for a in self.absent
        )
        if not lost:
            return f"{name} no longer pulls: {'; '.join(self.issues)}"
        if self.still_pulls:
            return f"{name} loses {lost}; its other platforms pull"
        return f"{name} no longer pulls: it loses {lost}"


@dataclass(slots=True)
class RmPlan(GcPlan):
    """A removal plan, with what it takes along and what it breaks."""

    referrers: list[Referrer] = field(default_factory=list)
    breaks: list[Breakage] = field(default_factory=list)


@dataclass(slots=True)
class RmPart(Part):
    """The removal part of a plan, with what it takes along and what it breaks."""

    referrers: list[Referrer] = field(default_factory=list)
    breaks: list[Breakage] = field(default_factory=list)


def rm_part(snap: Snapshot, sel: Selection, *, min_age: float = MIN_AGE, now: float) -> RmPart:
    """The removal of ``sel`` (pure), the referrers it takes along, and the tags it would
    break (``breaks``: the caller refuses them unless forced). Its scope is the repositories
    it touches: their leftovers only, never tidying elsewhere."""
    part = RmPart(PartKind.RM)
    whole = set(sel.repositories)
    tags_done: set[tuple[str, str]] = set()
    for name in sel.repositories:
        _remove_repository(snap.repositories[name], part)
        tags_done.update((name, t) for t in snap.repositories[name].tags)
    for name, tag in sel.tags:
        if name not in whole and (name, tag) not in tags_done:
            tags_done.add((name, tag))
            _remove_tag(snap.repositories[name], tag, part)
    manifests = [(n, d) for n, d in sel.manifests if n not in whole]
    for name, digest in manifests:
        _remove_manifest(snap.repositories[name], digest, part, tags_done)
    for ref in _orphaned_referrers(snap, part, manifests):
        part.referrers.append(ref)
        _remove_manifest(snap.repositories[ref.repository], ref.digest, part, tags_done)
    part.breaks = breakage(snap, part, whole)
    part.young_uploads = young_uploads(snap, age_cutoff(now, min_age))
    part.scope = frozenset(a.repository for a in part.actions if a.repository)
    return part


def rm_plan(
    snap: Snapshot, part: RmPart, *, run_id: str, options: GcOptions, created: float
) -> RmPlan:
    """The plan of a removal alone (composed: folders, symbolic links kept off, sorted)."""
    plan = RmPlan(run_id, str(snap.v2), options, created, [], [], [])
    plan.referrers, plan.breaks = part.referrers, part.breaks
    return compose(snap, plan, [part])


def build_rm_plan(
    snap: Snapshot,
    sel: Selection,
    *,
    trash: bool = False,
    min_age: float = MIN_AGE,
    now: float | None = None,
) -> RmPlan:
    """The removal of ``sel`` as a plan of its own (:func:`rm_part`, composed)."""
    now = time.time() if now is None else now
    part = rm_part(snap, sel, min_age=min_age, now=now)
    options = GcOptions(trash=trash, min_age=min_age)
    return rm_plan(snap, part, run_id=new_run_id(now), options=options, created=now)


def _remove_manifest(
    repo: Repository, digest: str, plan: Planned, tags_done: set[tuple[str, str]]
) -> None:
    """What the registry's DELETE of ``repo@digest`` removes: every tag pointing at it, its
    tag history entries, its revision."""
    name = repo.name
    for tag_name, tag_obj in sorted(repo.tags.items()):
        pointing = tag_obj.current is not None and tag_obj.current.digest == digest
        if pointing and (name, tag_name) not in tags_done:
            tags_done.add((name, tag_name))
            _remove_tag(repo, tag_name, plan)
        elif not pointing and digest in tag_obj.index and (name, tag_name) not in tags_done:
            plan.actions.append(
                Action(
                    Step.TAG_INDEX,
                    tag_index_dir(name, tag_name, digest),
                    name,
                    digest,
                    expect_mtime=tag_obj.index[digest].mtime or None,
                )
            )
    for d, link in sorted(repo.revisions.items()):
        if d == digest or link.digest == digest:
            plan.actions.append(
                Action(
                    Step.REVISION,
                    revision_dir(name, d),
                    name,
                    digest,
                    expect_mtime=link.mtime or None,
                )
            )
            plan.manifests.append((name, digest))


def _touched(snap: Snapshot, plan: Planned) -> Snapshot:
    """The snapshot after ``plan``, restricted to the repositories it touches."""
    after = without(snap, plan)
    names = {a.repository for a in plan.actions if a.repository}
    return dataclasses.replace(
        after, repositories={n: r for n, r in after.repositories.items() if n in names}
    )


def _orphaned_referrers(
    snap: Snapshot, plan: Planned, removed: list[tuple[str, str]]
) -> list[Referrer]:
    """Referrers of the removed manifests (transitively, same repository) that nothing keeps
    live once they are gone: their subject cannot be pulled, so nothing reaches them."""
    if not removed:
        return []
    live = mark(_touched(snap, plan), Mode.UNTAGGED).live
    out: list[Referrer] = []
    by_repo: dict[str, list[str]] = {}
    for name, digest in removed:
        by_repo.setdefault(name, []).append(digest)
    for name, digests in sorted(by_repo.items()):
        repo = snap.repositories[name]
        index = referrers_index(snap, repo)
        queue, seen = list(digests), set(digests)
        while queue:
            subject = queue.pop(0)
            for r in index.get(subject, ()):
                if r in seen or r in live.get(name, {}):
                    continue
                seen.add(r)
                m = snap.manifests.get(r)
                out.append(Referrer(name, r, subject, m.artifact_type if m else None))
                queue.append(r)
    return out


def breakage(snap: Snapshot, plan: Planned, whole: Iterable[str] = ()) -> list[Breakage]:
    """Tags that survive ``plan`` but pull less after it: index children it removes.
    ``whole``: repositories removed entirely (no tag of theirs stays)."""
    whole = set(whole)
    after = _touched(snap, plan)
    out = []
    for name, repo in sorted(after.repositories.items()):
        before_repo = snap.repositories[name]
        removed = sorted(
            {a.digest for a in plan.by_step(Step.REVISION) if a.repository == name and a.digest}
        )
        if before_repo.incomplete and removed and name not in whole:
            # Fail closed: an unreadable part may hold the tag or index that needs them.
            out.append(
                Breakage(
                    name,
                    None,
                    (),
                    False,
                    (
                        "part of the repository cannot be read, so whether a tag that stays "
                        f"needs {', '.join(removed)} is unknown",
                    ),
                )
            )
        for tag in sorted(repo.tags):
            before = tag_report(snap, before_repo, tag)
            now = tag_report(after, repo, tag)
            had = {(a.index, a.digest) for a in before.absent}
            lost = tuple(a for a in now.absent if (a.index, a.digest) not in had)
            issues = tuple(i for i in now.issues if i not in before.issues)
            if lost or issues:
                out.append(Breakage(name, tag, lost, not now.broken, issues))
    return out


def _remove_tag(repo: Repository, tag: str, plan: Planned) -> None:
    cur = repo.tags[tag].current
    plan.actions.append(
        Action(
            Step.TAG,
            tag_dir(repo.name, tag),
            repo.name,
            cur.digest if cur else None,
            expect_mtime=cur.mtime if cur else None,
        )
    )


def _remove_repository(repo: Repository, plan: Planned) -> None:
    for tag in sorted(repo.tags):
        _remove_tag(repo, tag, plan)
    for d, link in sorted(repo.revisions.items()):
        plan.actions.append(
            Action(
                Step.REVISION,
                revision_dir(repo.name, d),
                repo.name,
                link.digest or d,
                expect_mtime=link.mtime or None,
            )
        )
        plan.manifests.append((repo.name, link.digest or d))
    for d, link in sorted(repo.layers.items()):
        plan.actions.append(
            Action(
                Step.LAYER_LINK,
                layer_dir(repo.name, d),
                repo.name,
                link.digest or d,
                expect_mtime=link.mtime or None,
            )
        )
    for u in sorted(repo.uploads.values(), key=lambda u: u.uuid):
        plan.actions.append(
            Action(
                Step.UPLOAD,
                upload_dir(repo.name, u.uuid),
                repo.name,
                None,
                u.size,
                expect_mtime=u.mtime,
            )
        )


def without(snap: Snapshot, plan: Planned) -> Snapshot:
    """The snapshot as it will be after ``plan`` ran (for the dry-run gc estimate)."""
    repos = {}
    removed = {(a.step, a.path) for a in plan.actions}
    for name, repo in snap.repositories.items():
        r = copy.copy(repo)
        r.tags = {t: v for t, v in repo.tags.items() if ("tag", tag_dir(name, t)) not in removed}
        r.revisions = {
            d: v
            for d, v in repo.revisions.items()
            if ("revision", revision_dir(name, d)) not in removed
        }
        r.layers = {
            d: v
            for d, v in repo.layers.items()
            if ("layer_link", layer_dir(name, d)) not in removed
        }
        r.uploads = {
            u: v for u, v in repo.uploads.items() if ("upload", upload_dir(name, u)) not in removed
        }
        repos[name] = r
    out = copy.copy(snap)
    out.repositories = repos
    return out


def gc_notes(snap: Snapshot, plan: Planned, gc_plan: Planned, options: GcOptions) -> list[str]:
    """Why the gc that follows a removal would refuse, or frees nothing the removal let go."""
    if gc_plan.blocking and not options.force:
        first = gc_plan.blocking[0]
        n = len(gc_plan.blocking)
        more = f", and {n - 1} more" if n > 1 else ""
        return [
            f"`regfs gc` would refuse: the scan met {n} problem{'s' if n != 1 else ''} that "
            f"leave the reference graph incomplete ({first.kind}: {first.path}{more}); fix "
            "them, or use --force to keep everything they might reference"
        ]
    released: set[str] = set()
    for _repo, d in plan.manifests:
        manifest_closure(snap, d, into=released)
    if released & {a.digest for a in gc_plan.by_step(Step.BLOB)}:
        return []
    notes = []
    kept: dict[str, int] = {}
    for k in gc_plan.kept:
        if k.kind == "blob" and k.digest in released:
            kept[k.reason] = kept.get(k.reason, 0) + 1
    for reason, n in sorted(kept.items()):
        blobs = f"{n} blob{'s' if n != 1 else ''} the removal frees"
        if "--min-age" in reason:
            notes.append(
                f"{blobs} kept: {reason} ({format_duration(options.min_age)}); gc reclaims "
                "them once they are older (or with --min-age 0)"
            )
        else:
            notes.append(f"{blobs} kept: {reason}")
    if not kept:
        if plan.manifests:
            notes.append(
                "the removal frees no blob: other manifests still use every blob of the "
                "removed ones"
            )
        elif plan.by_step(Step.TAG):
            notes.append(
                "the removal frees no blob: removing a tag leaves its manifest in the "
                "repository; `regfs gc --delete-untagged` reclaims it once no tag points at it"
            )
    return notes
