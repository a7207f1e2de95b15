"""``regfs rm``: delete tags, manifests and whole repositories offline.

Targets: ``REPO:TAG`` removes one tag folder; ``REPO@DIGEST`` removes a manifest as the
registry's API DELETE does (its revision, every tag pointing at it, its tag history entries);
``REPO`` removes the whole repository (``_manifests``, ``_layers``, ``_uploads``, and the folder
when nothing else lives in it; child repositories stay). Glob patterns match repositories and
tags (:mod:`regfs.pattern`: ``*`` within one path segment, ``**`` across). Blobs are left to
``regfs gc``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from regfs.digest import DigestError, parse_digest
from regfs.duration import cutoff as age_cutoff
from regfs.errors import UsageError
from regfs.gc.plan import (
    Action,
    GcOptions,
    GcPlan,
    new_run_id,
    plan_folders,
    sort_actions,
    young_uploads,
)
from regfs.layout import (
    REPO_NAME_RE,
    TAG_RE,
    layer_dir,
    revision_dir,
    tag_dir,
    tag_index_dir,
    upload_dir,
)
from regfs.pattern import is_glob, matcher
from regfs.scan import Repository, Snapshot


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    repo: str
    tag: str | None = None
    digest: str | None = None

    @property
    def is_glob(self) -> bool:
        return is_glob(self.repo + (self.tag or ""))


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


def parse_target(text: str) -> Target:
    """``REPO``, ``REPO:TAG`` or ``REPO@DIGEST``, globs allowed in REPO and TAG."""
    if not text:
        raise UsageError("empty target")
    if "@" in text:
        repo, _, ref = text.partition("@")
        try:
            digest = parse_digest(ref)
        except DigestError as exc:
            raise UsageError(f"malformed target {text!r}: {exc}") from None
        _check_repo(repo, text)
        return Target(text, repo, digest=digest)
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
            if t.digest is not None:
                if t.digest in repo.revision_digests():
                    hit = True
                    if (name, t.digest) not in seen_man:
                        seen_man.add((name, t.digest))
                        sel.manifests.append((name, t.digest))
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
            what = "manifest" if t.digest else "tag"
            raise UsageError(f"no {what} matches {t.text!r}")
    return sel


def build_rm_plan(
    snap: Snapshot,
    sel: Selection,
    *,
    trash: bool = False,
    min_age: float = 3600.0,
    now: float | None = None,
) -> GcPlan:
    now = time.time() if now is None else now
    plan = GcPlan(
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
    for name, digest in sel.manifests:
        if name in whole:
            continue
        repo = snap.repositories[name]
        for tag_name, tag_obj in sorted(repo.tags.items()):
            pointing = tag_obj.current is not None and tag_obj.current.digest == digest
            if pointing and (name, tag_name) not in tags_done:
                tags_done.add((name, tag_name))
                _remove_tag(repo, tag_name, plan)
            elif not pointing and digest in tag_obj.index and (name, tag_name) not in tags_done:
                plan.actions.append(
                    Action(
                        "tag_index",
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
                        "revision",
                        revision_dir(name, d),
                        name,
                        digest,
                        expect_mtime=link.mtime or None,
                    )
                )
                plan.manifests.append((name, digest))
    cutoff = age_cutoff(now, min_age)
    plan.young_uploads = young_uploads(snap, cutoff)
    touched = {a.repository for a in plan.actions if a.repository}
    plan_folders(snap, plan, scope=touched)
    sort_actions(plan)
    return plan


def _remove_tag(repo: Repository, tag: str, plan: GcPlan) -> None:
    cur = repo.tags[tag].current
    plan.actions.append(
        Action(
            "tag",
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
                "revision",
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
                "layer_link",
                layer_dir(repo.name, d),
                repo.name,
                link.digest or d,
                expect_mtime=link.mtime or None,
            )
        )
    for u in sorted(repo.uploads.values(), key=lambda u: u.uuid):
        plan.actions.append(
            Action(
                "upload",
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
