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
from regfs.gc.plan import (
    GcOptions,
    GcPlan,
    keep_off_symlinks,
    new_run_id,
    plan_folders,
    sort_actions,
    young_uploads,
)
from regfs.gc.steps import Action, Kept, Step
from regfs.graph.mark import Marks, Mode, mark
from regfs.graph.unread import Unknowns, unknowns
from regfs.layout import blob_dir, layer_dir, revision_dir, tag_dir, tag_index_dir
from regfs.model.snapshot import Snapshot, iter_links
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


def _after(snap: Snapshot, plan: GcPlan) -> Snapshot:
    """The snapshot as ``plan``'s tag and revision steps leave it (for marking only).

    Repositories the plan does not touch are shared, not copied; layer links are left as
    they are (marking never reads them). Cheaper than :func:`regfs.gc.rm.without`, which
    rebuilds every path of every repository.
    """
    tags: dict[str, set[str]] = {}
    revisions: dict[str, set[str]] = {}
    for a in plan.actions:
        if a.repository is None:
            continue
        if a.step == "tag":
            tags.setdefault(a.repository, set()).add(a.path.rsplit("/", 1)[1])
        elif a.step == "revision":
            alg, hexpart = a.path.rsplit("/", 2)[1:]
            revisions.setdefault(a.repository, set()).add(f"{alg}:{hexpart}")
    repos = dict(snap.repositories)
    for name in tags.keys() | revisions.keys():
        r = copy.copy(repos[name])
        gone_tags, gone_revs = tags.get(name, set()), revisions.get(name, set())
        r.tags = {t: v for t, v in r.tags.items() if t not in gone_tags}
        r.revisions = {d: v for d, v in r.revisions.items() if d not in gone_revs}
        repos[name] = r
    return dataclasses.replace(snap, repositories=repos)


def _role(why: str) -> tuple[str, str]:
    """The mark's reason ("tag v1", "child of sha256:…", "referrer of sha256:…") as a role."""
    for prefix, role in (("tag ", "tagged"), ("child of ", "child"), ("referrer of ", "referrer")):
        if why.startswith(prefix):
            return role, why.removeprefix(prefix)
    return "tagged", why


def _plan_manifests(
    snap: Snapshot, plan: RetainPlan, touched: set[str], cutoff: float, unknown: Unknowns
) -> None:
    """Revisions (and their tag history entries) no surviving tag reaches any more."""
    sub = dataclasses.replace(snap, repositories={n: snap.repositories[n] for n in sorted(touched)})
    before = mark(sub, Mode.UNTAGGED, unknown=unknown)
    keep: dict[str, set[str]] = {}
    for name in touched:
        repo = snap.repositories[name]
        live = before.live.get(name, {})
        for d, link in repo.revisions.items():
            target = link.digest or d
            if (
                target not in live
                or link.mtime > cutoff
                or (unknown.symlinks and unknown.untouchable(revision_dir(name, d)))
            ):
                keep.setdefault(name, set()).add(target)
    after = mark(_after(sub, plan), Mode.UNTAGGED, keep, unknown=unknown)
    removed_tags: dict[str, set[str]] = {}
    for a in plan.by_step(Step.TAG):
        removed_tags.setdefault(a.repository or "", set()).add(a.path.rsplit("/", 1)[1])
    planned: set[tuple[str, str]] = set(plan.manifests)
    for name in sorted(touched):
        repo = snap.repositories[name]
        if repo.incomplete:
            continue  # the selection refuses such a repository; never guess
        live = before.live.get(name, {})
        gone_tags = removed_tags.get(name, set())
        for d, link in sorted(repo.revisions.items()):
            if link.digest is None:
                continue  # unreadable: kept (the mark roots it)
            target = link.digest
            if target not in live or after.is_live(name, target):
                continue
            for tag_name, tag in sorted(repo.tags.items()):
                entry = tag.index.get(target)
                if entry is not None and tag_name not in gone_tags:
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
            if (name, target) not in planned:
                planned.add((name, target))
                plan.manifests.append((name, target))
                role, via = _role(live[target])
                plan.freed_manifests.append(FreedManifest(name, target, role, via))


def _newest_links(snap: Snapshot, wanted: set[str]) -> dict[str, float]:
    """digest -> newest mtime of any link naming it, for the digests in ``wanted``."""
    out: dict[str, float] = {}
    for repo in snap.repositories.values():
        for role, key, link in iter_links(repo):
            for d in {key if role != "tag" else None, link.digest}:
                if d is not None and d in wanted and link.mtime > out.get(d, 0.0):
                    out[d] = link.mtime
    return out


def _plan_blobs(
    snap: Snapshot,
    plan: RetainPlan,
    released: dict[str, set[str]],
    refresh: Refresher | None,
    cutoff: float,
) -> set[str]:
    """The blobs the removed manifests used that nothing left needs; returns them."""
    marks: Marks = mark(_after(snap, plan), Mode.DEFAULT)
    candidates = {d for d in released if d in snap.blobs and d not in marks.marked}
    touched = {a.repository for a in plan.actions if a.repository}
    used_in: dict[str, set[str]] = {}

    def used(name: str) -> set[str]:
        """Every blob the repository's remaining manifests use."""
        if name not in used_in:
            out: set[str] = set()
            for m in marks.live.get(name, {}):
                manifest_closure(snap, m, into=out)
            used_in[name] = out
        return used_in[name]

    if refresh is not None:
        refresh.blobs(sorted(candidates))
        # The links whose age decides: to a candidate blob (anywhere), and, in the
        # repositories that lost manifests, to a released blob no remaining manifest uses.
        pairs = []
        for name, repo in snap.repositories.items():
            mine = name in touched
            for d, link in repo.layers.items():
                target = link.digest or d
                doomed_maybe = d in candidates or target in candidates
                only_ours = mine and name in released.get(target, ()) and target not in used(name)
                if doomed_maybe or only_ours:
                    pairs.append((name, d))
        refresh.layer_links(sorted(pairs))
        late = unknowns(snap)
        if late.everything and not marks.keep_all:
            marks.unknown.everything.extend(late.everything)
    newest = _newest_links(snap, candidates) if cutoff != float("inf") else {}
    doomed: set[str] = set()
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
        owners = released[d]
        if len(owners) == 1:
            (owner,) = owners
            plan.freed_bytes[owner] = plan.freed_bytes.get(owner, 0) + blob.known_size
    # Links: to a removed blob, anywhere; and, where manifests went, links only they used.
    for name in sorted(snap.repositories):
        repo = snap.repositories[name]
        if repo.incomplete:
            continue
        mine = name in touched
        for d, link in sorted(repo.layers.items()):
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
            if not mine or name not in released.get(target, ()):
                continue
            here = used(name)
            if target in here or d in here or d in marks.protected or target in marks.protected:
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
    touched = {name for name, _ in sel.removed_tags()}
    if touched:
        _plan_manifests(snap, plan, touched, cutoff, unknown)
    released: dict[str, set[str]] = {}
    for name, digest in plan.manifests:
        for d in manifest_closure(snap, digest):
            released.setdefault(d, set()).add(name)
    if released:
        _plan_blobs(snap, plan, released, refresh, cutoff)
    plan.young_uploads = young_uploads(snap, cutoff)
    plan_folders(snap, plan, scope=touched)
    keep_off_symlinks(plan, unknowns(snap))
    plan.blocking = snap.blocking  # with what the refresh met
    sort_actions(plan)
    return plan
