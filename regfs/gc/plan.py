"""Pure planning: (snapshot, options, now) -> :class:`GcPlan`. Nothing here touches the disk.

The plan is an ordered list of actions, references before data, so that a crash at any
point leaves only harmless orphans and never a link to missing data:

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
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter

from regfs.defaults import MIN_AGE, UPLOADS_OLDER_THAN
from regfs.duration import cutoff as age_cutoff
from regfs.gc.steps import Action, Kept, Step, step_rank
from regfs.graph.mark import Marks, Mode, mark
from regfs.graph.unread import Unknowns, unknowns
from regfs.layout import (
    BLOBS,
    REPOSITORIES,
    blob_alg_dir,
    blob_dir,
    digest_dir,
    join,
    layer_dir,
    layers_dir,
    link_file,
    repo_dir,
    revision_dir,
    revisions_dir,
    tag_current_link,
    tag_dir,
    tag_history_dir,
    tag_index_dir,
    tags_dir,
    upload_dir,
    uploads_dir,
)
from regfs.model.digest import ALGORITHMS
from regfs.model.findings import Finding
from regfs.reports.orphans import manifest_closure, upload_is_stale
from regfs.scan import Refresher, Repository, Snapshot, iter_links


@dataclass(frozen=True, slots=True)
class GcOptions:
    delete_untagged: bool = False
    min_age: float = MIN_AGE
    uploads_older_than: float = UPLOADS_OLDER_THAN
    force: bool = False
    trash: bool = False


@dataclass(slots=True)
class GcPlan:
    run_id: str
    v2: str
    options: GcOptions
    created: float
    actions: list[Action]
    kept: list[Kept]
    blocking: list[Finding]
    # Untagged manifests removed (repository, digest), for reporting.
    manifests: list[tuple[str, str]] = field(default_factory=list)
    # Young unfinished uploads: evidence of a live registry.
    young_uploads: list[str] = field(default_factory=list)

    def by_step(self, step: Step) -> list[Action]:
        return [a for a in self.actions if a.step == step]

    @property
    def reclaimed_bytes(self) -> int:
        return sum(a.size for a in self.actions)


def new_run_id(now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def _newest_links(snap: Snapshot, wanted: set[str]) -> dict[str, float]:
    """digest -> newest mtime of any link naming it (by folder name or by content), for the
    digests in ``wanted``."""
    out: dict[str, float] = {}

    def note(d: str, mtime: float) -> None:
        if mtime > out.get(d, 0.0):
            out[d] = mtime

    for repo in snap.repositories.values():
        for role, key, link in iter_links(repo):
            if role != "tag" and key in wanted:  # a tag's key is its name, not a digest
                note(key, link.mtime)
            content = link.digest
            if content is not None and content != key and content in wanted:
                note(content, link.mtime)
    return out


def build_plan(
    snap: Snapshot,
    options: GcOptions,
    *,
    now: float | None = None,
    refresh: Refresher | None = None,
) -> GcPlan:
    """Plan a garbage collection of ``snap``.

    With a lazy snapshot, ``refresh`` stats the blobs and layer links whose size or age the
    decision needs (candidates for deletion), and nothing else.
    """
    now = time.time() if now is None else now
    cutoff = age_cutoff(now, options.min_age)
    plan = GcPlan(
        run_id=new_run_id(now),
        v2=str(snap.v2),
        options=options,
        created=now,
        actions=[],
        kept=[],
        blocking=snap.blocking,
    )
    unknown = unknowns(snap)
    default = mark(snap, Mode.DEFAULT, unknown=unknown)
    marks = default
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
        _plan_manifests(snap, marks, default, plan)
    used = {
        repo.name: _referenced_in(snap, marks, repo)
        for repo in snap.repositories.values()
        if repo.layers and not repo.incomplete
    }
    # Set operations run in C: on big stores these sets hold hundreds of thousands of digests.
    unmarked = snap.blobs.keys() - marks.marked
    if refresh is not None:
        refresh.blobs(sorted(unmarked | (snap.blobs.keys() & marks.protected)))
        refresh.layer_links(
            [
                (name, d)
                for name, names in used.items()
                for d in sorted(
                    (snap.repositories[name].layers.keys() - names)
                    | (
                        snap.repositories[name].layers.keys()
                        - marks.marked
                        - marks.protected.keys()
                    )
                )
            ]
        )
        unmarked = snap.blobs.keys() - marks.marked  # the refresh drops what vanished
        # What the refresh could not read widens what is kept like anything else.
        late = unknowns(snap)
        if late.everything and not marks.keep_all:
            marks.unknown.everything.extend(late.everything)
        for sym in late.symlinks:
            if sym not in marks.unknown.symlinks:
                marks.unknown.symlinks.append(sym)
    # With no grace period (cutoff = infinity) no link can be young: skip the link walk.
    newest = _newest_links(snap, unmarked) if cutoff != float("inf") else {}
    doomed = _plan_blobs(snap, marks, unmarked, newest, cutoff, plan)
    _plan_layer_links(snap, marks, used, doomed, cutoff, plan)
    _plan_uploads(snap, options, cutoff, now, plan)
    plan.young_uploads = young_uploads(snap, cutoff)
    plan_folders(snap, plan)
    keep_off_symlinks(plan, marks.unknown)
    plan.blocking = snap.blocking  # with what the refresh met: it stops gc like the rest
    sort_actions(plan)
    return plan


def keep_off_symlinks(plan: GcPlan, unknown: Unknowns) -> None:
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


def sort_actions(plan: GcPlan) -> None:
    """References before data, folders last (they were computed deepest first)."""
    plan.actions.sort(key=lambda a: step_rank(a.step))


def _plan_manifests(snap: Snapshot, marks: Marks, default: Marks, plan: GcPlan) -> None:
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
    plan: GcPlan,
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
    plan: GcPlan,
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


def _plan_uploads(
    snap: Snapshot, options: GcOptions, cutoff: float, now: float, plan: GcPlan
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


# --- folders left empty ----------------------------------------------------------------------


def _link_leaves(
    base: str, digests: Iterable[str], removed: set[str], candidates: set[str]
) -> set[str]:
    """Leaves for the link folders (``<base>/<alg>/<hex>``) that survive the plan.

    A surviving folder that is not itself a candidate only keeps its parent (and what lies
    above), so the parent stands in for all of them: one leaf instead of thousands."""
    out: set[str] = set()
    for d in digests:
        p = digest_dir(base, d)
        if p in removed:
            continue
        out.add(link_file(p) if p in candidates else p[: p.rfind("/")])
    return out


def _tag_leaves(repo: Repository, removed: set[str], candidates: set[str]) -> Iterable[str]:
    """Leaves for the tag folders that survive the plan: a removed tag's files go with it; a
    surviving tag folder that is not a candidate (nothing below it goes) only keeps
    ``_manifests/tags`` and above, which one leaf stands in for."""
    plain = False
    for name, tag in repo.tags.items():
        folder = tag_dir(repo.name, name)
        if folder in removed:
            continue
        if folder not in candidates:
            plain = plain or tag.current is not None or bool(tag.index)
            continue
        if tag.current is not None:
            yield tag_current_link(repo.name, name)
        history = tag_history_dir(repo.name, name)
        for d in tag.index:
            yield link_file(digest_dir(history, d))
    if plain:
        yield tags_dir(repo.name)


def _repo_leaves(
    repo: Repository, sections: set[str], removed: set[str], candidates: set[str]
) -> Iterable[str]:
    """One repository's files and uploads as leaf paths; a section (``_layers``,
    ``_manifests/revisions``, ``_manifests/tags``, ``_uploads``) holding no candidate folder
    counts as a single leaf when it has content."""
    if "_layers" in sections:
        yield from _link_leaves(layers_dir(repo.name), repo.layers, removed, candidates)
    elif repo.layers:
        yield layers_dir(repo.name)
    if "_manifests/revisions" in sections:
        yield from _link_leaves(revisions_dir(repo.name), repo.revisions, removed, candidates)
    elif repo.revisions:
        yield revisions_dir(repo.name)
    if "_manifests/tags" in sections:
        yield from _tag_leaves(repo, removed, candidates)
    elif repo.tags:
        yield tags_dir(repo.name)
    if "_uploads" in sections:
        for u in repo.uploads:
            yield upload_dir(repo.name, u)
    elif repo.uploads:
        yield uploads_dir(repo.name)


_SECTIONS = ("_layers", "_manifests/revisions", "_manifests/tags", "_uploads")


# Every algorithm distribution knows has a six-letter name: "sha256:ab" is a digest's first 9.
assert {len(alg) for alg in ALGORITHMS} == {6}
_ALG_AND_PREFIX = itemgetter(slice(0, 9))


def _leaves(
    snap: Snapshot, candidates: set[str], removed: set[str], removed_blobs: list[str]
) -> Iterable[str]:
    """What the scan knows of, as leaves (files, uploads, anything reported), in the parts of
    the tree that hold candidate folders; elsewhere a repository counts as one leaf."""
    prefixes = {c for c in candidates if c.startswith("blobs/") and c.count("/") == 2}
    if prefixes:
        # Blob folders are counted per prefix rather than listed one by one: a prefix folder
        # survives when more blobs live in it than the plan removes.
        removed_in: dict[str, int] = {}
        for a in removed_blobs:
            key = a.rsplit("/", 1)[0]
            removed_in[key] = removed_in.get(key, 0) + 1
        # "sha256:ab..." -> "sha256:ab": a digest's algorithm and prefix, counted in C.
        living = Counter(map(_ALG_AND_PREFIX, snap.blobs))
        empty = set(snap.empty_dirs)
        for d in snap.blobs_without_data:
            if d not in snap.blobs and blob_dir(d) not in empty:  # empty: removed as a folder
                living[_ALG_AND_PREFIX(d)] += 1
        for key in prefixes:
            alg, hex2 = key.split("/")[1:]
            if living[f"{alg}:{hex2}"] > removed_in.get(key, 0):
                yield key
    # Candidates are closed upwards (every folder between a candidate and a stop is one), and
    # no repository is named like a section: a repository holds candidates exactly when its
    # folder is one, and a section does exactly when the section's folder is one.
    for name, repo in snap.repositories.items():
        folder = repo_dir(name)
        if folder in candidates:
            sections = {sec for sec in _SECTIONS if join(folder, sec) in candidates}
            yield from _repo_leaves(repo, sections, removed, candidates)
        else:
            yield folder
    yield from snap.empty_dirs
    for f in snap.findings:
        yield f.path


def _ancestors(path: str) -> Iterable[str]:
    i = path.rfind("/")
    while i > 0:
        path = path[:i]
        yield path
        i = path.rfind("/")


def plan_folders(snap: Snapshot, plan: GcPlan, scope: Iterable[str] | None = None) -> None:
    """Folders that hold nothing once the planned actions ran, deepest first.

    A folder survives when any known leaf below it survives: a file, an upload, anything the
    scan reported (unknown entries, symlinks, unreadable folders), a child repository.
    ``blobs``, ``blobs/<alg>`` and ``repositories`` themselves always stay. ``scope``
    (repository names) limits the already-empty folders considered to those repositories.
    """
    removed = {a.path for a in plan.actions}
    empty = set(snap.empty_dirs)
    if scope is not None:
        # Only the targets' own leftovers (``regfs rm``): never tidy up elsewhere.
        bases = tuple(repo_dir(name) + "/" for name in scope)
        empty = {p for p in empty if p.startswith(bases)}
    stop = {"", BLOBS, REPOSITORIES} | {blob_alg_dir(alg) for alg in ALGORITHMS}
    walked: set[str] = set()
    # Parents first (one per removed folder, most of them shared), then their ancestors.
    for parent in {p.rpartition("/")[0] for p in removed | empty}:
        if parent in stop or parent in walked:
            continue
        walked.add(parent)
        for anc in _ancestors(parent):
            if anc in stop or anc in walked:
                break
            walked.add(anc)
    candidates = walked | {p for p in empty if p not in stop}
    if not candidates:
        return
    gone: dict[str, bool] = {}

    def inside_removed(path: str) -> bool:
        """True when ``path`` is a removed folder or lies inside one (memoised by folder)."""
        if path in removed:
            return True
        chain: list[str] = []
        result = False
        for anc in _ancestors(path):
            known = gone.get(anc)
            if known is not None:
                result = known
                break
            chain.append(anc)
            if anc in removed:
                result = True
                break
        for anc in chain:
            gone[anc] = result
        return result

    kept: set[str] = set()
    seen: set[str] = set()
    removed_blobs = [a.path for a in plan.actions if a.step is Step.BLOB]
    for leaf in _leaves(snap, candidates, removed, removed_blobs):
        if leaf in empty or inside_removed(leaf):
            continue
        if leaf in candidates:
            kept.add(leaf)
        for anc in _ancestors(leaf):
            if anc in seen:
                break
            seen.add(anc)
            if anc in candidates:
                kept.add(anc)
    folders = candidates - kept - removed
    for c in sorted(folders, key=lambda p: (-p.count("/"), p)):
        plan.actions.append(Action(Step.FOLDER, c))


def state_dir(v2: str) -> str:
    """Where regfs keeps its lock, journals and trash: ``<rootdirectory>/.regfs``."""
    parts = v2.rstrip("/").split("/")
    if parts[-3:] == ["docker", "registry", "v2"]:
        return os.path.join("/".join(parts[:-3]) or "/", ".regfs")
    return os.path.join(v2, ".regfs")
