"""The removal a retention selection asks for, as one composed plan (pure but for the lazy
refresh).

Two parts (:mod:`regfs.gc.compose`), so that one run id, lock, journal and ``regfs restore``
cover them and the executor's rule "a removal step not done stops the gc steps planned on it"
holds: the removal (:data:`PartKind.RETAIN`: the removed tags' folders), and what it frees
(:data:`PartKind.GC`: planned on the tree as the removal leaves it; a tag pushed again between
plan and run keeps its manifest and everything below it). In plan order:

* every removed tag's folder (``tag``);
* every manifest this run leaves with no tag: the tags' targets no surviving tag still points
  at, with the index children and referrers only they reached (``tag_index`` entries of
  surviving tags' history, ``revision``). Liveness is ``gc --delete-untagged``'s
  (:func:`regfs.graph.mark.mark` in untagged mode) before and after the tags go, with every
  manifest that was already untagged before the run, or younger than ``--min-age``, kept as a
  root: those are not this run's business;
* then exactly the blobs nothing live needs any more: of the blobs those manifests used, the
  ones no remaining manifest of any repository references (gc's default-mode marking, every
  revision a root), with gc's grace period and fail-closed rules (``blob``), the repositories'
  links to them and, in the repositories that lost manifests, the links only those used
  (``layer_link``);
* the folders this leaves empty (``folder``).

Blobs that were already orphaned, uploads, and anything in repositories no removed tag belongs
to are left alone: that is ``regfs gc``'s job.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from regfs.defaults import MIN_AGE
from regfs.duration import cutoff as age_cutoff
from regfs.gc.compose import compose
from regfs.gc.plan import GcOptions, GcPlan, Part, PartKind, new_run_id, young_uploads
from regfs.gc.steps import Action, Kept, Step
from regfs.graph.mark import Mode, mark
from regfs.graph.unread import Unknowns, unknowns
from regfs.layout import revision_dir, tag_dir, tag_index_dir
from regfs.model.snapshot import Link, Repository, Snapshot
from regfs.reports.orphans import manifest_closure
from regfs.retain.freed import FreedManifest, FreedPart, plan_blobs, without_removed
from regfs.retain.select import Selection
from regfs.scan import Refresher


@dataclass(slots=True)
class RetainPlan(GcPlan):
    """A retention run: the selection and the one plan that carries it out."""

    selection: Selection | None = None
    freed_manifests: list[FreedManifest] = field(default_factory=list)
    # repository -> bytes of the blobs removed that only its removed manifests used
    freed_bytes: dict[str, int] = field(default_factory=dict)


def _role(why: str) -> tuple[str, str]:
    """The mark's reason ("tag v1", "child of sha256:…", "referrer of sha256:…") as a role."""
    for prefix, role in (("tag ", "tagged"), ("child of ", "child"), ("referrer of ", "referrer")):
        if why.startswith(prefix):
            return role, why.removeprefix(prefix)
    return "tagged", why


def _history(repo: Repository, gone: set[str]) -> dict[str, list[tuple[str, Link]]]:
    """digest -> (tag, history entry) of the surviving tags whose history names it, by tag."""
    out: dict[str, list[tuple[str, Link]]] = {}
    for tag_name, tag in sorted(repo.tags.items()):
        if tag_name in gone:
            continue
        for d, entry in tag.index.items():
            out.setdefault(d, []).append((tag_name, entry))
    return out


