"""gc against the real registry: after `regfs gc`, every image that must survive still pulls
(digests verified) from a registry serving the collected tree, what must go is gone, and in
default mode the blobs left are exactly those the reference `garbage-collect` leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from typer.testing import CliRunner

from regfs.cli import app

HEALTHY = ["demo", "shared", "multiarch", "partial", "referrers", "schema1", "uploads"]

pytestmark = pytest.mark.registry


@pytest.fixture(autouse=True)
def _binaries() -> None:
    rr.require_binaries()


def survivors(
    meta: dict[str, Any], untagged_mode: bool
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(repo, digest) manifests that must pull after gc, and those that must be gone."""
    images = meta["images"]
    present = {(i["repo"], i["digest"]) for i in images if i["state"] != "deleted"}
    if not untagged_mode:
        return present, set()
    live = {(repo, d) for repo, tags in meta["tags"].items() for d in tags.values()}
    while True:
        grown = {
            (i["repo"], c)
            for i in images
            if (i["repo"], i["digest"]) in live
            for c in i.get("children") or []
        }
        grown |= {
            (i["repo"], i["digest"])
            for i in images
            if i.get("subject") and (i["repo"], i["subject"]) in live
        }
        if grown <= live:
            break
        live |= grown
    return live & present, present - live


def run_regfs(*args: str) -> tuple[int, dict[str, Any]]:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else {}


def tree_state(root: Path) -> dict[Path, tuple[int, float]]:
    """Every path below root (not regfs's own state) with size and mtime, links not followed."""
    out = {}
    for p in root.rglob("*"):
        if ".regfs" in p.parts:
            continue
        st = p.lstat()
        out[p] = (st.st_size, st.st_mtime)
    return out


def blobs_on_disk(root: Path) -> set[str]:
    return {d for d, _ in rr.iter_blobs(root)}


def pull_everything(
    root: Path, meta: dict[str, Any], must: set[tuple[str, str]], gone: set[tuple[str, str]]
) -> None:
    cfg = meta["registry_config"]
    # A partial index's children deleted by digest must stay absent; its other platforms pull.
    absent = {i["digest"] for i in meta["images"] if i["state"] == "deleted"}
    with rr.Registry(root, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        for repo, tags in meta["tags"].items():
            for tag, digest in tags.items():
                if (repo, digest) in must:
                    reg.pull(repo, tag, absent=absent)
        for repo, digest in sorted(must):
            reg.pull(repo, digest, absent=absent)
        for repo, digest in sorted(gone):
            with pytest.raises(rr.RegistryHTTPError) as info:
                reg.get_manifest(repo, digest)
            assert info.value.status == 404, (repo, digest)


@pytest.mark.parametrize("name", HEALTHY)
def test_default_mode_matches_reference_and_keeps_every_pull(tmp_path: Path, name: str) -> None:
    meta = rr.load_fixture_meta(name)
    ours = rr.extract_fixture(name, tmp_path / "ours")
    theirs = rr.extract_fixture(name, tmp_path / "theirs")
    ref = rr.reference_gc(theirs, dry_run=False, schema1=meta["registry_config"]["schema1"])
    assert ref.exit_code == 0, ref.output
    code, out = run_regfs("gc", str(ours), "--yes", "--min-age", "0")
    assert code == 0, out
    assert out["status"] == "done"
    assert blobs_on_disk(ours) == blobs_on_disk(theirs)
    assert sorted(b["digest"] for b in out["blobs"]) == meta["reference_gc"]["default"]["blobs"]
    must, gone = survivors(meta, untagged_mode=False)
    pull_everything(ours, meta, must, gone)
    # A second run converges: nothing left to do.
    code, again = run_regfs("gc", str(ours), "--yes", "--min-age", "0")
    assert code == 0 and again["blobs"] == [] and again["layer_links"] == []


@pytest.mark.parametrize("name", HEALTHY)
def test_delete_untagged_keeps_children_and_referrers(tmp_path: Path, name: str) -> None:
    meta = rr.load_fixture_meta(name)
    root = rr.extract_fixture(name, tmp_path / "root")
    code, out = run_regfs("gc", str(root), "--yes", "--min-age", "0", "--delete-untagged")
    assert code == 0, out
    must, gone = survivors(meta, untagged_mode=True)
    deleted = {(m["repository"], m["digest"]) for m in out["manifests"]}
    assert deleted == gone
    pull_everything(root, meta, must, gone)


@pytest.mark.parametrize("name", ["multiarch", "referrers", "demo"])
def test_reference_breaks_what_regfs_keeps(tmp_path: Path, name: str) -> None:
    """The documented difference: 2.8.2 `--delete-untagged` deletes children of tagged
    multi-arch images (distribution #3178) and every referrer (it ignores `subject`)."""
    meta = rr.load_fixture_meta(name)
    theirs = rr.extract_fixture(name, tmp_path / "theirs")
    ref = rr.reference_gc(theirs, dry_run=False, delete_untagged=True)
    assert ref.exit_code == 0, ref.output
    must, _gone = survivors(meta, untagged_mode=True)
    cfg = meta["registry_config"]
    broken = []
    with rr.Registry(theirs, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        for repo, digest in sorted(must):
            try:
                reg.pull(repo, digest)
            except (AssertionError, rr.RegistryHTTPError) as exc:
                broken.append((repo, digest, str(exc)))
    assert broken, "expected the reference to break a multi-arch image or drop a referrer"
    ours = rr.extract_fixture(name, tmp_path / "ours")
    code, _ = run_regfs("gc", str(ours), "--yes", "--min-age", "0", "--delete-untagged")
    assert code == 0
    pull_everything(ours, meta, must, set())


def test_damaged_tree_fails_closed_then_force_keeps_what_pulled(tmp_path: Path) -> None:
    meta = rr.load_fixture_meta("damaged")
    root = rr.extract_fixture("damaged", tmp_path / "root")
    before = tree_state(root)
    code, out = run_regfs("gc", str(root), "--yes", "--min-age", "0")
    assert code == 3
    assert tree_state(root) == before
    # Which tags pulled from the damaged tree before gc?
    cfg = meta["registry_config"]
    pulled: list[tuple[str, str]] = []
    with rr.Registry(root, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        for repo, tags in meta["tags"].items():
            for tag in tags:
                try:
                    reg.pull(repo, tag)
                    pulled.append((repo, tag))
                except (AssertionError, rr.RegistryHTTPError):
                    pass
    assert pulled, "some images of the damaged tree should still pull"
    code, out = run_regfs(
        "gc", str(root), "--yes", "--min-age", "0", "--force", "--skip-live-check"
    )
    assert code == 0, out
    with rr.Registry(root, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        for repo, tag in pulled:
            reg.pull(repo, tag)


def test_rm_repository_and_tag_then_gc(tmp_path: Path) -> None:
    meta = rr.load_fixture_meta("shared")
    root = rr.extract_fixture("shared", tmp_path / "root")
    code, out = run_regfs(
        "rm", str(root), "org/team", "base/os:latest", "--yes", "--gc", "--min-age", "0"
    )
    assert code == 0, out
    cfg = meta["registry_config"]
    with rr.Registry(root, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        catalog = reg.catalog()
        assert "org/team" not in catalog
        assert "org/team/app" in catalog  # a child repository stays
        assert "latest" not in reg.tags("base/os")
        for repo, tags in meta["tags"].items():
            if repo == "org/team":
                continue
            for tag in tags:
                if (repo, tag) != ("base/os", "latest"):
                    reg.pull(repo, tag)
