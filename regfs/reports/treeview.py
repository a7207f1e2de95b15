"""The registry as a tree of plain dicts: repository -> tag -> manifest -> config and layers.

One structure feeds both ``regfs tree`` text (through anytree) and ``regfs tree --json``.
Every node has ``type`` and ``children``; see the README for the keys of each type.
"""

from __future__ import annotations

from typing import Any

from regfs.graph.mark import Marks, Mode, mark, referrers_index
from regfs.graph.servable import tag_report
from regfs.pattern import select
from regfs.reports.orphans import blob_repositories
from regfs.scan import Repository, Snapshot

Node = dict[str, Any]


def build_tree(snap: Snapshot, repo_glob: str | None = None) -> Node:
    """The tree of every repository, or of those matching ``repo_glob``.

    Raises:
        UsageError: ``repo_glob`` matches no repository.
    """
    names = list(snap.repositories)
    wanted = set(select(names, repo_glob)) if repo_glob is not None else set(names)
    default = mark(snap, Mode.DEFAULT)
    untagged = mark(snap, Mode.UNTAGGED)
    shared = {d for d, repos in blob_repositories(snap, default).items() if len(repos) > 1}
    repos = []
    for repo in snap.repositories.values():
        if repo.name not in wanted:
            continue
        repos.append(_repo_node(snap, repo, untagged, shared))
    return {"type": "registry", "path": str(snap.v2), "children": repos}


def _repo_node(snap: Snapshot, repo: Repository, untagged: Marks, shared: set[str]) -> Node:
    refs = referrers_index(snap, repo)
    ctx = _Ctx(snap, repo, refs, shared)
    children: list[Node] = []
    for name, tag in sorted(repo.tags.items()):
        node: Node = {"type": "tag", "name": name, "children": []}
        # The very function `regfs check` decides broken_tag with: the two always agree.
        pull = tag_report(snap, repo, name)
        if pull.broken:
            node["broken"] = True
            node["issues"] = pull.issues
        elif pull.partial:
            node["absent_platforms"] = [a.platform for a in pull.absent]
        if tag.target is not None:
            node["children"].append(ctx.manifest(tag.target, set()))
        children.append(node)
    live = untagged.live.get(repo.name, {})
    dead = sorted(d for d in repo.revision_digests() if d not in live)
    nested: set[str] = set()
    for d in dead:
        m = snap.manifests.get(d)
        if m is not None:
            nested.update(c.digest for c in m.children)
        for r in refs.get(d, ()):
            nested.add(r)
    tops = [d for d in dead if d not in nested]
    if tops:
        children.append(
            {
                "type": "untagged",
                "count": len(dead),
                "children": [ctx.manifest(d, set()) for d in tops],
            }
        )
    if repo.uploads:
        children.append(
            {
                "type": "uploads",
                "count": len(repo.uploads),
                "size": sum(u.size for u in repo.uploads.values()),
                "children": [],
            }
        )
    return {"type": "repository", "name": repo.name, "children": children}


class _Ctx:
    def __init__(
        self, snap: Snapshot, repo: Repository, refs: dict[str, list[str]], shared: set[str]
    ) -> None:
        self.snap, self.repo, self.refs, self.shared = snap, repo, refs, shared

    def blob(self, role: str, digest: str, size: int | None, *, foreign: bool = False) -> Node:
        blob = self.snap.blobs.get(digest)
        node: Node = {
            "type": role,
            "digest": digest,
            "size": blob.size if blob else size,
            "children": [],
        }
        if blob is None and not foreign:
            node["missing"] = True
        if foreign:
            node["foreign"] = True
        if digest in self.shared:
            node["shared"] = True
        return node

    def manifest(
        self,
        digest: str,
        seen: set[str],
        platform: str | None = None,
        role: str = "manifest",
        *,
        child: bool = False,
    ) -> Node:
        snap = self.snap
        blob = snap.blobs.get(digest)
        m = snap.manifests.get(digest)
        node: Node = {
            "type": role,
            "digest": digest,
            "size": blob.size if blob else None,
            "kind": m.label if m else None,
            "children": [],
        }
        if platform:
            node["platform"] = platform
        if child and digest not in self.repo.revisions and not self.repo.incomplete:
            # Not a manifest of the repository: that platform does not pull, and gc keeps
            # nothing below it (regfs.graph.servable, regfs.graph.mark).
            node["absent"] = True
            return node
        if m is not None and m.artifact_type:
            node["artifact_type"] = m.artifact_type
        if blob is None:
            node["missing"] = True
        elif m is None:
            node["unparseable"] = snap.unparseable.get(digest, "not a manifest")
        if digest in seen:  # an index cycle: show it, do not follow it
            node["cycle"] = True
            return node
        seen = seen | {digest}
        if m is not None:
            if m.config is not None:
                node["children"].append(self.blob("config", m.config.digest, m.config.size))
            for layer in m.layers:
                node["children"].append(
                    self.blob("layer", layer.digest, layer.size, foreign=layer.foreign)
                )
            for c in m.children:
                node["children"].append(self.manifest(c.digest, seen, c.platform, child=True))
        for r in self.refs.get(digest, ()):
            node["children"].append(self.manifest(r, seen, role="referrer"))
        return node
