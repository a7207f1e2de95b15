"""distribution's own GC tests (``registry/storage/garbagecollect_test.go``, v3 main), ported
to the real 2.8.2 registry.

Upstream builds each state in memory with the storage API and asserts what ``MarkAndSweep``
leaves. Here every state is built through the real registry's HTTP API (push, push by digest,
tag by pushing the same body under a tag, DELETE by digest); the two upstream operations the
2.8.2 API lacks are done on disk the way the upstream test does them, and say so (deleting a
repository's ``_manifests`` or ``_manifests/tags`` folder, and v3's untag, which removes the
``tags/<tag>`` folder). Then, in every mode the upstream case runs (and default mode always):

* regfs's plan (``orphans --json`` in default mode, ``gc --dry-run --json`` in both) is compared
  with ``docker-registry garbage-collect --dry-run [--delete-untagged]`` on the same tree: the
  very same blobs and manifests where the reference is right; where it is wrong (2.8.2's
  ``--delete-untagged`` deletes the children of tagged indexes and, knowing no ``subject``,
  referrers of live images) the difference must be exactly those manifests and the blobs only
  they hold, each one proven live in regfs's marks as "child of" / "referrer of";
* regfs's plan is checked against what the upstream test asserts (its expectation, for v3);
* a real ``regfs gc`` runs on a copy, the registry is started on it, and every image that must
  survive is pulled with every digest verified (absent platforms of a partial index must 404).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from fixtures import build as fx
from typer.testing import CliRunner

from regfs.cli import app
from regfs.graph.mark import Mode, mark
from regfs.scan import scan
from regfs.storage.local import LocalStorage, resolve_root

pytestmark = pytest.mark.registry

MODES = {False: "default", True: "delete_untagged"}


@pytest.fixture(autouse=True)
def _binaries() -> None:
    rr.require_binaries()


# --- building states through the API ---------------------------------------------------------


def image(seed: str, n: int = 2, *, oci: bool = False, arch: str = "amd64") -> fx.Manifest:
    """A small image with ``n`` layers of its own (upstream: random layers)."""
    return fx.image(seed, [fx.layer(f"{seed}-{i}", 300) for i in range(n)], oci=oci, arch=arch)


def push(reg: rr.Registry, repo: str, m: fx.Manifest, ref: str | None = None) -> str:
    """Push an image's blobs and the manifest, by digest (untagged) unless ``ref`` is a tag."""
    for b in m.blobs:
        reg.push_blob(repo, b.data)
    return reg.push_manifest(repo, ref or m.digest, m.body, m.media_type)


def tag(reg: rr.Registry, repo: str, name: str, m: fx.Manifest) -> None:
    """Tag an existing manifest (upstream: ``Tags().Tag``): PUT the same body under the tag."""
    assert reg.push_manifest(repo, name, m.body, m.media_type) == m.digest


def closure(m: fx.Manifest) -> set[str]:
    """The manifest's own blob, config and stored layers."""
    return {m.digest, *(b.digest for b in m.blobs)}


@dataclass(frozen=True)
class Pull:
    repo: str
    ref: str
    absent: tuple[str, ...] = ()


@dataclass
class Stage:
    """One state to collect, with what upstream expects of it."""

    label: str
    root: Path
    # Modes to compare (delete_untagged flags); default mode is always among them.
    modes: tuple[bool, ...]
    # What must pull after a real regfs gc, per mode.
    survivors: dict[bool, list[Pull]]
    # Upstream's expectation: exactly these blobs are deleted (None: upstream does not say).
    expect_deleted: dict[bool, set[str] | None] = field(default_factory=dict)
    # Upstream asserts these manifest revisions survive / go (repo, digest).
    expect_manifests_kept: dict[bool, set[tuple[str, str]]] = field(default_factory=dict)
    # Layer links regfs must remove (repo, digest), per mode.
    expect_links_removed: dict[bool, set[tuple[str, str]]] = field(default_factory=dict)


