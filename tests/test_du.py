"""`regfs du`: sizes per repository and per tag, checked against gc's planner by brute force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from builder import StoreBuilder, hexof
from typer.testing import CliRunner

from regfs import cli
from regfs.errors import UsageError
from regfs.gc.plan import GcOptions
from regfs.gc.refresh import build_plan
from regfs.gc.steps import Step
from regfs.reports.du import DuReport, RepoUsage, du
from regfs.reports.orphans import orphans
from regfs.scan import scan
from regfs.storage.local import LocalStorage, resolve_root

runner = CliRunner()

FIXTURES = rr.ALL_FIXTURES
REPO_PARTS = ("_manifests", "_layers", "_uploads")


def planned_blob_bytes(root: Path) -> int:
    """Bytes of the blobs `regfs gc` (default mode, no grace period) would delete."""
    snap = scan(LocalStorage(resolve_root(root)))
    return sum(a.size for a in build_plan(snap, GcOptions(min_age=0)).by_step(Step.BLOB))


def brute_force_exclusive(root: Path, repo: str, work: Path) -> int:
    """What `rm REPO` + `gc` reclaims beyond `gc` alone, measured on a copy: the repository's
    own folders are deleted (child repositories stay), then gc is planned."""
    copy = rr.copy_tree(root, work)
    base = copy / "docker" / "registry" / "v2" / "repositories" / repo
    for part in REPO_PARTS:
        if (base / part).exists():
            shutil.rmtree(base / part)
    return planned_blob_bytes(copy) - planned_blob_bytes(root)


def rows(r: DuReport) -> dict[str, RepoUsage]:
    return {row.name: row for row in r.repositories}


def assert_consistent(r: DuReport) -> None:
    for row in r.repositories:
        assert 0 <= row.exclusive_bytes <= row.total_bytes
        assert row.shared_bytes + row.exclusive_bytes == row.total_bytes
        assert 0 <= row.untagged_bytes <= row.exclusive_bytes
    assert r.referenced_bytes + r.orphaned_bytes == r.disk_bytes
    assert sum(row.exclusive_bytes for row in r.repositories) <= r.referenced_bytes
    assert sum(row.untagged_bytes for row in r.repositories) <= r.untagged_bytes
    assert r.untagged_bytes <= r.referenced_bytes
    assert max((row.total_bytes for row in r.repositories), default=0) <= r.referenced_bytes
    assert r.repo_total_bytes == sum(row.total_bytes for row in r.repositories)
    if r.referenced_bytes:
        assert r.dedup_ratio == pytest.approx(r.repo_total_bytes / r.referenced_bytes)
        assert r.dedup_ratio >= 1.0


def sizes(*blobs: Any) -> int:
    return sum(b.size for b in blobs)


# --- unit tests -----------------------------------------------------------------------------


def test_shared_and_exclusive(builder: StoreBuilder) -> None:
    base = builder.layer("base")
    a = builder.image("a", tags=["1"], layers=[base, builder.layer("a")])
    b = builder.image("b", tags=["1"], layers=[base])
    orphan = builder.orphan_blob(b"orphan" * 100)
    r = du(builder.scan())
    assert_consistent(r)
    ra, rb = rows(r)["a"], rows(r)["b"]
    assert a.config is not None and b.config is not None
    assert ra.total_bytes == a.size + sizes(a.config, *a.layers)
    assert ra.shared_bytes == rb.shared_bytes == base.size
    assert ra.exclusive_bytes == a.size + sizes(a.config, a.layers[1])
    assert rb.exclusive_bytes == b.size + b.config.size
    assert (ra.tags, ra.manifests) == (1, 1)
    assert r.orphaned_bytes == orphan.size
    assert r.disk_bytes == r.referenced_bytes + orphan.size
    assert r.referenced_bytes == ra.total_bytes + rb.total_bytes - base.size
    assert r.dedup_ratio == pytest.approx((ra.total_bytes + rb.total_bytes) / r.referenced_bytes)


def test_same_manifest_in_two_repositories_is_all_shared(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["1"])
    builder.push_manifest("mirror/app", img.data, ["1"])
    for blob in [img.config, *img.layers]:
        assert blob is not None
        builder.link_layer("mirror/app", blob.digest)
    r = du(builder.scan())
    assert_consistent(r)
    for row in r.repositories:
        assert row.exclusive_bytes == 0 and row.shared_bytes == row.total_bytes > 0
    assert r.dedup_ratio == pytest.approx(2.0)


def test_untagged_bytes(builder: StoreBuilder) -> None:
    base = builder.layer("base")
    old = builder.image("app", tags=["1"], layers=[base, builder.layer("old")])
    new = builder.image("app", tags=["1"], layers=[base, builder.layer("new")])
    assert old.config is not None and new.config is not None
    # the same untagged manifest in two repositories: freed, but neither repository's alone
    both = builder.image("x", layers=[builder.layer("both")])
    builder.push_manifest("y", both.data)
    builder.image("y", tags=["keep"])
    r = du(builder.scan())
    assert_consistent(r)
    only_old = old.size + old.config.size + old.layers[1].size
    assert rows(r)["app"].untagged_bytes == only_old
    assert rows(r)["x"].untagged_bytes == rows(r)["y"].untagged_bytes == 0
    assert both.config is not None
    assert r.untagged_bytes == only_old + both.size + both.config.size + both.layers[0].size
    assert r.untagged_bytes == orphans(builder.scan()).untagged_bytes


def test_referrers_and_index_children_count_for_their_repository(builder: StoreBuilder) -> None:
    amd = builder.image("multi", platform="linux/amd64")
    arm = builder.image("multi", platform="linux/arm64/v8")
    idx = builder.index("multi", children=[amd, arm], tags=["v1"])
    sig = builder.referrer("multi", subject=idx)
    r = du(builder.scan(), by="tag")
    row = rows(r)["multi"]
    expected = {idx.digest, sig.digest} | amd.blob_digests | arm.blob_digests | sig.blob_digests
    snap = builder.scan()
    assert row.total_bytes == sum(snap.blobs[d].known_size for d in expected)
    assert row.exclusive_bytes == row.total_bytes and row.untagged_bytes == 0
    assert row.tag_usage is not None
    (v1,) = row.tag_usage
    assert v1.name == "v1" and v1.digest == idx.digest
    assert v1.total_bytes == v1.exclusive_bytes == row.total_bytes


def test_per_tag_exclusive(builder: StoreBuilder) -> None:
    base = builder.layer("base")
    one = builder.image("app", tags=["1", "same"], layers=[base, builder.layer("one")])
    two = builder.image("app", tags=["2"], layers=[base, builder.layer("two")])
    gone = builder.layer("shared with an untagged manifest")
    three = builder.image("app", tags=["3"], layers=[gone])
    untagged = builder.image("app", layers=[gone], label="untagged")
    assert untagged.digest != three.digest
    assert two.config is not None and three.config is not None
    r = du(builder.scan(), by="tag", sort="name")
    tags = {t.name: t for t in rows(r)["app"].tag_usage or []}
    assert [t for t in tags] == ["1", "2", "3", "same"]
    assert tags["1"].exclusive_bytes == tags["same"].exclusive_bytes == 0
    assert tags["1"].total_bytes == one.size + sizes(one.config, *one.layers)
    assert tags["2"].exclusive_bytes == two.size + sizes(two.config, two.layers[1])
    assert tags["3"].exclusive_bytes == three.size + three.config.size
    assert tags["3"].total_bytes == three.size + three.config.size + gone.size
    by_excl = du(builder.scan(), by="tag")
    names = [t.name for t in rows(by_excl)["app"].tag_usage or []]
    assert names[0] == "2" and names[-2:] == ["1", "same"]


def test_unreadable_tag_counts_nothing_and_keeps_its_manifest(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["ok", "bad"])
    builder.write("repositories/app/_manifests/tags/bad/current/link", b"garbage")
    tags = {t.name: t for t in rows(du(builder.scan(), by="tag"))["app"].tag_usage or []}
    assert tags["bad"].digest is None and tags["bad"].total_bytes == 0
    assert tags["ok"].digest == img.digest and tags["ok"].exclusive_bytes > 0


def test_sort_and_top(builder: StoreBuilder) -> None:
    builder.image("small", tags=["1"], layers=[builder.layer("s")])
    builder.image("big", tags=["1"], layers=[builder.layer("b" * 5000)])
    old = builder.image("mid", tags=["1"], layers=[builder.layer("m" * 2000)])
    builder.image("mid", tags=["1"], layers=[builder.layer("m2")])
    assert old.digest
    snap = builder.scan()
    assert [r.name for r in du(snap, sort="name").repositories] == ["big", "mid", "small"]
    assert [r.name for r in du(snap).repositories] == ["mid", "big", "small"]
    assert du(snap, sort="total").repositories[0].name == "mid"
    assert du(snap, sort="untagged").repositories[0].name == "mid"
    assert [r.name for r in du(snap, sort="shared").repositories] == ["big", "mid", "small"]
    top = du(snap, sort="name", top=2)
    assert [r.name for r in top.repositories] == ["big", "mid"]
    assert top.repository_count == 3
    # totals stay registry-wide
    assert top.referenced_bytes == du(snap).referenced_bytes
    assert top.dedup_ratio == du(snap).dedup_ratio
    for bad in ({"sort": "size"}, {"by": "blob"}, {"top": 0}):
        with pytest.raises(UsageError):
            du(snap, **bad)


def test_protected_blobs_of_an_unreadable_manifest(builder: StoreBuilder, tmp_path: Path) -> None:
    """A repository with an unparseable manifest keeps every blob it links (gc keeps them),
    so they are its blobs too; exclusive still equals rm + gc minus gc."""
    builder.image("ok", tags=["1"])
    img = builder.image("hurt", tags=["1"])
    extra = builder.orphan_blob(b"linked, referenced by nothing readable", repo="hurt")
    path = builder.path(f"blobs/sha256/{hexof(img.digest)[:2]}/{hexof(img.digest)}/data")
    path.write_bytes(b"not json")
    r = du(builder.scan())
    assert_consistent(r)
    assert r.orphaned_bytes == 0
    hurt = rows(r)["hurt"]
    assert hurt.total_bytes >= extra.size
    for row in r.repositories:
        bf = brute_force_exclusive(builder.root, row.name, tmp_path / f"bf-{row.name}")
        assert row.exclusive_bytes == bf, row.name


def test_brute_force_on_a_built_tree(builder: StoreBuilder, tmp_path: Path) -> None:
    base = builder.layer("base")
    builder.image("org/team", tags=["t"], layers=[base, builder.layer("team")])
    builder.image("org/team/app", tags=["1"], layers=[base])
    child = builder.image("multi", layers=[base])
    builder.index("multi", children=[child], tags=["v"])
    builder.image("multi", layers=[builder.layer("untagged only")])
    builder.orphan_blob(b"orphan", repo="org/team")
    r = du(builder.scan())
    assert_consistent(r)
    for row in r.repositories:
        bf = brute_force_exclusive(builder.root, row.name, tmp_path / row.name.replace("/", "_"))
        assert row.exclusive_bytes == bf, row.name


# --- real-registry fixtures -----------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_sizes_match_brute_force(name: str, tmp_path: Path) -> None:
    root = rr.extract_fixture(name, tmp_path / "root")
    meta = rr.load_fixture_meta(name)
    snap = scan(LocalStorage(resolve_root(root)))
    r = du(snap, by="tag")
    assert_consistent(r)
    assert r.disk_bytes == sum(meta["blobs"].values())
    assert r.disk_blobs == len(meta["blobs"])
    assert r.orphaned_bytes == planned_blob_bytes(root)
    assert r.untagged_bytes == orphans(snap).untagged_bytes
    assert {row.name for row in r.repositories} == set(snap.repositories)
    for row in r.repositories:
        bf = brute_force_exclusive(root, row.name, tmp_path / "bf" / row.name.replace("/", "_"))
        assert row.exclusive_bytes == bf, row.name
        assert row.tags == len(meta["tags"].get(row.name, {}))
        for t in row.tag_usage or []:
            assert 0 <= t.exclusive_bytes <= t.total_bytes <= row.total_bytes
        assert sum(t.exclusive_bytes for t in row.tag_usage or []) <= row.total_bytes


@pytest.mark.parametrize("name", [f for f in FIXTURES if f != "damaged"])
def test_orphaned_bytes_match_the_reference_gc(name: str, tmp_path: Path) -> None:
    """The real registry's `garbage-collect --dry-run` lists the same bytes as orphaned."""
    meta = rr.load_fixture_meta(name)
    ref = meta["reference_gc"]["default"]
    assert ref["exit_code"] == 0
    root = rr.extract_fixture(name, tmp_path / "root")
    r = du(scan(LocalStorage(resolve_root(root))))
    assert r.orphaned_bytes == sum(meta["blobs"][d] for d in ref["blobs"])


