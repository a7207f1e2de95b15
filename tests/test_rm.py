"""`regfs rm`: targets, globs, bad input, journal/trash, and du's exclusive bytes measured by
really running `rm` + `gc` against `gc` alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from builder import StoreBuilder
from gc_helpers import age_tree, assert_whole, fingerprint, rescan
from typer.testing import CliRunner

from regfs.cli import app
from regfs.errors import UsageError
from regfs.gc.rm import parse_target

FIXTURES = ["demo", "shared", "multiarch", "partial", "referrers", "schema1", "uploads"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def as_json(res: Any) -> dict[str, Any]:
    return json.loads(res.stdout)  # type: ignore[no-any-return]


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
    return int(as_json(res)["reclaimed_bytes"]) - sum(u["size"] for u in as_json(res)["uploads"])


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