Case = Callable[[Path], list[Stage]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


def registry(root: Path) -> rr.Registry:
    return rr.Registry(root)


@case
def case_no_deletion_no_effect(tmp: Path) -> list[Stage]:
    """TestNoDeletionNoEffect: three untagged images and an untagged list of two: nothing goes."""
    root, repo = tmp / "root", "palailogos"
    i1, i2, i3 = image("nde-1"), image("nde-2"), image("nde-3")
    lst = fx.index([i1, i2], oci=False)
    with registry(root) as reg:
        for m in (i1, i2, i3):
            push(reg, repo, m)
        push(reg, repo, lst)
    every = [Pull(repo, m.digest) for m in (i1, i2, i3, lst)]
    return [Stage("", root, (False,), {False: every}, {False: set()})]


@case
def case_delete_manifest_if_tag_not_found(tmp: Path) -> list[Stage]:
    """TestDeleteManifestIfTagNotFound: "test" tagged on each manifest in turn; the one it left
    is untagged and goes with its layers under --delete-untagged."""
    root, repo = tmp / "root", "deletemanifests"
    m1, m2 = image("dmitnf-1", 3), image("dmitnf-2", 3)
    with registry(root) as reg:
        push(reg, repo, m1)
        push(reg, repo, m2)
        tag(reg, repo, "test", m1)
        tag(reg, repo, "test", m2)
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: [Pull(repo, "test"), Pull(repo, m1.digest)], True: [Pull(repo, "test")]},
            {False: set(), True: closure(m1)},
            {True: {(repo, m2.digest)}},
        )
    ]


@case
def case_delete_manifest_index_with_dangling_references(tmp: Path) -> list[Stage]:
    """TestDeleteManifestIndexWithDanglingReferences: an OCI index tagged "test" of image1 and
    image2; image2 deleted by digest. image2 can no longer be served: its config and layers go
    (its own blob stays, the index names it); the index and image1 stay, in both modes."""
    root, repo = tmp / "root", "deletemanifests"
    i1, i2 = image("dmiwdr-1", oci=True), image("dmiwdr-2", oci=True, arch="arm64")
    idx = fx.index([i1, i2])
    with registry(root) as reg:
        push(reg, repo, i1)
        push(reg, repo, i2)
        push(reg, repo, idx, "test")
        reg.delete_manifest(repo, i2.digest)
    below_i2 = closure(i2) - {i2.digest}
    pulls = [Pull(repo, "test", absent=(i2.digest,)), Pull(repo, i1.digest)]
    kept = {(repo, idx.digest), (repo, i1.digest)}
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: pulls, True: pulls},
            {False: below_i2, True: below_i2},
            {False: kept, True: kept},
        )
    ]


@case
def case_delete_manifest_index_if_tag_not_found(tmp: Path) -> list[Stage]:
    """TestDeleteManifestIndexIfTagNotFound: a tagged OCI index keeps everything; once untagged
    (v3's tag DELETE removes ``tags/<tag>``; 2.8.2 has no untag, so the folder is removed on
    disk) --delete-untagged removes everything."""
    root, repo = tmp / "root", "deletemanifests"
    i1, i2 = image("dmiitnf-1", oci=True), image("dmiitnf-2", oci=True, arch="arm64")
    idx = fx.index([i1, i2])
    with registry(root) as reg:
        push(reg, repo, i1)
        push(reg, repo, i2)
        push(reg, repo, idx, "test")
    untagged = rr.copy_tree(root, tmp / "untagged")
    shutil.rmtree(untagged / "docker/registry/v2/repositories" / repo / "_manifests/tags/test")
    tagged_pulls = [Pull(repo, "test")]
    every = closure(i1) | closure(i2) | {idx.digest}
    return [
        Stage(
            "tagged",
            root,
            (False, True),
            {False: tagged_pulls, True: tagged_pulls},
            {False: set(), True: set()},
            {True: {(repo, idx.digest), (repo, i1.digest), (repo, i2.digest)}},
        ),
        Stage(
            "untagged",
            untagged,
            (False, True),
            {False: [Pull(repo, idx.digest)], True: []},
            {False: set(), True: every},
        ),
    ]


@case
def case_gc_with_unused_layer_link_path(tmp: Path) -> list[Stage]:
    """TestGCWithUnusedLayerLinkPath: an untagged image goes under --delete-untagged, and so do
    its ``_layers`` links (2.8.2 leaves them behind: a documented difference)."""
    root, repo = tmp / "root", "unusedlayerlink"
    m = image("ullp")
    with registry(root) as reg:
        push(reg, repo, m)
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: [Pull(repo, m.digest)], True: []},
            {False: set(), True: closure(m)},
            expect_links_removed={True: {(repo, b.digest) for b in m.blobs}},
        )
    ]


