"""Compatibility with the reference: `regfs orphans` names exactly the blobs
`docker-registry garbage-collect --dry-run` names, run live on every fixture; on the damaged
tree the reference gives up while regfs reports every injected fault (the documented
difference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from typer.testing import CliRunner

from regfs.cli import app

pytestmark = pytest.mark.registry

HEALTHY = ["demo", "shared", "multiarch", "partial", "referrers", "schema1", "uploads"]
V2 = "docker/registry/v2/"

# Which finding kind (or dangling reference) each injected damage must produce.
EXPECTED = {
    "missing-blob-data": ("dangling", "layer"),
    "link-mismatch": ("problem", "link_mismatch"),
    "stray-tmp-file": ("problem", "unknown_entry"),
    "garbage-layer-link": ("problem", "bad_link"),
    "dangling-revision": ("dangling", "revision"),
    "stray-file": ("problem", "unknown_entry"),
    "manifest-not-json": ("problem", "unparseable_manifest"),
    "empty-link": ("problem", "empty_link"),
    "trailing-newline-link": ("problem", "bad_link"),
    "symlink-outside": ("problem", "symlink"),
    # A flipped byte keeps size and name: only `regfs check --verify-digests` can see it.
    "bit-flip": ("check", "digest_mismatch"),
}


@pytest.fixture(autouse=True)
def _binaries() -> None:
    rr.require_binaries()


def orphans(root: Path) -> tuple[int, dict[str, Any]]:
    res = CliRunner().invoke(app, ["orphans", str(root), "--json"])
    return res.exit_code, json.loads(res.stdout)


@pytest.mark.parametrize("name", HEALTHY)
@pytest.mark.parametrize("delete_untagged", [False, True])
def test_orphans_name_exactly_the_reference_blobs(
    tmp_path: Path, name: str, delete_untagged: bool
) -> None:
    meta = rr.load_fixture_meta(name)
    root = rr.extract_fixture(name, tmp_path / "root")
    ref = rr.reference_gc(root, dry_run=True, schema1=meta["registry_config"]["schema1"])
    assert ref.exit_code == 0, ref.output
    code, out = orphans(root)
    assert code == 0
    assert sorted(b["digest"] for b in out["orphaned_blobs"]) == sorted(ref.blobs)
    if delete_untagged:
        # The reference's --delete-untagged also drops index children and referrers of live
        # images (its bugs); regfs's untagged list is the reference's minus exactly those.
        ref_u = rr.reference_gc(
            root, dry_run=True, delete_untagged=True, schema1=meta["registry_config"]["schema1"]
        )
        ours = {(u["repository"], u["digest"]) for u in out["untagged_manifests"]}
        theirs = {(repo, digest) for repo, digest in ref_u.manifests_by_repo}
        assert ours <= theirs
        live_kept = theirs - ours
        by_key = {(i["repo"], i["digest"]): i for i in meta["images"]}
        for repo, digest in live_kept:
            image = by_key[(repo, digest)]
            parents = [
                i for i in meta["images"] if i["repo"] == repo and digest in (i["children"] or [])
            ]
            assert image["subject"] or parents, (repo, digest)


def test_damaged_tree_reference_gives_up_regfs_reports_every_fault(tmp_path: Path) -> None:
    meta = rr.load_fixture_meta("damaged")
    root = rr.extract_fixture("damaged", tmp_path / "root")
    ref = rr.reference_gc(root, dry_run=True)
    assert ref.exit_code != 0  # "failed to mark: ... invalid character"
    assert ref.blobs == set() or not ref.blobs
    code, out = orphans(root)
    assert code == 1
    problems = {(p["kind"], p["path"]) for p in out["problems"]}
    dangling = {(d["kind"], d["digest"]) for d in out["dangling"]}
    res = CliRunner().invoke(app, ["check", str(root), "--verify-digests", "--json"])
    checked = {(p["kind"], p.get("digest")) for p in json.loads(res.stdout)["problems"]}
    ids = {d["id"] for d in meta["damage"]}
    assert ids == set(EXPECTED), "a new damage needs an expectation here"
    for d in meta["damage"]:
        where, kind = EXPECTED[d["id"]]
        path = d["path"].removeprefix(V2)
        if where == "problem":
            assert any(
                k == kind and (p == path or p.startswith(path + "/") or path.startswith(p))
                for k, p in problems
            ), (d["id"], kind, path)
        elif where == "dangling":
            assert (kind, d["digest"]) in dangling, d["id"]
        else:
            assert (kind, d["digest"]) in checked, d["id"]