def _plan_manifests(
    snap: Snapshot,
    plan: FreedPart,
    gone_tags: dict[str, set[str]],
    cutoff: float,
    unknown: Unknowns,
) -> dict[str, set[str]]:
    """Revisions (and their tag history entries) no surviving tag reaches any more.

    Returns repository -> the revision folders' digests it removes.
    """
    touched = sorted(gone_tags)
    sub = dataclasses.replace(snap, repositories={n: snap.repositories[n] for n in touched})
    before = mark(sub, Mode.UNTAGGED, unknown=unknown)
    keep: dict[str, set[str]] = {}
    # Kept only because a symbolic link serves the revision: (repository, folder digest,
    # link); and the roots without them, to tell which of those the run would otherwise free.
    linked: list[tuple[str, str, str]] = []
    unlinked: dict[str, set[str]] = {}
    symlinks = bool(unknown.symlinks)
    for name in touched:
        live = before.live.get(name, {})
        roots: set[str] = set()
        for d, link in snap.repositories[name].revisions.items():
            target = link.digest or d
            if target not in live or link.mtime > cutoff:
                roots.add(target)
                unlinked.setdefault(name, set()).add(target)
            elif symlinks and (at := unknown.untouchable(revision_dir(name, d))) is not None:
                roots.add(target)
                linked.append((name, d, at))
        if roots:
            keep[name] = roots
    remaining = without_removed(sub, gone_tags, {})
    after = mark(remaining, Mode.UNTAGGED, keep, unknown=unknown)
    if linked:
        # Said in the preview: the manifests that stay only because of the link.
        plain = mark(remaining, Mode.UNTAGGED, unlinked, unknown=unknown)
        for name, d, at in linked:
            target = snap.repositories[name].revisions[d].digest or d
            if target not in plain.live.get(name, {}):
                plan.kept.append(
                    Kept(
                        Step.REVISION,
                        revision_dir(name, d),
                        f"its revision is at, below or containing the symbolic link {at}",
                        target,
                        name,
                    )
                )
    gone_revisions: dict[str, set[str]] = {}
    planned: set[tuple[str, str]] = set(plan.manifests)
    for name in touched:
        repo = snap.repositories[name]
        if repo.incomplete:
            continue  # the selection refuses such a repository; never guess
        live = before.live.get(name, {})
        live_after = after.live.get(name, {})
        history: dict[str, list[tuple[str, Link]]] | None = None
        for d, link in sorted(repo.revisions.items()):
            if link.digest is None:
                continue  # unreadable: kept (the mark roots it)
            target = link.digest
            if target not in live or target in live_after:
                continue
            if history is None:
                history = _history(repo, gone_tags[name])
            for tag_name, entry in history.get(target, ()):
                plan.actions.append(
                    Action(
                        Step.TAG_INDEX,
                        tag_index_dir(name, tag_name, target),
                        name,
                        target,
                        expect_mtime=entry.mtime or None,
                    )
                )
            plan.actions.append(
                Action(
                    Step.REVISION,
                    revision_dir(name, d),
                    name,
                    target,
                    expect_mtime=link.mtime or None,
                )
            )
            gone_revisions.setdefault(name, set()).add(d)
            if (name, target) not in planned:
                planned.add((name, target))
                plan.manifests.append((name, target))
                role, via = _role(live[target])
                plan.freed_manifests.append(FreedManifest(name, target, role, via))
    return gone_revisions


def retain_parts(
    snap: Snapshot,
    sel: Selection,
    *,
    min_age: float = MIN_AGE,
    now: float,
    refresh: Refresher | None = None,
) -> tuple[Part, FreedPart]:
    """The removal of the tags ``sel`` removes and what it frees, as two parts (see the
    module docstring); both tidy the folders of the repositories that lose a tag only."""
    cutoff = age_cutoff(now, min_age)
    removal = Part(PartKind.RETAIN)
    freed = FreedPart(PartKind.GC)
    unknown = unknowns(snap)
    gone_tags: dict[str, set[str]] = {}
    for name, tag in sel.removed_tags():
        cur = snap.repositories[name].tags[tag].current
        removal.actions.append(
            Action(
                Step.TAG,
                tag_dir(name, tag),
                name,
                cur.digest if cur else None,
                expect_mtime=cur.mtime if cur else None,
            )
        )
        gone_tags.setdefault(name, set()).add(tag)
    removal.scope = freed.scope = frozenset(gone_tags)
    gone_revisions = _plan_manifests(snap, freed, gone_tags, cutoff, unknown) if gone_tags else {}
    released: dict[str, set[str]] = {}
    for name, digest in freed.manifests:
        manifest_closure(snap, digest, into=released.setdefault(name, set()))
    if released:
        plan_blobs(snap, freed, (gone_tags, gone_revisions), released, refresh, cutoff)
    removal.young_uploads = young_uploads(snap, cutoff)
    freed.blocking = snap.blocking  # with what the refresh met
    return removal, freed


def build_retain_plan(
    snap: Snapshot,
    sel: Selection,
    *,
    trash: bool = False,
    min_age: float = MIN_AGE,
    now: float | None = None,
    refresh: Refresher | None = None,
) -> RetainPlan:
    """The one plan that removes what ``sel`` selects: :func:`retain_parts`, composed.

    ``snap`` must come from a scan that read the tag links; with a lazy scan, ``refresh``
    stats the blobs and layer links the decision needs.
    """
    now = time.time() if now is None else now
    removal, freed = retain_parts(snap, sel, min_age=min_age, now=now, refresh=refresh)
    plan = RetainPlan(
        run_id=new_run_id(now),
        v2=str(snap.v2),
        options=GcOptions(trash=trash, min_age=min_age),
        created=now,
        actions=[],
        kept=[],
        blocking=[],
        selection=sel,
        freed_manifests=freed.freed_manifests,
        freed_bytes=freed.freed_bytes,
    )
    return compose(snap, plan, [removal, freed])