@case
def case_gc_with_unknown_repository(tmp: Path) -> list[Stage]:
    """TestGCWithUnknownRepository: a tagged image whose ``_manifests/tags`` folder is then
    deleted on disk; --delete-untagged must not fail (the image is untagged now and goes)."""
    root, repo = tmp / "root", "nonexistentrepo"
    m = image("gcur")
    with registry(root) as reg:
        push(reg, repo, m, "image")
    shutil.rmtree(root / "docker/registry/v2/repositories" / repo / "_manifests/tags")
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: [Pull(repo, m.digest)], True: []},
            {False: set(), True: closure(m)},
        )
    ]


@case
def case_gc_with_missing_manifests(tmp: Path) -> list[Stage]:
    """TestGCWithMissingManifests: a repository whose ``_manifests`` folder is deleted on disk
    holds nothing: every blob goes."""
    root, repo = tmp / "root", "testrepo"
    m = image("gcmm")
    with registry(root) as reg:
        push(reg, repo, m, "latest")
    shutil.rmtree(root / "docker/registry/v2/repositories" / repo / "_manifests")
    return [Stage("", root, (False,), {False: []}, {False: closure(m)})]


@case
def case_deletion_has_effect(tmp: Path) -> list[Stage]:
    """TestDeletionHasEffect: of three images, two deleted by digest: their blobs go."""
    root, repo = tmp / "root", "komnenos"
    i1, i2, i3 = image("dhe-1"), image("dhe-2"), image("dhe-3")
    with registry(root) as reg:
        for m in (i1, i2, i3):
            push(reg, repo, m)
        reg.delete_manifest(repo, i2.digest)
        reg.delete_manifest(repo, i3.digest)
    return [
        Stage(
            "",
            root,
            (False,),
            {False: [Pull(repo, i1.digest)]},
            {False: closure(i2) | closure(i3)},
        )
    ]


@case
def case_deletion_with_shared_layer(tmp: Path) -> list[Stage]:
    """TestDeletionWithSharedLayer: manifest2 shares a layer with manifest1 and is deleted:
    every layer of manifest1 stays."""
    root, repo = tmp / "root", "tzimiskes"
    own1 = [fx.layer(f"dwsl-1-{i}", 300) for i in range(3)]
    own2 = [fx.layer(f"dwsl-2-{i}", 300) for i in range(3)]
    m1 = fx.image("dwsl-1", own1)
    m2 = fx.image("dwsl-2", [*own2, own1[0]])
    with registry(root) as reg:
        push(reg, repo, m1)
        push(reg, repo, m2)
        reg.delete_manifest(repo, m2.digest)
    return [
        Stage(
            "",
            root,
            (False,),
            {False: [Pull(repo, m1.digest)]},
            {False: closure(m2) - closure(m1)},
        )
    ]


@case
def case_orphan_blob_deleted(tmp: Path) -> list[Stage]:
    """TestOrphanBlobDeleted: a blob uploaded but never referenced goes."""
    root, repo = tmp / "root", "michael_z_doukas"
    lone = fx.layer("obd-orphan", 300)
    m = image("obd")
    with registry(root) as reg:
        reg.push_blob(repo, lone.data)
        push(reg, repo, m)
    return [Stage("", root, (False,), {False: [Pull(repo, m.digest)]}, {False: {lone.digest}})]


@case
def case_tagged_manifestlist_with_untagged_manifest(tmp: Path) -> list[Stage]:
    """TestTaggedManifestlistWithUntaggedManifest: a tagged manifest list of untagged images:
    nothing goes under --delete-untagged (2.8.2 deletes the children: documented)."""
    root, repo = tmp / "root", "foo/taggedlist/untaggedmanifest"
    i1, i2 = image("tlum-1"), image("tlum-2", arch="arm64")
    lst = fx.index([i1, i2], oci=False)
    with registry(root) as reg:
        push(reg, repo, i1)
        push(reg, repo, i2)
        push(reg, repo, lst, "test")
    pulls = [Pull(repo, "test")]
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: pulls, True: pulls},
            {False: set(), True: set()},
            {True: {(repo, lst.digest), (repo, i1.digest), (repo, i2.digest)}},
        )
    ]


