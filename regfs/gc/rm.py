"""``regfs rm``: delete tags, manifests and whole repositories offline.

Targets: ``REPO:TAG`` removes one tag folder; ``REPO@DIGEST`` removes a manifest as the
registry's API DELETE does (its revision, every tag pointing at it, its tag history entries);
``REPO`` removes the whole repository (``_manifests``, ``_layers``, ``_uploads``, and the folder
when nothing else lives in it; child repositories stay). Glob patterns match repositories and
tags (:mod:`regfs.pattern`: ``*`` within one path segment, ``**`` across). Blobs are left to
``regfs gc``.

``DIGEST`` may be the short form regfs prints: a unique prefix of at least
:data:`MIN_PREFIX` hex digits, with or without ``sha256:``; an ambiguous one is refused.

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
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from regfs.defaults import MIN_AGE
from regfs.duration import cutoff as age_cutoff
from regfs.duration import format_duration
from regfs.errors import UsageError
from regfs.gc.plan import (
    GcOptions,
    GcPlan,
    keep_off_symlinks,
    new_run_id,
    plan_folders,
    sort_actions,
    young_uploads,
)
from regfs.gc.steps import Action, Step
from regfs.graph.mark import Mode, mark, referrers_index
from regfs.graph.servable import AbsentChild, tag_report
from regfs.graph.unread import unknowns
from regfs.layout import (
    REPO_NAME_RE,
    TAG_RE,
    layer_dir,
    revision_dir,
    tag_dir,
    tag_index_dir,
    upload_dir,
)
from regfs.model.digest import ALGORITHMS, DigestError, parse_digest
from regfs.pattern import is_glob, matcher
from regfs.reports.orphans import manifest_closure
from regfs.scan import Repository, Snapshot

# The shortest digest prefix `rm` accepts: what regfs prints (render.short).
MIN_PREFIX = 12
_PREFIX_RE = re.compile(r"(?:(?P<alg>[a-z0-9]+):)?(?P<hex>[0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    repo: str
    tag: str | None = None
    digest: str | None = None
    # A short digest: (algorithm or None for any, hex prefix).
    prefix: tuple[str | None, str] | None = None

    @property
    def is_glob(self) -> bool:
        return is_glob(self.repo + (self.tag or ""))

    def matches(self, digest: str) -> bool:
        """Whether ``digest`` is the one this manifest target names (full or short)."""
        if self.digest is not None:
            return digest == self.digest
        if self.prefix is None:
            return False
        alg, hexpart = self.prefix
        d_alg, _, d_hex = digest.partition(":")
        return (alg is None or alg == d_alg) and d_hex.startswith(hexpart)


@dataclass(slots=True)
class Selection:
    """What the targets matched: whole repositories, tags, manifests."""

    repositories: list[str] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)
    globbed: bool = False

    def describe(self) -> list[str]:
        return (
            [f"repository {r}" for r in self.repositories]
            + [f"tag {r}:{t}" for r, t in self.tags]
            + [f"manifest {r}@{d}" for r, d in self.manifests]
        )


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


def parse_target(text: str) -> Target:
    """``REPO``, ``REPO:TAG`` or ``REPO@DIGEST``, globs allowed in REPO and TAG."""
    if not text:
        raise UsageError("empty target")
    if "@" in text:
        repo, _, ref = text.partition("@")
        _check_repo(repo, text)
        try:
            return Target(text, repo, digest=parse_digest(ref))
        except DigestError as exc:
            m = _PREFIX_RE.fullmatch(ref)
            alg = m.group("alg") if m else None
            full = ALGORITHMS.get(alg or "sha256", 0)
            if m is None or (alg is not None and alg not in ALGORITHMS):
                raise UsageError(f"malformed target {text!r}: {exc}") from None
            if not MIN_PREFIX <= len(m.group("hex")) < max(ALGORITHMS.values()) or (
                alg is not None and len(m.group("hex")) >= full
            ):
                raise UsageError(
                    f"malformed target {text!r}: a digest is either full or a prefix of at "
                    f"least {MIN_PREFIX} hex digits ({exc})"
                ) from None
            return Target(text, repo, prefix=(alg, m.group("hex")))
    repo, sep, tag = text.partition(":")
    _check_repo(repo, text)
    if sep:
        if not tag or not (TAG_RE.fullmatch(tag) or is_glob(tag)):
            raise UsageError(f"malformed target {text!r}: bad tag {tag!r}")
        return Target(text, repo, tag=tag)
    return Target(text, repo)


def _check_repo(repo: str, text: str) -> None:
    if not repo:
        raise UsageError(f"malformed target {text!r}: no repository")
    if is_glob(repo):
        matcher(repo)  # a malformed glob is an error now, before anything is scanned
        return
    if not REPO_NAME_RE.fullmatch(repo):
        raise UsageError(f"malformed target {text!r}: {repo!r} is not a repository name")


def select(snap: Snapshot, targets: list[Target]) -> Selection:
    """Resolve targets against the snapshot; any that matches nothing is an error."""
    sel = Selection(globbed=any(t.is_glob for t in targets))
    names = list(snap.repositories)
    seen_repo: set[str] = set()
    seen_tag: set[tuple[str, str]] = set()
    seen_man: set[tuple[str, str]] = set()
    for t in targets:
        repos = [n for n in names if matcher(t.repo)(n)]
        if not repos:
            raise UsageError(f"no repository matches {t.text!r}")
        hit = False
        for name in repos:
            repo = snap.repositories[name]
            if t.digest is not None or t.prefix is not None:
                found = sorted(d for d in repo.revision_digests() if t.matches(d))
                if len(found) > 1:
                    raise UsageError(
                        f"{t.text!r} is ambiguous: {len(found)} manifests of {name} start with "
                        f"it: {', '.join(found)}"
                    )
                if found:
                    hit = True
                    if (name, found[0]) not in seen_man:
                        seen_man.add((name, found[0]))
                        sel.manifests.append((name, found[0]))
            elif t.tag is not None:
                tag_matches = matcher(t.tag)
                for tag in sorted(repo.tags):
                    if tag_matches(tag):
                        hit = True
                        if (name, tag) not in seen_tag:
                            seen_tag.add((name, tag))
                            sel.tags.append((name, tag))
            else:
                hit = True
                if name not in seen_repo:
                    seen_repo.add(name)
                    sel.repositories.append(name)
        if not hit:
            what = "manifest" if t.digest or t.prefix else "tag"
            raise UsageError(f"no {what} matches {t.text!r}")
    return sel


def build_rm_plan(
    snap: Snapshot,
    sel: Selection,
    *,
    trash: bool = False,
    min_age: float = MIN_AGE,
    now: float | None = None,
) -> RmPlan:
    """The removal of ``sel``, the referrers it takes along, and the tags it would break
    (``plan.breaks``: the caller refuses them unless forced)."""
    now = time.time() if now is None else now
    plan = RmPlan(
        run_id=new_run_id(now),
        v2=str(snap.v2),
        options=GcOptions(trash=trash, min_age=min_age),
        created=now,
        actions=[],
        kept=[],
        blocking=[],
    )
    whole = set(sel.repositories)
    tags_done: set[tuple[str, str]] = set()
    for name in sel.repositories:
        _remove_repository(snap.repositories[name], plan)
        tags_done.update((name, t) for t in snap.repositories[name].tags)
    for name, tag in sel.tags:
        if name not in whole and (name, tag) not in tags_done:
            tags_done.add((name, tag))
            _remove_tag(snap.repositories[name], tag, plan)
    manifests = [(n, d) for n, d in sel.manifests if n not in whole]
    for name, digest in manifests:
        _remove_manifest(snap.repositories[name], digest, plan, tags_done)
    for ref in _orphaned_referrers(snap, plan, manifests):
        plan.referrers.append(ref)
        _remove_manifest(snap.repositories[ref.repository], ref.digest, plan, tags_done)
    plan.breaks = breakage(snap, plan, whole)
    cutoff = age_cutoff(now, min_age)
    plan.young_uploads = young_uploads(snap, cutoff)
    touched = {a.repository for a in plan.actions if a.repository}
    plan_folders(snap, plan, scope=touched)
    keep_off_symlinks(plan, unknowns(snap))  # the registry serves through them: as in gc
    sort_actions(plan)
    return plan


def _remove_manifest(
    repo: Repository, digest: str, plan: GcPlan, tags_done: set[tuple[str, str]]
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


def _touched(snap: Snapshot, plan: GcPlan) -> Snapshot:
    """The snapshot after ``plan``, restricted to the repositories it touches."""
    after = without(snap, plan)
    names = {a.repository for a in plan.actions if a.repository}
    return dataclasses.replace(
        after, repositories={n: r for n, r in after.repositories.items() if n in names}
    )


def _orphaned_referrers(
    snap: Snapshot, plan: GcPlan, removed: list[tuple[str, str]]
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


def breakage(snap: Snapshot, plan: GcPlan, whole: Iterable[str] = ()) -> list[Breakage]:
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


def _remove_tag(repo: Repository, tag: str, plan: GcPlan) -> None:
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


def _remove_repository(repo: Repository, plan: GcPlan) -> None:
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


def without(snap: Snapshot, plan: GcPlan) -> Snapshot:
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


def gc_notes(snap: Snapshot, plan: GcPlan, gc_plan: GcPlan, options: GcOptions) -> list[str]:
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
