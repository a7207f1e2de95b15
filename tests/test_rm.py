"""`regfs rm`: targets, globs, bad input, journal/trash, and du's exclusive bytes measured by
really running `rm` + `gc` against `gc` alone."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from builder import StoreBuilder
from gc_helpers import age_tree, assert_whole, fingerprint, rescan
from schemas import schema_errors
from typer.testing import CliRunner

from regfs.cli import app
from regfs.errors import UsageError
from regfs.gc.targets import parse_target
from regfs.graph.servable import tag_report

FIXTURES = ["demo", "shared", "multiarch", "partial", "referrers", "schema1", "uploads"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def as_json(res: Any) -> dict[str, Any]:
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def assert_valid_rm_document(doc: dict[str, Any]) -> None:
    """The document validates against regfs/schemas/rm.json (referrers, breaks, gc_notes)."""
    errors = schema_errors("rm", doc)
    assert errors == [], errors


@pytest.fixture
def store(builder: StoreBuilder) -> StoreBuilder:
    base = builder.layer("base")
    builder.image("app", tags=["v1", "latest"], layers=[base, builder.layer("v1")])
    v2 = builder.image("app", tags=["v2"], layers=[base, builder.layer("v2")])
    builder.image("app/child", tags=["c1"], layers=[base])
    builder.image("web", tags=["1.0"], layers=[base])
    builder.referrer("app", subject=v2)
    age_tree(builder.root)
    builder.v2digest = v2.digest  # type: ignore[attr-defined]
    return builder


@pytest.mark.parametrize(
    ("text", "repo", "tag", "digest"),
    [
        ("app", "app", None, None),
        ("org/app:v1", "org/app", "v1", None),
        ("app@sha256:" + "a" * 64, "app", None, "sha256:" + "a" * 64),
        ("org/*:v*", "org/*", "v*", None),
    ],
)
def test_parse_target(text: str, repo: str, tag: str | None, digest: str | None) -> None:
    t = parse_target(text)
    assert (t.repo, t.tag, t.digest) == (repo, tag, digest)


@pytest.mark.parametrize("text", ["", "App", "app:", "app:bad/tag", "app@sha256:xyz", ":v1"])
def test_malformed_targets(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


@pytest.mark.parametrize(
    "target", ["nope", "app:nope", "app@sha256:" + "b" * 64, "zz*", "app:x*", "App!"]
)
def test_bad_targets_exit_2_and_touch_nothing(store: StoreBuilder, target: str) -> None:
    before = fingerprint(store.root)
    res = invoke("rm", str(store.root), target, "--yes")
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("regfs: error:")
    assert fingerprint(store.root) == before


def test_one_bad_target_among_good_ones_touches_nothing(store: StoreBuilder) -> None:
    before = fingerprint(store.root)
    res = invoke("rm", str(store.root), "app:v1", "nope:v1", "--yes")
    assert res.exit_code == 2
    assert fingerprint(store.root) == before


def test_rm_tag(store: StoreBuilder) -> None:
    res = invoke("rm", str(store.root), "app:v1", "--yes", "--json")
    assert res.exit_code == 0, res.stderr
    out = as_json(res)
    assert [t["tag"] for t in out["tags"]] == ["v1"]
    snap = rescan(store)
    assert set(snap.repositories["app"].tags) == {"latest", "v2"}
    assert_whole(snap)


def test_rm_digest_removes_every_tag_on_it_and_its_revision(store: StoreBuilder) -> None:
    d = store.v2digest  # type: ignore[attr-defined]
    res = invoke("rm", str(store.root), f"app@{d}", "--yes", "--json")
    assert res.exit_code == 0, res.stderr
    snap = rescan(store)
    assert "v2" not in snap.repositories["app"].tags
    assert d not in snap.repositories["app"].revisions


def test_rm_repository_keeps_children_and_says_what_gc_would_reclaim(store: StoreBuilder) -> None:
    res = invoke("rm", str(store.root), "app", "--yes", "--json", "--min-age", "0")
    assert res.exit_code == 0, res.stderr
    out = as_json(res)
    assert out["gc_reclaimable_bytes"] > 0
    snap = rescan(store)
    assert "app" not in snap.repositories
    assert "app/child" in snap.repositories
    assert (store.v2 / "repositories/app/child").is_dir()
    assert not (store.v2 / "repositories/app/_manifests").exists()
    assert_whole(snap)


def test_glob_is_previewed_and_dry_run_writes_nothing(store: StoreBuilder) -> None:
    before = fingerprint(store.root)
    res = invoke("rm", str(store.root), "app*", "--dry-run", "--json")
    assert res.exit_code == 0
    assert as_json(res)["targets"] == ["repository app"]  # `*` stays within one segment
    res = invoke("rm", str(store.root), "app*", "app/**", "--dry-run", "--json")
    assert as_json(res)["targets"] == ["repository app", "repository app/child"]
    assert fingerprint(store.root) == before
    res = invoke("rm", str(store.root), "app*:v*", "--yes")
    assert res.exit_code == 0
    assert "regfs rm will remove:" in res.stderr  # the preview
    assert "tag       app:v1" in res.stderr


def test_rm_trash_and_restore(store: StoreBuilder) -> None:
    before = fingerprint(store.root)
    res = invoke("rm", str(store.root), "app", "web:1.0", "--yes", "--trash", "--json")
    assert res.exit_code == 0
    run_id = as_json(res)["run_id"]
    res = invoke("restore", str(store.root), run_id)
    assert res.exit_code == 0, res.stdout
    assert fingerprint(store.root) == before


def test_root_from_environment(store: StoreBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGFS_ROOT", str(store.root))
    res = invoke("rm", "web:1.0", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    assert as_json(res)["targets"] == ["tag web:1.0"]


def _gc_bytes(root: Path) -> int:
    res = invoke("gc", str(root), "--yes", "--min-age", "0", "--json", "--skip-live-check")
    assert res.exit_code == 0, res.stderr
    uploads = sum(int(u["size"]) for u in as_json(res)["uploads"])
    return int(as_json(res)["reclaimed_bytes"]) - uploads


@pytest.mark.parametrize("name", FIXTURES)
def test_du_exclusive_equals_rm_plus_gc_minus_gc(name: str, tmp_path: Path) -> None:
    """For every repository: exclusive_bytes == bytes(rm REPO; gc) - bytes(gc), on copies."""
    src = rr.extract_fixture(name, tmp_path / "src")
    res = invoke("du", str(src), "--json")
    assert res.exit_code == 0
    repos = as_json(res)["repositories"]
    base = rr.copy_tree(src, tmp_path / "gc-only")
    gc_alone = _gc_bytes(base)
    for i, repo in enumerate(repos):
        copy = rr.copy_tree(src, tmp_path / f"rm{i}")
        res = invoke("rm", str(copy), repo["name"], "--yes", "--json", "--skip-live-check")
        assert res.exit_code == 0, res.stderr
        assert _gc_bytes(copy) - gc_alone == repo["exclusive_bytes"], repo["name"]


# --- short digests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("app@0123456789ab", (None, "0123456789ab")),
        ("app@sha256:0123456789abcdef", ("sha256", "0123456789abcdef")),
    ],
)
def test_parse_short_digest(text: str, prefix: tuple[str | None, str]) -> None:
    t = parse_target(text)
    assert (t.digest, t.prefix) == (None, prefix)


@pytest.mark.parametrize(
    "text", ["app@0123456789a", "app@sha256:0123456789a", "app@md5:0123456789ab", "app@XYZ"]
)
def test_short_digest_too_short_or_malformed(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


@pytest.mark.parametrize("form", ["{hex}", "sha256:{hex}"])
def test_rm_accepts_the_short_digest_regfs_prints(store: StoreBuilder, form: str) -> None:
    d = store.v2digest  # type: ignore[attr-defined]
    res = invoke("rm", str(store.root), "app@" + form.format(hex=d[7:19]), "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    assert as_json(res)["targets"] == [f"manifest app@{d}"]


def test_ambiguous_short_digest_is_refused_naming_the_candidates(store: StoreBuilder) -> None:
    fakes = ["sha256:" + "ab" * 6 + c * 52 for c in "01"]
    for d in fakes:
        store.write_link(store.revision_link("app", d), d)
    before = fingerprint(store.root)
    res = invoke("rm", str(store.root), "app@abababababab", "--yes")
    assert res.exit_code == 2
    assert "ambiguous" in res.stderr and all(d in res.stderr for d in fakes)
    assert fingerprint(store.root) == before
    res = invoke("rm", str(store.root), "app@" + fakes[1][7:20], "--dry-run", "--json")
    assert res.exit_code == 0  # one more digit is unique
    res = invoke("rm", str(store.root), "app@cdcdcdcdcdcd", "--yes")
    assert res.exit_code == 2 and "no manifest matches" in res.stderr


# --- children of live indexes ------------------------------------------------------------------


@pytest.fixture
def multi(builder: StoreBuilder) -> dict[str, Any]:
    amd = builder.image("multi", layers=[builder.layer("amd")], platform="linux/amd64")
    arm = builder.image("multi", layers=[builder.layer("arm")], platform="linux/arm64/v8")
    idx = builder.index(
        "multi",
        children=[amd, arm],
        tags=["v1", "stable"],
        platforms=["linux/amd64", "linux/arm64/v8"],
    )
    s390 = builder.image("nested", layers=[builder.layer("s390")], platform="linux/s390x")
    ppc = builder.image("nested", layers=[builder.layer("ppc")], platform="linux/ppc64le")
    inner = builder.index("nested", children=[s390], platforms=["linux/s390x"])
    outer = builder.index("nested", children=[inner, ppc], tags=["v1"])
    loose = builder.image("loose", layers=[builder.layer("loose")], platform="linux/amd64")
    builder.index("loose", children=[loose], platforms=["linux/amd64"])  # untagged index
    age_tree(builder.root)
    return {
        "b": builder,
        "amd": amd,
        "arm": arm,
        "idx": idx,
        "s390": s390,
        "inner": inner,
        "outer": outer,
        "loose": loose,
    }


def test_child_of_a_tagged_index_is_refused_naming_the_index_and_tags(
    multi: dict[str, Any],
) -> None:
    b, arm, idx = multi["b"], multi["arm"], multi["idx"]
    before = fingerprint(b.root)
    res = invoke("rm", str(b.root), f"multi@{arm.digest}", "--yes")
    assert res.exit_code == 3, res.output
    flat = " ".join(res.output.split())
    for text in (idx.digest[:19], "multi:v1", "multi:stable", "linux/arm64/v8", "--force"):
        assert text in flat
    assert fingerprint(b.root) == before
    res = invoke("rm", str(b.root), f"multi@{arm.digest}", "--dry-run", "--json")
    assert res.exit_code == 3
    out = as_json(res)
    assert_valid_rm_document(out)
    assert out["refused"] and {x["tag"] for x in out["breaks"]} == {"v1", "stable"}
    assert fingerprint(b.root) == before


def test_grandchild_of_a_tagged_index_is_refused(multi: dict[str, Any]) -> None:
    b = multi["b"]
    for target in (multi["inner"], multi["s390"]):
        res = invoke("rm", str(b.root), f"nested@{target.digest}", "--yes")
        assert res.exit_code == 3, target
        assert "nested:v1" in res.output


def test_index_and_child_together_or_untagged_index_child_are_allowed(
    multi: dict[str, Any],
) -> None:
    b = multi["b"]
    res = invoke(
        "rm",
        str(b.root),
        f"multi@{multi['idx'].digest}",
        f"multi@{multi['arm'].digest}",
        "--dry-run",
        "--json",
    )
    assert res.exit_code == 0 and as_json(res)["breaks"] == []
    res = invoke("rm", str(b.root), f"loose@{multi['loose'].digest}", "--yes", "--json")
    assert res.exit_code == 0, res.stderr


def test_force_removes_the_child_and_says_what_breaks(multi: dict[str, Any]) -> None:
    b, amd, arm = multi["b"], multi["amd"], multi["arm"]
    res = invoke("rm", str(b.root), f"multi@{arm.digest}", "--yes", "--force", "--json")
    assert res.exit_code == 0, res.stderr
    assert_valid_rm_document(as_json(res))
    breaks = as_json(res)["breaks"]
    assert {x["tag"] for x in breaks} == {"v1", "stable"}
    assert all(x["still_pulls"] for x in breaks)
    assert breaks[0]["absent"] == [
        {"index": multi["idx"].digest, "digest": arm.digest, "platform": "linux/arm64/v8"}
    ]
    assert arm.digest not in rescan(b).repositories["multi"].revisions
    # The last platform too: now the tags no longer pull, and --force says so.
    res = invoke("rm", str(b.root), f"multi@{amd.digest}", "--yes", "--force")
    assert res.exit_code == 0
    assert "multi:v1 no longer pulls" in res.stdout


# --- referrers -------------------------------------------------------------------------------


def test_removing_a_manifest_takes_its_referrers_transitively(builder: StoreBuilder) -> None:
    from builder import SBOM_SPDX

    img = builder.image("app", tags=["v1"], layers=[builder.layer("app")])
    sig = builder.referrer("app", subject=img)
    sbom = builder.referrer("app", subject=img, artifact_type=SBOM_SPDX)
    sbom_sig = builder.referrer("app", subject=sbom)
    tagged = builder.referrer("app", subject=img, tags=["attestation"])  # kept by its tag
    tagged_sig = builder.referrer("app", subject=tagged)
    other = builder.image("app", tags=["v2"], layers=[builder.layer("other")])
    other_sig = builder.referrer("app", subject=other)
    age_tree(builder.root)
    res = invoke("rm", str(builder.root), f"app@{img.digest[7:19]}", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    out = as_json(res)
    assert_valid_rm_document(out)
    taken = {r["digest"]: r["subject"] for r in out["referrers"]}
    assert taken == {sig.digest: img.digest, sbom.digest: img.digest, sbom_sig.digest: sbom.digest}
    res = invoke("rm", str(builder.root), f"app@{img.digest}", "--yes", "--min-age", "0", "--gc")
    assert res.exit_code == 0, res.output
    preview = res.stderr.split("in all:")[0]
    assert preview.startswith("regfs rm will remove:")
    assert preview.count("referrer") == 3 and f"of {img.digest[:19]}" in preview
    snap = rescan(builder)
    revs = snap.repositories["app"].revision_digests()
    assert not revs & {img.digest, sig.digest, sbom.digest, sbom_sig.digest}
    assert {tagged.digest, tagged_sig.digest, other.digest, other_sig.digest} <= revs
    assert not (sig.blob_digests - tagged.blob_digests - other_sig.blob_digests) & set(snap.blobs)
    assert_whole(snap)


# --- rm --gc decides both steps first -------------------------------------------------------


def test_rm_gc_refuses_before_deleting_anything_when_gc_would(store: StoreBuilder) -> None:
    store.write("blobs/sha256/00/" + "0" * 64 + "/data", b"not a manifest")
    store.write_link(store.revision_link("web", "sha256:" + "0" * 64), "sha256:" + "0" * 64)
    age_tree(store.root)
    before = fingerprint(store.root)
    res = invoke("rm", str(store.root), "app:v1", "--yes", "--gc", "--min-age", "0")
    assert res.exit_code == 3, res.output
    assert "refused" in res.stderr and "unparseable_manifest" in res.output
    assert fingerprint(store.root) == before
    res = invoke("rm", str(store.root), "app:v1", "--dry-run", "--gc", "--min-age", "0")
    assert res.exit_code == 3
    assert "A real run would refuse" in res.stdout and "unparseable_manifest" in res.stdout
    res = invoke("rm", str(store.root), "app:v1", "--dry-run", "--min-age", "0")
    assert res.exit_code == 0  # no --gc: the removal alone proceeds, the note still says why
    assert "`regfs gc` would refuse" in res.stdout
    res = invoke("rm", str(store.root), "app:v1", "--yes", "--gc", "--min-age", "0", "--force")
    assert res.exit_code == 0, res.output
    assert "v1" not in rescan(store).repositories["app"].tags


def test_dry_run_says_why_gc_would_reclaim_nothing(store: StoreBuilder) -> None:
    def notes(*args: str) -> tuple[int, list[str]]:
        res = invoke("rm", str(store.root), *args, "--dry-run", "--json")
        assert res.exit_code == 0, res.output
        return as_json(res)["gc_reclaimable_bytes"], as_json(res)["gc_notes"]

    reclaim, said = notes("web:1.0", "--min-age", "0")
    assert reclaim == 0 and len(said) == 1
    assert "removing a tag leaves its manifest" in said[0]
    assert "`regfs gc --delete-untagged` reclaims it" in said[0]
    # web:1.0 is the very manifest app/child:c1 is: removing web frees nothing.
    reclaim, said = notes("web", "--min-age", "0")
    assert said == [
        "the removal frees no blob: other manifests still use every blob of the removed ones"
    ]
    fresh = time.time()
    for p in store.root.rglob("*"):
        os.utime(p, (fresh, fresh))
    reclaim, said = notes("app")  # default --min-age 1h
    assert reclaim == 0 and len(said) == 1
    assert "blobs the removal frees kept: younger than --min-age (1h)" in said[0]
    res = invoke("rm", str(store.root), "web:1.0", "--dry-run", "--min-age", "0")
    assert "removing a tag leaves its manifest" in res.stdout


# --- against the real registry --------------------------------------------------------------


def _pull_all(
    root: Path,
    meta: dict[str, Any],
    *,
    absent: frozenset[str] = frozenset(),
    skip: frozenset[tuple[str, str]] = frozenset(),
) -> int:
    """Pull every tag of the fixture (but ``skip``) from a registry serving ``root``."""
    cfg = meta["registry_config"]
    pulled = 0
    with rr.Registry(root, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        for repo, tags in meta["tags"].items():
            for tag in tags:
                if (repo, tag) not in skip:
                    reg.pull(repo, tag, absent=absent)
                    pulled += 1
    return pulled


@pytest.mark.registry
def test_real_registry_child_of_tagged_index_refused_then_forced(tmp_path: Path) -> None:
    rr.require_binaries()
    meta = rr.load_fixture_meta("multiarch")
    root = rr.extract_fixture("multiarch", tmp_path / "root")
    idx = meta["tags"]["multi/oci-app"]["v1"]
    (index,) = [i for i in meta["images"] if i["digest"] == idx]
    child = index["children"][1]  # linux/arm64/v8
    before = fingerprint(root)
    res = invoke("rm", str(root), f"multi/oci-app@{child[7:19]}", "--yes", "--skip-live-check")
    assert res.exit_code == 3, res.output
    flat = " ".join(res.output.split())
    assert idx[:19] in flat and "multi/oci-app:v1" in flat
    assert fingerprint(root) == before
    assert _pull_all(root, meta) == sum(len(t) for t in meta["tags"].values())
    res = invoke(
        "rm",
        str(root),
        f"multi/oci-app@{child}",
        "--yes",
        "--force",
        "--gc",
        "--min-age",
        "0",
        "--skip-live-check",
    )
    assert res.exit_code == 0, res.output
    assert "multi/oci-app:v1 loses linux/arm64/v8" in res.stdout
    assert "its other platforms pull" in res.stdout
    # The tag pulls its other platform; the removed one answers 404; everything else pulls.
    _pull_all(root, meta, absent=frozenset({child}))
    res = invoke("check", str(root), "--json")
    assert res.exit_code == 0
    out = as_json(res)
    assert out["healthy"] and [w["kind"] for w in out["warnings"]] == ["partial_index"]


@pytest.mark.registry
def test_real_registry_signed_image_goes_with_its_referrers(tmp_path: Path) -> None:
    rr.require_binaries()
    meta = rr.load_fixture_meta("referrers")
    root = rr.extract_fixture("referrers", tmp_path / "root")
    image = meta["tags"]["signed/app"]["1.0"]
    refs = {i["digest"] for i in meta["images"] if i["subject"]}
    res = invoke(
        "rm",
        str(root),
        f"signed/app@{image}",
        "--yes",
        "--gc",
        "--min-age",
        "0",
        "--json",
        "--skip-live-check",
    )
    assert res.exit_code == 0, res.output
    out = as_json(res)
    assert {r["digest"] for r in out["referrers"]} == refs
    assert out["breaks"] == [] and out["gc"]["status"] == "done"
    gone = {image} | refs
    by_digest = {i["digest"]: i for i in meta["images"]}
    freed = {b["digest"] for b in out["gc"]["blobs"]}
    assert gone <= freed  # the manifests' own blobs
    for d in gone:
        assert {by_digest[d]["config"], *by_digest[d]["layers"]} - freed <= {
            b
            for i in meta["images"]
            if i["digest"] not in gone
            for b in (i["config"], *i["layers"])
        }
    cfg = meta["registry_config"]
    with rr.Registry(root, schema1=cfg["schema1"], foreign_urls=cfg["foreign_urls"]) as reg:
        for d in gone:
            with pytest.raises(rr.RegistryHTTPError) as info:
                reg.get_manifest("signed/app", d)
            assert info.value.status == 404
        assert "1.0" not in reg.tags("signed/app")
    # Every other image still pulls, the cosign-style .sig tag (no subject) included.
    assert (
        _pull_all(root, meta, skip=frozenset({("signed/app", "1.0")}))
        == sum(len(t) for t in meta["tags"].values()) - 1
    )


def test_manifest_of_a_partly_unreadable_repository_is_refused_too(
    multi: dict[str, Any], deny: Any
) -> None:
    """Where the tags of a repository cannot all be read, no removal of one of its manifests
    can be shown harmless: refused (fail closed) unless --force."""
    b, arm = multi["b"], multi["arm"]
    deny(b.v2 / "repositories/multi/_manifests/tags")
    assert rescan(b).repositories["multi"].incomplete
    before = fingerprint(b.root)
    res = invoke("rm", str(b.root), f"multi@{arm.digest}", "--yes")
    assert res.exit_code == 3, res.output
    assert "part of the repository cannot be read" in " ".join(res.output.split())
    assert fingerprint(b.root) == before


@pytest.mark.parametrize("level", ["repositories/web", "repositories/web/_manifests/tags/1.0"])
def test_rm_plans_nothing_at_or_below_a_symlink(
    store: StoreBuilder, tmp_path: Path, level: str
) -> None:
    """The registry serves through a symlinked folder; rm's plan leaves out everything at,
    below or containing it (listed as kept), as gc's does, and a real run deletes nothing
    outside ROOT and keeps the link."""
    import shutil

    outside = tmp_path / "outside"
    outside.mkdir()
    real = outside / "moved"
    shutil.move(str(store.path(level)), real)
    store.path(level).symlink_to(real)
    before = fingerprint(real)
    dry = as_json(invoke("rm", str(store.root), "web", "--dry-run", "--json", "--force"))
    planned = [
        a["path"]
        for key in ("manifests", "tag_index_entries", "layer_links", "uploads")
        for a in dry[key]
    ] + list(dry["folders"])
    planned += [f"repositories/{t['repository']}/_manifests/tags/{t['tag']}" for t in dry["tags"]]
    for path in planned:
        assert not (path == level or path.startswith(level + "/")), path
        assert not level.startswith(path + "/"), path
    res = invoke("rm", str(store.root), "web", "--yes", "--force", "--skip-live-check")
    assert res.exit_code in (0, 3), res.stderr
    assert store.path(level).is_symlink()
    assert fingerprint(real) == before


def test_rm_keeps_a_tag_another_tag_is_served_through(store: StoreBuilder) -> None:
    """app:latest's ``current`` folder is a symbolic link to app:v1's (inside ROOT): the
    registry serves latest through v1's folder. rm app:v1 must not remove that folder (the
    scan reads ``current/link`` by path in its fast path and, before, followed the link
    unseen: latest lost its current link), with or without --force."""
    tags = store.path("repositories/app/_manifests/tags")
    import shutil

    shutil.rmtree(tags / "latest" / "current")
    os.symlink("../v1/current", tags / "latest" / "current")
    for force in ([], ["--force"]):
        res = invoke("rm", str(store.root), "app:v1", "--yes", "--skip-live-check", *force)
        assert res.exit_code in (0, 3), res.output
        assert (tags / "v1" / "current" / "link").is_file()
        snap = rescan(store)
        assert not tag_report(snap, snap.repositories["app"], "latest").broken