@case
def case_untagged_manifestlist_with_untagged_manifest(tmp: Path) -> list[Stage]:
    """TestUnTaggedManifestlistWithUntaggedManifest: nothing tagged: everything goes."""
    root, repo = tmp / "root", "foo/untaggedlist/untaggedmanifest"
    i1, i2 = image("ulum-1"), image("ulum-2", arch="arm64")
    lst = fx.index([i1, i2], oci=False)
    with registry(root) as reg:
        push(reg, repo, i1)
        push(reg, repo, i2)
        push(reg, repo, lst)
    every = closure(i1) | closure(i2) | {lst.digest}
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: [Pull(repo, lst.digest)], True: []},
            {False: set(), True: every},
        )
    ]


@case
def case_untagged_manifestlist_with_tagged_manifest(tmp: Path) -> list[Stage]:
    """TestUnTaggedManifestlistWithTaggedManifest: the images are tagged, the list is not:
    only the list goes."""
    root, repo = tmp / "root", "foo/untaggedlist/taggedmanifest"
    i1, i2 = image("ultm-1"), image("ultm-2", arch="arm64")
    lst = fx.index([i1, i2], oci=False)
    with registry(root) as reg:
        push(reg, repo, i1, "image1")
        push(reg, repo, i2, "image2")
        push(reg, repo, lst)
    return [
        Stage(
            "",
            root,
            (False, True),
            {
                False: [Pull(repo, "image1"), Pull(repo, "image2"), Pull(repo, lst.digest)],
                True: [Pull(repo, "image1"), Pull(repo, "image2")],
            },
            {False: set(), True: {lst.digest}},
            {True: {(repo, i1.digest), (repo, i2.digest)}},
        )
    ]


@case
def case_tagged_manifestlist_with_deleted_reference(tmp: Path) -> list[Stage]:
    """TestTaggedManifestlistWithDeletedReference: an (untagged) list whose images were deleted
    by digest: everything goes under --delete-untagged; in default mode the list stays and keeps
    the children's manifest blobs only (what the reference does)."""
    root, repo = tmp / "root", "foo/untaggedlist/deleteref"
    i1, i2 = image("tlwdr-1"), image("tlwdr-2", arch="arm64")
    lst = fx.index([i1, i2], oci=False)
    with registry(root) as reg:
        push(reg, repo, i1)
        push(reg, repo, i2)
        push(reg, repo, lst)
        reg.delete_manifest(repo, i1.digest)
        reg.delete_manifest(repo, i2.digest)
    every = closure(i1) | closure(i2) | {lst.digest}
    return [
        Stage(
            "",
            root,
            (False, True),
            {False: [Pull(repo, lst.digest, absent=(i1.digest, i2.digest))], True: []},
            {False: every - {lst.digest, i1.digest, i2.digest}, True: every},
        )
    ]


# --- running regfs and the reference on a stage ----------------------------------------------


def invoke(*args: str) -> tuple[int, dict[str, Any]]:
    res = CliRunner().invoke(app, list(args))
    assert res.stdout.strip(), res.stderr
    return res.exit_code, json.loads(res.stdout)


def gc_args(root: Path, delete_untagged: bool) -> list[str]:
    args = ["gc", str(root), "--json", "--min-age", "0"]
    return [*args, "--delete-untagged"] if delete_untagged else args


def live_reasons(root: Path) -> dict[tuple[str, str], str]:
    """(repository, manifest) -> why regfs keeps it live under --delete-untagged."""
    snap = scan(LocalStorage(resolve_root(str(root))), workers=1)
    marks = mark(snap, Mode.UNTAGGED)
    return {(repo, d): why for repo, live in marks.live.items() for d, why in live.items()}


def manifest_closure(root: Path, digest: str) -> set[str]:
    """A stored manifest's own blob, config and layers, read from the tree."""
    v2 = root / "docker/registry/v2"
    alg, hx = digest.split(":")
    doc = json.loads((v2 / "blobs" / alg / hx[:2] / hx / "data").read_bytes())
    out = {digest}
    if doc.get("config"):
        out.add(doc["config"]["digest"])
    out.update(layer["digest"] for layer in doc.get("layers") or [])
    return out


NO_TAGS_FOLDER = "failed to retrieve tags unknown repository"


def untagged_repositories(root: Path) -> list[str]:
    """Repositories with manifest revisions but no ``_manifests/tags`` folder."""
    base = root / "docker/registry/v2/repositories"
    return sorted(
        p.parent.parent.relative_to(base).as_posix()
        for p in base.rglob("_manifests/revisions")
        if not (p.parent / "tags").exists()
    )


