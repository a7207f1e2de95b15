"""Folders a plan leaves empty (pure): planned once, at the end of composing a plan.

A folder goes when every leaf the scan knows below it goes: a file, an upload, anything the
scan reported (unknown entries, symbolic links, unreadable folders), a child repository.
Counting leaves per folder rather than listing the tree keeps this cheap on big stores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import itemgetter
from typing import TYPE_CHECKING

from regfs.gc.steps import Action, Step
from regfs.layout import (
    BLOBS,
    REPOSITORIES,
    blob_alg_dir,
    blob_dir,
    digest_dir,
    join,
    layers_dir,
    link_file,
    repo_dir,
    revisions_dir,
    tag_current_link,
    tag_dir,
    tag_history_dir,
    tags_dir,
    upload_dir,
    uploads_dir,
)
from regfs.model.digest import ALGORITHMS
from regfs.model.snapshot import Repository, Snapshot

if TYPE_CHECKING:
    from regfs.gc.plan import GcPlan


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


def _inside(path: str, folders: set[str]) -> bool:
    """Whether ``path`` lies strictly inside one of ``folders`` (one set lookup per level)."""
    i = path.rfind("/")
    while i > 0:
        if path[:i] in folders:
            return True
        i = path.rfind("/", 0, i)
    return False


def _ancestors(path: str) -> Iterable[str]:
    i = path.rfind("/")
    while i > 0:
        path = path[:i]
        yield path
        i = path.rfind("/")


def folder_actions(
    snap: Snapshot, actions: Iterable[Action], scope: Iterable[str] | None = None
) -> list[Action]:
    """Folders that hold nothing once ``actions`` ran, deepest first (pure).

    A folder survives when any known leaf below it survives: a file, an upload, anything the
    scan reported (unknown entries, symlinks, unreadable folders), a child repository.
    ``blobs``, ``blobs/<alg>`` and ``repositories`` themselves always stay. ``scope``
    (repository names) limits the already-empty folders considered to those repositories.
    """
    actions = list(actions)
    removed = {a.path for a in actions}
    empty = set(snap.empty_dirs)
    if scope is not None:
        # Only the targets' own leftovers (``regfs rm``): never tidy up elsewhere.
        folders = {repo_dir(name) for name in scope}
        empty = {p for p in empty if _inside(p, folders)}
    stop = {"", BLOBS, REPOSITORIES} | {blob_alg_dir(alg) for alg in ALGORITHMS}
    walked: set[str] = set()
    # Parents first (one per removed folder, most of them shared), then their ancestors.
    parents = {p.rpartition("/")[0] for p in removed}
    parents.update(p.rpartition("/")[0] for p in empty)
    for parent in parents:
        if parent in stop or parent in walked:
            continue
        walked.add(parent)
        for anc in _ancestors(parent):
            if anc in stop or anc in walked:
                break
            walked.add(anc)
    candidates = walked | {p for p in empty if p not in stop}
    if not candidates:
        return []
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
    removed_blobs = [a.path for a in actions if a.step is Step.BLOB]
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
    return [Action(Step.FOLDER, c) for c in sorted(folders, key=lambda p: (-p.count("/"), p))]


def plan_folders(snap: Snapshot, plan: GcPlan, scope: Iterable[str] | None = None) -> None:
    """Append to ``plan`` the folders its actions leave empty (:func:`folder_actions`)."""
    plan.actions.extend(folder_actions(snap, plan.actions, scope))
