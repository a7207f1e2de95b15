"""The removal a retention selection asks for, as one gc plan (pure but for the lazy refresh).

What goes, in the order of :data:`regfs.gc.plan.STEP_ORDER`:

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

import copy
import dataclasses
import time
from dataclasses import dataclass, field

from regfs.defaults import MIN_AGE
from regfs.duration import cutoff as age_cutoff
from regfs.gc.folders import plan_folders
from regfs.gc.plan import (
    GcOptions,
    GcPlan,
    keep_off_symlinks,
    new_run_id,
    sort_actions,
    young_uploads,
)
from regfs.gc.steps import Action, Kept, Step
from regfs.graph.mark import Marks, Mode, mark
from regfs.graph.unread import Unknowns, unknowns
from regfs.layout import blob_dir, layer_dir, revision_dir, tag_dir, tag_index_dir
from regfs.model.snapshot import Link, Repository, Snapshot
from regfs.reports.orphans import manifest_closure
from regfs.retain.select import Selection
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
class RetainPlan(GcPlan):
    """A retention run: the selection and the one plan that carries it out."""

    selection: Selection | None = None
    freed_manifests: list[FreedManifest] = field(default_factory=list)
    # repository -> bytes of the blobs removed that only its removed manifests used
    freed_bytes: dict[str, int] = field(default_factory=dict)


def _after(
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
    plan: RetainPlan,
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
    symlinks = bool(unknown.symlinks)
    for name in touched:
        live = before.live.get(name, {})
        roots: set[str] = set()
        for d, link in snap.repositories[name].revisions.items():
            target = link.digest or d
            if (
                target not in live
                or link.mtime > cutoff
                or (symlinks and unknown.untouchable(revision_dir(name, d)))
            ):
                roots.add(target)
        if roots:
            keep[name] = roots
    after = mark(_after(sub, gone_tags, {}), Mode.UNTAGGED, keep, unknown=unknown)
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


def _mismatched(links: dict[str, Link]) -> list[tuple[str, str]]:
    """(folder digest, content digest) of the links whose content names another digest."""
    return [(d, t) for d, link in links.items() if (t := link.digest) is not None and t != d]


def _newest_links(snap: Snapshot, wanted: set[str]) -> dict[str, float]:
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
            for d, t in _mismatched(links):
                if t in wanted:
                    note(t, links[d].mtime)
        for tag in repo.tags.values():
            cur = tag.current
            if cur is not None and cur.digest in wanted:
                note(cur.digest, cur.mtime)
            if tag.index:
                for d in tag.index.keys() & wanted:
                    note(d, tag.index[d].mtime)
                for d, t in _mismatched(tag.index):
                    if t in wanted:
                        note(t, tag.index[d].mtime)
    return out


def _plan_blobs(
    snap: Snapshot,
    plan: RetainPlan,
    gone: tuple[dict[str, set[str]], dict[str, set[str]]],
    released: dict[str, set[str]],
    refresh: Refresher | None,
    cutoff: float,
) -> set[str]:
    """The blobs the removed manifests used that nothing left needs; returns them.

    ``gone`` is (repository -> removed tags, repository -> removed revision folders);
    ``released`` is repository -> every blob its removed manifests used.
    """
    marks: Marks = mark(_after(snap, *gone), Mode.DEFAULT)
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
            ours = only_ours(name)
            hit = layers.keys() & candidates
            if ours:
                hit |= layers.keys() & ours
            for d, target in _mismatched(layers):
                if d in candidates or target in candidates or target in ours:
                    hit.add(d)
                else:
                    hit.discard(d)
            pairs.extend((name, d) for d in hit)
        refresh.layer_links(sorted(pairs))
        late = unknowns(snap)
        if late.everything and not marks.keep_all:
            marks.unknown.everything.extend(late.everything)
    newest = _newest_links(snap, candidates) if cutoff != float("inf") else {}
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
        hit = layers.keys() & doomed
        if mine:
            hit |= layers.keys() & mine
        for d, target in _mismatched(layers):
            if d in doomed or target in doomed or target in mine:
                hit.add(d)
            else:
                hit.discard(d)
        for d in sorted(hit):
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


def build_retain_plan(
    snap: Snapshot,
    sel: Selection,
    *,
    trash: bool = False,
    min_age: float = MIN_AGE,
    now: float | None = None,
    refresh: Refresher | None = None,
) -> RetainPlan:
    """The one plan that removes what ``sel`` selects (see the module docstring).

    ``snap`` must come from a scan that read the tag links; with a lazy scan, ``refresh``
    stats the blobs and layer links the decision needs.
    """
    now = time.time() if now is None else now
    cutoff = age_cutoff(now, min_age)
    plan = RetainPlan(
        run_id=new_run_id(now),
        v2=str(snap.v2),
        options=GcOptions(trash=trash, min_age=min_age),
        created=now,
        actions=[],
        kept=[],
        blocking=snap.blocking,
        selection=sel,
    )
    unknown = unknowns(snap)
    gone_tags: dict[str, set[str]] = {}
    for name, tag in sel.removed_tags():
        cur = snap.repositories[name].tags[tag].current
        plan.actions.append(
            Action(
                Step.TAG,
                tag_dir(name, tag),
                name,
                cur.digest if cur else None,
                expect_mtime=cur.mtime if cur else None,
            )
        )
        gone_tags.setdefault(name, set()).add(tag)
    touched = set(gone_tags)
    gone_revisions = _plan_manifests(snap, plan, gone_tags, cutoff, unknown) if touched else {}
    released: dict[str, set[str]] = {}
    for name, digest in plan.manifests:
        manifest_closure(snap, digest, into=released.setdefault(name, set()))
    if released:
        _plan_blobs(snap, plan, (gone_tags, gone_revisions), released, refresh, cutoff)
    plan.young_uploads = young_uploads(snap, cutoff)
    plan_folders(snap, plan, scope=touched)
    keep_off_symlinks(plan, unknowns(snap))
    plan.blocking = snap.blocking  # with what the refresh met
    sort_actions(plan)
    return plan