def compare(stage: Stage, delete_untagged: bool) -> dict[str, Any]:
    """regfs's plan against the reference's on the same tree; returns regfs's plan."""
    root = stage.root
    ref = rr.reference_gc(root, dry_run=True, delete_untagged=delete_untagged)
    code, plan = invoke(*gc_args(root, delete_untagged), "--dry-run")
    assert code == 0, plan
    ours = {b["digest"] for b in plan["blobs"]}
    ours_manifests = {(m["repository"], m["digest"]) for m in plan["manifests"]}
    if not delete_untagged:
        code, orphans = invoke("orphans", str(root), "--json")
        assert {b["digest"] for b in orphans["orphaned_blobs"]} == ours
        assert ours_manifests == set()
    if delete_untagged and not ref.ok and NO_TAGS_FOLDER in (ref.error or ""):
        # 2.8.2 --delete-untagged aborts on a repository that has manifests but no
        # _manifests/tags folder (never tagged, or tags removed): upstream fixed it in v3
        # (TestGCWithUnknownRepository). A documented difference; the reference's answer is
        # then read on a copy with an empty tags folder, which means the same to both tools.
        bare = untagged_repositories(root)
        assert bare, ref.output
        fixed = rr.copy_tree(root, root.parent / f"{root.name}-with-tags-folders")
        for repo in bare:
            (fixed / "docker/registry/v2/repositories" / repo / "_manifests/tags").mkdir()
        ref = rr.reference_gc(fixed, dry_run=True, delete_untagged=True)
        shutil.rmtree(fixed)
    assert ref.ok, ref.output
    theirs_manifests = set(ref.manifests_by_repo)
    assert ours_manifests <= theirs_manifests
    kept = theirs_manifests - ours_manifests
    if kept:
        # The documented difference: 2.8.2 --delete-untagged deletes children of tagged
        # indexes and referrers of live images; regfs keeps exactly those, and what they hold.
        assert delete_untagged
        why = live_reasons(root)
        for key in kept:
            assert why.get(key, "").startswith(("child of ", "referrer of ")), (key, why)
    held = set().union(*(manifest_closure(root, d) for _, d in kept)) if kept else set()
    assert ours == ref.blobs - held, (sorted(ours), sorted(ref.blobs), sorted(held))
    return plan


def collect_and_pull(stage: Stage, delete_untagged: bool, plan: dict[str, Any], tmp: Path) -> None:
    """A real regfs gc on a copy, then every survivor pulls from the registry serving it."""
    copy = rr.copy_tree(stage.root, tmp / f"run-{MODES[delete_untagged]}")
    code, done = invoke(*gc_args(copy, delete_untagged), "--yes", "--skip-live-check")
    assert code == 0 and done["status"] == "done", done
    assert {b["digest"] for b in done["blobs"]} == {b["digest"] for b in plan["blobs"]}
    present = {d for d, _ in rr.iter_blobs(copy)}
    assert not present & {b["digest"] for b in plan["blobs"]}
    repos = copy / "docker/registry/v2/repositories"
    for repo, digest in stage.expect_manifests_kept.get(delete_untagged, set()):
        alg, hx = digest.split(":")
        assert (repos / repo / "_manifests/revisions" / alg / hx / "link").is_file(), digest
    for repo, digest in stage.expect_links_removed.get(delete_untagged, set()):
        alg, hx = digest.split(":")
        assert not (repos / repo / "_layers" / alg / hx).exists(), (repo, digest)
    with registry(copy) as reg:
        for p in stage.survivors[delete_untagged]:
            reg.pull(p.repo, p.ref, absent=p.absent)


@pytest.mark.parametrize("name", sorted(CASES))
def test_upstream_gc_case(name: str, tmp_path: Path) -> None:
    for stage in CASES[name](tmp_path):
        for delete_untagged in sorted(set(stage.modes) | {False}):
            plan = compare(stage, delete_untagged)
            expected = stage.expect_deleted.get(delete_untagged)
            if expected is not None:
                got = {b["digest"] for b in plan["blobs"]}
                assert got == expected, (stage.label, MODES[delete_untagged])
            runs = tmp_path / "runs" / (stage.label or "stage")
            collect_and_pull(stage, delete_untagged, plan, runs)


def test_every_upstream_case_is_ported() -> None:
    """The 14 test functions of garbagecollect_test.go (v3 main) that build a state and
    collect it, one case each."""
    assert len(CASES) == 14