def test_demo_numbers(tmp_path: Path) -> None:
    root = rr.extract_fixture("demo", tmp_path / "root")
    meta = rr.load_fixture_meta("demo")
    r = du(scan(LocalStorage(resolve_root(root))), by="tag")
    by = rows(r)
    # python:3.12 was pushed over: its first revision is untagged, shares the alpine base
    old = next(
        i for i in meta["images"] if i["repo"] == "library/python" and i["state"] == "overwritten"
    )
    assert by["library/python"].untagged_bytes > 0
    assert by["library/python"].untagged_bytes <= meta["blobs"][old["digest"]] + sum(
        meta["blobs"][d] for d in [old["config"], *old["layers"]]
    )
    # alpine:3.19 and :latest are the same manifest: neither tag owns anything
    alpine = {t.name: t for t in by["library/alpine"].tag_usage or []}
    assert alpine["3.19"].exclusive_bytes == alpine["latest"].exclusive_bytes == 0
    # the alpine base layer is in python too
    base = old["layers"][0]
    assert by["library/alpine"].shared_bytes >= meta["blobs"][base]


# --- CLI ------------------------------------------------------------------------------------


def test_cli_du_json(tmp_path: Path) -> None:
    root = rr.extract_fixture("shared", tmp_path / "root")
    res = runner.invoke(cli.app, ["du", str(root), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"repositories", "totals"}
    assert set(out["totals"]) >= {
        "disk_bytes",
        "referenced_bytes",
        "orphaned_bytes",
        "untagged_bytes",
        "dedup_ratio",
    }
    for repo in out["repositories"]:
        assert set(repo) >= {
            "name",
            "total_bytes",
            "shared_bytes",
            "exclusive_bytes",
            "untagged_bytes",
        }
        assert repo["tags"] is None  # every key always present; tag rows need --by tag
        for k in ("total_bytes", "shared_bytes", "exclusive_bytes", "untagged_bytes"):
            assert isinstance(repo[k], int)
    excl = [r["exclusive_bytes"] for r in out["repositories"]]
    assert excl == sorted(excl, reverse=True)
    tagged = json.loads(runner.invoke(cli.app, ["du", str(root), "--json", "--by", "tag"]).stdout)
    for repo in tagged["repositories"]:
        assert isinstance(repo["tags"], list)
        for t in repo["tags"]:
            assert set(t) >= {"name", "total_bytes", "exclusive_bytes"}
    top = json.loads(
        runner.invoke(cli.app, ["du", str(root), "--json", "--sort", "name", "--top", "2"]).stdout
    )
    assert [r["name"] for r in top["repositories"]] == ["base/os", "mirror/org/team/app"]
    assert top["totals"] == out["totals"]


def test_cli_du_text_fits_80_columns(tmp_path: Path) -> None:
    root = rr.extract_fixture("demo", tmp_path / "root")
    for args in ([], ["--by", "tag"], ["--sort", "name", "--top", "1"]):
        res = runner.invoke(cli.app, ["du", str(root), *args])
        assert res.exit_code == 0, res.output
        lines = res.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, res.stdout
        assert "library/" in res.stdout
        assert any(line.startswith("Disk:") for line in lines)
        assert any("dedup ratio" in line for line in lines)
    tags = runner.invoke(cli.app, ["du", str(root), "--by", "tag"]).stdout
    assert ":3.12" in tags and ":latest" in tags


@pytest.mark.parametrize(
    "args",
    [
        ["--sort", "size"],
        ["--by", "blob"],
        ["--top", "0"],
        ["--top", "ten"],
        ["--top", "-3"],
    ],
)
def test_cli_du_bad_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    b = StoreBuilder(tmp_path / "registry")
    b.image("app", tags=["1"])
    res = runner.invoke(cli.app, ["du", str(b.root), *args])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert res.stderr.strip().count("\n") == 0
    assert res.stderr.startswith("regfs: error: ")


def test_cli_du_bad_root_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(cli.app, ["du", str(tmp_path / "nothing")])
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0


def test_cli_du_empty_store(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "registry")
    res = runner.invoke(cli.app, ["du", str(b.root)])
    assert res.exit_code == 0
    assert "(no repositories)" in res.stdout
    out = json.loads(runner.invoke(cli.app, ["du", str(b.root), "--json"]).stdout)
    assert out["repositories"] == [] and out["totals"]["dedup_ratio"] == 1.0
