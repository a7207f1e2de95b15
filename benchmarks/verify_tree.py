#!/usr/bin/env python3
"""Check a generated tree against the real registry (distribution 2.8.2).

    python benchmarks/verify_tree.py [--repos 50] [--tags 5] [--seed 1] [--workdir DIR]

Generates a tree with gen_tree, serves it with `docker-registry serve` on
127.0.0.1, and pulls every tag of every repository (manifest with the right
Accept header, then config and layers, or the index children by digest),
checking media types, Docker-Content-Digest, sizes and sha256 of every body. It
also pulls the untagged revisions, expects 404 for deleted ones, and compares
`/v2/_catalog` with the repositories on disk. Then, with the registry stopped,
it runs `docker-registry garbage-collect --dry-run` and compares the blobs it
names with what the generator expects (loose orphans, abandoned uploads and the
blobs only the deleted manifests referenced). Exit 0 when everything agrees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen_tree
import regtools

ACCEPT = ", ".join(
    [gen_tree.OCI_MANIFEST, gen_tree.OCI_INDEX, gen_tree.DOCKER_MANIFEST, gen_tree.DOCKER_LIST]
)
INDEX_TYPES = {gen_tree.OCI_INDEX, gen_tree.DOCKER_LIST}


def get(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def read_link(path: str) -> str:
    with open(path) as f:
        return f.read()


@dataclass
class RepoInfo:
    tags: dict[str, str]  # tag -> digest in current/link
    revisions: list[str]  # revisions with a link
    deleted: list[str]  # revision folders without a link (DELETEd manifests)


def scan(v2: str) -> dict[str, RepoInfo]:
    """What is on disk, read independently of the generator."""
    repos: dict[str, RepoInfo] = {}
    root = os.path.join(v2, "repositories")
    for dirpath, dirnames, _ in os.walk(root):
        if "_layers" in dirnames or "_manifests" in dirnames:
            name = os.path.relpath(dirpath, root)
            tags: dict[str, str] = {}
            tdir = os.path.join(dirpath, "_manifests", "tags")
            if os.path.isdir(tdir):
                for t in sorted(os.listdir(tdir)):
                    tags[t] = read_link(os.path.join(tdir, t, "current", "link"))
            live: list[str] = []
            deleted: list[str] = []
            rdir = os.path.join(dirpath, "_manifests", "revisions", "sha256")
            if os.path.isdir(rdir):
                for hx in sorted(os.listdir(rdir)):
                    lp = os.path.join(rdir, hx, "link")
                    (live if os.path.exists(lp) else deleted).append("sha256:" + hx)
            repos[name] = RepoInfo(tags, live, deleted)
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
    return repos


class Puller:
    def __init__(self, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.manifests = 0
        self.blobs = 0
        self.children = 0

    def fail(self, msg: str) -> None:
        self.errors.append(msg)

    def blob(self, repo: str, desc: dict[str, object]) -> None:
        dg = str(desc["digest"])
        st, _, body = get(f"{self.base}/v2/{repo}/blobs/{dg}")
        if st != 200:
            self.fail(f"{repo}: GET blob {dg}: HTTP {st}")
            return
        if "sha256:" + hashlib.sha256(body).hexdigest() != dg:
            self.fail(f"{repo}: blob {dg}: sha256 mismatch")
        if len(body) != desc.get("size"):
            self.fail(f"{repo}: blob {dg}: size {len(body)} != descriptor {desc.get('size')}")
        self.blobs += 1

    def manifest(self, repo: str, ref: str, expect_digest: str | None) -> None:
        st, h, body = get(f"{self.base}/v2/{repo}/manifests/{ref}", ACCEPT)
        if st != 200:
            self.fail(f"{repo}:{ref}: GET manifest HTTP {st} {body[:200]!r}")
            return
        self.manifests += 1
        dg = "sha256:" + hashlib.sha256(body).hexdigest()
        if h.get("Docker-Content-Digest") != dg:
            self.fail(
                f"{repo}:{ref}: Docker-Content-Digest {h.get('Docker-Content-Digest')}"
                f" != sha256 of body {dg}"
            )
        if expect_digest and dg != expect_digest:
            self.fail(f"{repo}:{ref}: digest {dg} != link {expect_digest}")
        m = json.loads(body)
        mt = m.get("mediaType")
        if h.get("Content-Type") != mt:
            self.fail(f"{repo}:{ref}: Content-Type {h.get('Content-Type')} != mediaType {mt}")
        if mt in INDEX_TYPES:
            plats = set()
            for child in m["manifests"]:
                p = child.get("platform") or {}
                if not p.get("architecture") or not p.get("os"):
                    self.fail(f"{repo}:{ref}: child {child['digest']} without platform")
                plats.add(p.get("architecture"))
                self.children += 1
                self.manifest(repo, child["digest"], child["digest"])
            if len(plats) != 2:
                self.fail(f"{repo}:{ref}: index platforms {plats}")
        else:
            self.blob(repo, m["config"])
            for layer in m["layers"]:
                self.blob(repo, layer)
            if not 2 <= len(m["layers"]) <= 6:
                self.fail(f"{repo}:{ref}: {len(m['layers'])} layers")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=50)
    ap.add_argument("--tags", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", help="keep everything here (default: a temporary dir)")
    a = ap.parse_args(argv)
    if not regtools.which(regtools.REFERENCE):
        print(
            "verify_tree: needs `docker-registry` (Debian package docker-registry, "
            "distribution 2.8.2) on PATH",
            file=sys.stderr,
        )
        return 2

    work = a.workdir or tempfile.mkdtemp(prefix="regfs-verify-")
    os.makedirs(work, exist_ok=True)
    root = os.path.join(work, "root")
    expect = gen_tree.generate(root, a.repos, a.tags, a.seed, force=True)
    print("generated:", gen_tree.summary_line(expect))
    v2 = os.path.join(root, "docker", "registry", "v2")
    cfg = regtools.write_config(os.path.join(work, "registry.yml"), root)
    disk = scan(v2)

    with regtools.serve(cfg) as base:
        p = Puller(base)
        for repo, info in disk.items():
            tags = info.tags
            for tag, dg in tags.items():
                p.manifest(repo, tag, dg)
            tagged = set(tags.values())
            for dg in info.revisions:
                if dg not in tagged:
                    p.manifest(repo, dg, dg)
            for dg in info.deleted:
                st, _, _ = get(f"{base}/v2/{repo}/manifests/{dg}", ACCEPT)
                if st != 404:
                    p.fail(f"{repo}: deleted revision {dg} answers {st}, expected 404")
            st, _, body = get(f"{base}/v2/{repo}/tags/list")
            listed = json.loads(body).get("tags") or [] if st == 200 else None
            if listed is None or sorted(listed) != sorted(tags):
                p.fail(f"{repo}: tags/list {st} {listed} != on disk {sorted(tags)}")
        catalog: list[str] = []
        url: str | None = f"{base}/v2/_catalog?n=1000"  # 2.8.2 rejects n > 1000 with 400
        while url:
            st, h, body = get(url)
            if st != 200:
                p.fail(f"GET {url}: HTTP {st} {body[:200]!r}")
                break
            catalog += json.loads(body).get("repositories") or []
            link = h.get("Link")  # '</v2/_catalog?last=...&n=1000>; rel="next"'
            url = base + link.split(";")[0].strip("<> ") if link else None
        if sorted(catalog) != sorted(disk):
            p.fail(
                f"catalog has {len(catalog)} repositories, disk {len(disk)}: "
                f"{sorted(set(catalog) ^ set(disk))[:10]}"
            )
    n_deleted = sum(len(i.deleted) for i in disk.values())
    print(
        f"pulled: {len(disk)} repositories (catalog {len(catalog)}), {p.manifests} manifests "
        f"({p.children} index children), {p.blobs} blob GETs verified, "
        f"{n_deleted} deleted revisions answer 404"
    )

    run, gc = regtools.reference_gc(cfg, os.path.join(work, "gc-dry-run"))
    want = set(expect["gc_default_eligible"])
    orphans = set(expect["orphans"])
    print(
        f"reference gc --dry-run: rc={run.rc} wall={run.wall:.2f}s "
        f"maxrss={run.maxrss_kb / 1024:.1f}MB summary: {gc.marked} blobs marked, "
        f"{gc.blobs} blobs and {gc.manifests} manifests eligible; {gc.lines} eligible lines"
    )
    print(
        f"  names {len(gc.eligible & orphans)}/{len(orphans)} loose orphans and "
        f"{len(gc.eligible - orphans)} other blobs (abandoned uploads + only referenced by "
        f"deleted manifests); generator expects {len(want)} in all"
    )
    if run.rc != 0:
        p.fail(f"garbage-collect exited {run.rc}: {regtools.read_text(run.stderr)[-2000:]}")
    if gc.eligible != want:
        p.fail(
            f"GC plan differs from expectation: {len(gc.eligible - want)} unexpected, "
            f"{len(want - gc.eligible)} missing; e.g. "
            f"{sorted(gc.eligible - want)[:3]} / {sorted(want - gc.eligible)[:3]}"
        )
    if gc.blobs != gc.lines or gc.lines != len(gc.eligible):
        p.fail(f"summary says {gc.blobs} blobs, {gc.lines} lines, {len(gc.eligible)} distinct")

    for e in p.errors[:30]:
        print("ERROR:", e)
    if p.errors:
        print(f"FAILED: {len(p.errors)} problems (workdir {work})")
        return 1
    if a.workdir:
        print(f"OK (workdir {work})")
    else:
        shutil.rmtree(work)
        print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
