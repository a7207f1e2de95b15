#!/usr/bin/env python3
"""Write a synthetic, deterministic registry storage tree straight to disk.

    python benchmarks/gen_tree.py OUT_ROOT --repos N --tags M [--seed S]
                                  [--layer-pool P] [--layer-kib K] [--force]
                                  [--expect FILE]

OUT_ROOT is the registry's ``rootdirectory``; the tree goes to
``OUT_ROOT/docker/registry/v2/{blobs,repositories}`` in the layout and link format
distribution 2.8.2 writes. No registry process is involved. What 2.8.2 writes was
checked once against the real ``docker-registry`` 2.8.2 (push over HTTP, then
DELETE), and this generator mirrors it:

* a pushed blob: ``blobs/sha256/<hex[:2]>/<hex>/data`` plus
  ``<repo>/_layers/sha256/<hex>/link`` (configs and layers only: a manifest's own
  blob is *not* linked under ``_layers``);
* a pushed manifest: its blob, ``_manifests/revisions/sha256/<hex>/link`` and, when
  pushed by tag, ``_manifests/tags/<tag>/current/link`` and
  ``_manifests/tags/<tag>/index/sha256/<hex>/link`` (the index keeps every digest
  the tag ever pointed to);
* after any finished upload an empty ``<repo>/_uploads/`` directory is left;
* ``DELETE /v2/<repo>/manifests/<digest>`` removes only the revision's ``link``
  file (the ``revisions/sha256/<hex>/`` directory stays, empty) and the whole
  ``tags/<tag>/`` directory of every tag whose ``current`` is that digest; the
  (possibly empty) ``tags/`` directory, ``_layers`` links, ``_uploads`` and all
  blob data stay. A tag that was pushed over keeps an ``index`` entry for a
  deleted old digest.

Link files hold exactly ``sha256:<hex>`` with no newline. Every file and
directory gets the mtime 2024-01-01T00:00:00Z so no grace period hides anything.
Same arguments give a byte-identical tree.

Contents: N repositories named ``team-XX/svc-NNNN`` (some ``team-XX/platform/...``,
a few nested inside another repository), M tags each (``latest`` aliases the
newest version tag), OCI and Docker schema2 image manifests (config + 2-6
layers), a fifth of the repositories holding two-platform indexes (OCI index or
Docker manifest list; children pushed untagged by digest), layers drawn from a
shared Zipf-distributed pool of base-image chains, tags that were pushed over
(old digest in the tag index and as a revision), untagged by-digest pushes,
some pushed-over revisions deleted, some repositories whose manifests were all
deleted, some abandoned pushes (blobs uploaded and linked, no manifest) and
loose orphan blobs (data only).

Layers are 48-303 bytes by default, which keeps a tree of hundreds of thousands of
files small and makes the metadata walk what is measured. ``--layer-kib K`` makes
them K KiB on average (K/2 to 3K/2), for measuring digest verification where it
matters: hashing layer-sized files. The graph does not depend on it.

``--expect FILE`` writes what the reference GC (default mode, no
``--delete-untagged``) must report as eligible, plus counts, as JSON.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

GEN_VERSION = 1
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

FAMILIES = {
    "oci": (OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, OCI_LAYER),
    "docker": (DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG, DOCKER_LAYER),
}
ARCHES = (("amd64", None), ("arm64", "v8"))

# Shape of the synthetic history. Repository categories are exact samples of
# max(1, round(p * repos)) repositories; the rest are probabilities per push.
P_INDEX_REPO = 0.20  # repository whose tags are two-platform indexes
P_DELETED_REPO = 0.03  # every manifest of the repository was DELETEd
P_FAMILY_FLIP = 0.10  # a manifest of the other family than its repository's
P_OWN_BASE = 0.80  # an image uses its repository's usual base chain
P_DEPS_BUMP = 0.15  # a new dependency layer for this tag
P_APP_LAYER = 0.30  # the image has its own top layer
P_OVER1 = 0.12  # the tag was pushed over once...
P_OVER2 = 0.04  # ...or twice
P_DELETE_OLD = 0.25  # a pushed-over revision was later DELETEd
P_UNTAGGED = 0.10  # the repository got one untagged push by digest
P_ABANDONED = 0.02  # repository with an interrupted push: blobs linked, no manifest
P_NESTED = 0.01  # repository nested inside the previous repository
P_THREE_LEVEL = 0.10  # team-XX/platform/svc-NNNN
ZIPF_S = 1.1


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(obj: object, pretty: bool) -> bytes:
    if pretty:  # docker's own 3-space style
        return json.dumps(obj, indent=3).encode()
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Image:
    """One manifest (image or index) as pushed, with what it references."""

    digest: str  # hex only
    size: int
    media_type: str
    refs: list[str]  # hex of config + layers, or of the children
    children: list[Image] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)  # _layers links it needs


def _run_units(units: list[tuple[tuple[str, ...], tuple[tuple[str, bytes], ...]]]) -> None:
    t = (FIXED_MTIME, FIXED_MTIME)
    for dirs, files in units:
        for d in dirs:
            os.mkdir(d)
        for path, data in files:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, data)
                os.utime(fd, t)
            finally:
                os.close(fd)


class Writer:
    """Creates directories and files.

    Skeleton directories (repository folders, blob prefixes) are made at once, in
    order. Leaf "units" (a link or blob folder and its file, or a whole tag folder)
    never contain each other's parents, so they are written by a thread pool: the
    cost here is kernel time per mkdir/create, which threads overlap. Directory
    mtimes are fixed at the end, after every child exists.
    """

    CHUNK = 512

    def __init__(self, jobs: int) -> None:
        self.dirs: list[str] = []
        self.known: set[str] = set()
        self.files = 0
        self.bytes = 0
        self.pending: list[tuple[tuple[str, ...], tuple[tuple[str, bytes], ...]]] = []
        self.pool = ThreadPoolExecutor(jobs) if jobs > 1 else None
        self.futures: deque[Future[None]] = deque()

    def mkdirs(self, path: str) -> None:
        if path in self.known:
            return
        parent = os.path.dirname(path)
        if parent not in self.known:
            self.mkdirs(parent)
        os.mkdir(path)
        self.known.add(path)
        self.dirs.append(path)

    def unit(self, dirs: tuple[str, ...], files: tuple[tuple[str, bytes], ...]) -> None:
        """Queue leaf directories (parents first) and the files inside them."""
        self.pending.append((dirs, files))
        self.dirs.extend(dirs)
        self.files += len(files)
        self.bytes += sum(len(data) for _, data in files)
        if len(self.pending) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        chunk, self.pending = self.pending, []
        if not chunk:
            return
        if self.pool is None:
            _run_units(chunk)
            return
        self.futures.append(self.pool.submit(_run_units, chunk))
        while len(self.futures) > 64:  # bound memory held by queued chunks
            self.futures.popleft().result()

    def finish(self) -> None:
        self.flush()
        while self.futures:
            self.futures.popleft().result()
        if self.pool is not None:
            self.pool.shutdown()
        t = (FIXED_MTIME, FIXED_MTIME)
        for d in self.dirs:
            os.utime(d, t)


class Generator:
    def __init__(
        self,
        root: str,
        repos: int,
        tags: int,
        seed: int,
        pool: int,
        jobs: int = 1,
        layer_kib: int = 0,
    ) -> None:
        self.root = os.path.abspath(root)
        self.layer_kib = layer_kib
        self.n_repos = repos
        self.n_tags = tags
        self.seed = seed
        self.rng = random.Random(seed)
        self.v2 = os.path.join(self.root, "docker", "registry", "v2")
        self.blob_root = os.path.join(self.v2, "blobs", "sha256")
        self.repo_root = os.path.join(self.v2, "repositories")
        self.w = Writer(jobs)
        self.blobs: dict[str, int] = {}  # hex -> size, everything written
        self.layer_cache: dict[tuple[object, ...], tuple[str, int]] = {}
        self.n_chains = max(4, pool // 4)
        weights = [1.0 / (i + 1) ** ZIPF_S for i in range(self.n_chains)]
        acc, self.cum = 0.0, []
        for wgt in weights:
            acc += wgt
            self.cum.append(acc)
        self.index_repos: set[str] = set()
        self.deleted_repos: set[str] = set()
        self.abandoned_repos: set[str] = set()
        self.marked: set[str] = set()  # reachable from a live revision (2.8.2 default GC)
        self.orphans: list[str] = []
        self.abandoned: list[str] = []
        self.stats = dict(
            repos=0,
            tags=0,
            manifests=0,
            live_revisions=0,
            deleted_revisions=0,
            deleted_repos=0,
            index_repos=0,
            pushed_over=0,
            untagged_pushes=0,
        )

    # ---- blobs ---------------------------------------------------------------
    def put_blob(self, data: bytes) -> tuple[str, int]:
        hx = sha256_hex(data)
        if hx not in self.blobs:
            self.w.mkdirs(os.path.join(self.blob_root, hx[:2]))
            d = os.path.join(self.blob_root, hx[:2], hx)
            self.w.unit((d,), ((os.path.join(d, "data"), data),))
            self.blobs[hx] = len(data)
        return hx, len(data)

    def layer(self, *key: object) -> tuple[str, int]:
        """A layer 'tar': deterministic pseudo-random bytes named by key."""
        got = self.layer_cache.get(key)
        if got is None:
            k = repr((self.seed, key)).encode()
            b0 = hashlib.sha256(k).digest()[0]
            if self.layer_kib > 0:
                n = self.layer_kib * (512 + 4 * b0)  # K/2 .. 3K/2 KiB
                seed = hashlib.shake_256(k).digest(1 << 16)
                body = (seed * (n // len(seed) + 1))[:n]
            else:
                n = 48 + b0  # 48..303 bytes
                body = hashlib.shake_256(k).digest(n)
            got = self.put_blob(b"\x1f\x8b\x08\x00" + body)
            self.layer_cache[key] = got
        return got

    def zipf_chain(self) -> int:
        return bisect.bisect_left(self.cum, self.rng.random() * self.cum[-1])

    # ---- building images ---------------------------------------------------------
    def build_image(
        self,
        repo: RepoState,
        label: str,
        arch: str,
        variant: str | None,
        family: str,
        chain: int,
        nbase: int,
        deps: int,
        app: bool,
    ) -> Image:
        mt_manifest, _, mt_config, mt_layer = FAMILIES[family]
        layers = [self.layer("base", arch, chain, i) for i in range(nbase)]
        layers.append(self.layer("deps", repo.name, arch, deps))
        if app:
            layers.append(self.layer("app", repo.name, label, arch))
        cfg: dict[str, object] = {
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
                "Labels": {"repo": repo.name, "build": label},
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + sha256_hex(h.encode()) for h, _ in layers],
            },
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                for i in range(len(layers))
            ],
        }
        if variant:
            cfg["variant"] = variant
        chx, csz = self.put_blob(dumps(cfg, family == "docker"))
        man: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": mt_manifest,
            "config": {"mediaType": mt_config, "size": csz, "digest": "sha256:" + chx},
            "layers": [
                {"mediaType": mt_layer, "size": s, "digest": "sha256:" + h} for h, s in layers
            ],
        }
        mhx, msz = self.put_blob(dumps(man, family == "docker"))
        refs = [chx] + [h for h, _ in layers]
        return Image(mhx, msz, mt_manifest, refs, linked=refs)

    def build(self, repo: RepoState, label: str) -> Image:
        """One push: an image, or a two-platform index whose children come first."""
        rng = self.rng
        family = repo.family
        if rng.random() < P_FAMILY_FLIP:
            family = "docker" if family == "oci" else "oci"
        chain = repo.chain if rng.random() < P_OWN_BASE else self.zipf_chain()
        if rng.random() < P_DEPS_BUMP:
            repo.deps += 1
        app = rng.random() < P_APP_LAYER
        if not repo.is_index:
            return self.build_image(
                repo, label, "amd64", None, family, chain, repo.nbase, repo.deps, app
            )
        children = [
            self.build_image(repo, label, arch, var, family, chain, repo.nbase, repo.deps, app)
            for arch, var in ARCHES
        ]
        mt_index = FAMILIES[family][1]
        idx = {
            "schemaVersion": 2,
            "mediaType": mt_index,
            "manifests": [
                {
                    "mediaType": c.media_type,
                    "size": c.size,
                    "digest": "sha256:" + c.digest,
                    "platform": (
                        {"architecture": arch, "os": "linux", "variant": var}
                        if var
                        else {"architecture": arch, "os": "linux"}
                    ),
                }
                for c, (arch, var) in zip(children, ARCHES, strict=True)
            ],
        }
        ihx, isz = self.put_blob(dumps(idx, family == "docker"))
        return Image(ihx, isz, mt_index, [c.digest for c in children], children=children)

    # ---- one repository ------------------------------------------------------------
    def push(self, repo: RepoState, img: Image) -> None:
        """Record a push: layer links, then revisions (children first)."""
        for ch in img.children:
            self.push(repo, ch)
        for hx in img.linked:
            repo.layers.setdefault(hx, None)
        repo.revisions.setdefault(img.digest, img)

    def gen_repo(self, name: str) -> None:
        rng = self.rng
        repo = RepoState(name)
        repo.family = "oci" if rng.random() < 0.5 else "docker"
        repo.is_index = name in self.index_repos
        repo.chain = self.zipf_chain()
        repo.nbase = rng.randint(1, 4)
        deleted_repo = name in self.deleted_repos
        self.stats["index_repos"] += repo.is_index

        # version tags v1.N.0 ... oldest first; "latest" aliases the newest one
        names = [f"v1.{i}.0" for i in range(1, self.n_tags)] if self.n_tags > 1 else []
        deleted_digests: set[str] = set()
        for tag in names:
            n_over = 2 if rng.random() < P_OVER2 else (1 if rng.random() < P_OVER1 else 0)
            history = []
            for k in range(n_over):
                old = self.build(repo, f"{tag}-pre{k}")
                self.push(repo, old)
                history.append(old.digest)
                self.stats["pushed_over"] += 1
                if rng.random() < P_DELETE_OLD:
                    deleted_digests.add(old.digest)
                    deleted_digests.update(c.digest for c in old.children)
            cur = self.build(repo, tag)
            self.push(repo, cur)
            history.append(cur.digest)
            repo.tags[tag] = (cur.digest, history)
        if self.n_tags >= 1:
            if names:
                newest = repo.tags[names[-1]][0]
                repo.tags["latest"] = (newest, [newest])
            else:
                cur = self.build(repo, "latest")
                self.push(repo, cur)
                repo.tags["latest"] = (cur.digest, [cur.digest])
        if rng.random() < P_UNTAGGED:
            self.push(repo, self.build(repo, "by-digest"))
            self.stats["untagged_pushes"] += 1
        if name in self.abandoned_repos:
            # blobs uploaded (and linked) but the manifest PUT never happened
            cfg = self.put_blob(dumps({"abandoned": name, "os": "linux"}, False))[0]
            lay = self.layer("abandoned", name)[0]
            for hx in (cfg, lay):
                repo.layers.setdefault(hx, None)
                self.abandoned.append(hx)

        if deleted_repo:
            deleted_digests = set(repo.revisions)
            self.stats["deleted_repos"] += 1
        self.write_repo(repo, deleted_digests)

        self.stats["repos"] += 1
        self.stats["tags"] += sum(cur not in deleted_digests for cur, _ in repo.tags.values())
        self.stats["manifests"] += len(repo.revisions)
        self.stats["deleted_revisions"] += len(deleted_digests)
        live = [img for d, img in repo.revisions.items() if d not in deleted_digests]
        self.stats["live_revisions"] += len(live)
        for img in live:
            self.marked.add(img.digest)
            self.marked.update(img.refs)

    def write_repo(self, repo: RepoState, deleted: set[str]) -> None:
        w = self.w
        rdir = os.path.join(self.repo_root, *repo.name.split("/"))
        layers = os.path.join(rdir, "_layers", "sha256")
        w.mkdirs(layers)
        for hx in repo.layers:
            d = os.path.join(layers, hx)
            w.unit((d,), ((os.path.join(d, "link"), b"sha256:" + hx.encode()),))
        mans = os.path.join(rdir, "_manifests")
        w.mkdirs(mans)
        if repo.revisions:
            revs = os.path.join(mans, "revisions", "sha256")
            w.mkdirs(revs)
            for hx in repo.revisions:
                d = os.path.join(revs, hx)
                if hx in deleted:  # DELETE removes the link file, not the folder
                    w.unit((d,), ())
                else:
                    w.unit((d,), ((os.path.join(d, "link"), b"sha256:" + hx.encode()),))
        if repo.tags:
            tags = os.path.join(mans, "tags")
            w.mkdirs(tags)
            for tag, (cur, history) in repo.tags.items():
                if cur in deleted:  # DELETE removes the tag folders pointing at it
                    continue
                td = os.path.join(tags, tag)
                cd = os.path.join(td, "current")
                idx = os.path.join(td, "index", "sha256")
                hist = [os.path.join(idx, hx) for hx in dict.fromkeys(history)]
                w.unit(
                    (td, cd, os.path.dirname(idx), idx, *hist),
                    (
                        (os.path.join(cd, "link"), b"sha256:" + cur.encode()),
                        *(
                            (os.path.join(h, "link"), b"sha256:" + os.path.basename(h).encode())
                            for h in hist
                        ),
                    ),
                )
        w.mkdirs(os.path.join(rdir, "_uploads"))  # left empty after finished uploads

    # ---- everything ------------------------------------------------------------------
    def sample(self, fraction: float, population: int, start: int = 0) -> set[int]:
        """A deterministic sample of max(1, round(fraction*n)) indexes (none if n < 3)."""
        if population - start < 3:
            return set()
        k = max(1, round(fraction * population))
        return set(self.rng.sample(range(start, population), min(k, population - start)))

    def repo_names(self) -> list[str]:
        rng = self.rng
        n = self.n_repos
        teams = max(1, n // 40)
        width = max(4, len(str(n - 1)))
        nested = self.sample(P_NESTED, n, start=1)
        names: list[str] = []
        for i in range(n):
            team = f"team-{rng.randrange(teams):02d}"
            if i in nested and names[-1].count("/") < 3:
                names.append(f"{names[-1]}/sidecar-{i:0{width}d}")
            elif rng.random() < P_THREE_LEVEL:
                names.append(f"{team}/platform/svc-{i:0{width}d}")
            else:
                names.append(f"{team}/svc-{i:0{width}d}")
        return names

    def run(self) -> dict[str, Any]:
        w = self.w
        w.known.add(self.root)
        if not os.path.isdir(self.root):
            os.makedirs(self.root)
        w.mkdirs(self.blob_root)
        w.mkdirs(self.repo_root)
        names = self.repo_names()
        n = len(names)
        self.index_repos = {names[i] for i in self.sample(P_INDEX_REPO, n)}
        self.deleted_repos = {names[i] for i in self.sample(P_DELETED_REPO, n)}
        self.abandoned_repos = {names[i] for i in self.sample(P_ABANDONED, n)}
        for name in names:
            self.gen_repo(name)
        n_orphans = max(5, self.n_repos // 4)
        for i in range(n_orphans):
            self.orphans.append(self.layer("orphan", i)[0])
        w.finish()
        os.utime(self.root, (FIXED_MTIME, FIXED_MTIME))
        eligible = sorted(set(self.blobs) - self.marked)
        return {
            "generator_version": GEN_VERSION,
            "params": {
                "repos": self.n_repos,
                "tags": self.n_tags,
                "seed": self.seed,
                "layer_pool": self.n_chains * 4,
            },
            "counts": dict(
                self.stats,
                blobs=len(self.blobs),
                files=w.files,
                dirs=len(w.dirs),
                bytes=w.bytes,
                orphans=len(self.orphans),
                abandoned=len(self.abandoned),
                gc_eligible=len(eligible),
            ),
            "gc_default_eligible": ["sha256:" + h for h in eligible],
            "orphans": ["sha256:" + h for h in sorted(self.orphans)],
        }


class RepoState:
    def __init__(self, name: str) -> None:
        self.name = name
        self.family = "oci"
        self.is_index = False
        self.chain = 0
        self.nbase = 1
        self.deps = 0
        self.layers: dict[str, None] = {}  # insertion-ordered set
        self.revisions: dict[str, Image] = {}
        self.tags: dict[str, tuple[str, list[str]]] = {}  # tag -> (current, history)


def generate(
    root: str,
    repos: int,
    tags: int,
    seed: int = 1,
    layer_pool: int | None = None,
    force: bool = False,
    jobs: int = 4,
    layer_kib: int = 0,
) -> dict[str, Any]:
    """Generate the tree; return the expectation dict (counts, GC-eligible blobs)."""
    if repos < 1 or tags < 1:
        raise ValueError("--repos and --tags must be at least 1")
    if layer_kib < 0:
        raise ValueError("--layer-kib must not be negative")
    pool = layer_pool if layer_pool is not None else max(64, 2 * repos)
    docker_dir = os.path.join(root, "docker")
    if os.path.lexists(docker_dir):
        if not force:
            raise FileExistsError(f"{docker_dir} exists (use --force to replace it)")
        shutil.rmtree(docker_dir)
    t0 = time.perf_counter()
    gen = Generator(root, repos, tags, seed, pool, jobs, layer_kib)
    expect = gen.run()
    expect["seconds"] = round(time.perf_counter() - t0, 3)
    return expect


def summary_line(expect: dict[str, Any]) -> str:
    c = expect["counts"]
    return (
        f"repos={c['repos']} tags={c['tags']} manifests={c['manifests']} "
        f"blobs={c['blobs']} files={c['files']} dirs={c['dirs']} bytes={c['bytes']} "
        f"gc_eligible={c['gc_eligible']} seconds={expect['seconds']}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_root", help="registry rootdirectory to write")
    ap.add_argument("--repos", type=int, required=True)
    ap.add_argument("--tags", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--layer-pool",
        type=int,
        default=None,
        help="shared base-layer pool size (default max(64, 2*repos))",
    )
    ap.add_argument(
        "--layer-kib",
        type=int,
        default=0,
        help="average layer size in KiB (default 0: 48-303 byte layers)",
    )
    ap.add_argument("--force", action="store_true", help="replace an existing OUT_ROOT/docker tree")
    ap.add_argument(
        "--jobs",
        type=int,
        default=4,
        help="writer threads (default 4; the tree does not depend on it)",
    )
    ap.add_argument(
        "--expect", metavar="FILE", help="write the expected reference-GC result and counts as JSON"
    )
    a = ap.parse_args(argv)
    try:
        expect = generate(
            a.out_root, a.repos, a.tags, a.seed, a.layer_pool, a.force, a.jobs, a.layer_kib
        )
    except (FileExistsError, ValueError) as e:
        print(f"gen_tree: {e}", file=sys.stderr)
        return 2
    if a.expect:
        with open(a.expect, "w") as f:
            json.dump(expect, f, indent=1)
            f.write("\n")
    print(summary_line(expect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
