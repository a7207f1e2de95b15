"""``regfs retain`` through the CLI: options, exit codes, text and the --json schema."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder
from gc_helpers import age_tree, assert_whole, fingerprint, rescan
from schemas import schema_errors
from typer.testing import CliRunner

from regfs.cli import app

NOW = time.time()
D = 86400.0


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def pushed(b: StoreBuilder, repo: str, tag: str, days_ago: float) -> None:
    t = NOW - days_ago * D
    os.utime(b.path(f"repositories/{repo}/_manifests/tags/{tag}/current/link"), (t, t))


def valid(res: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(res.stdout)
    errors = schema_errors("retain", doc)
    assert errors == [], errors
    return doc


@pytest.fixture
def store(tmp_path: Path) -> StoreBuilder:
    """app:v1..v4 pushed 40, 30, 20, 10 days ago, app:latest on v1; old:a,b,c (lost mtimes)."""
    b = StoreBuilder(tmp_path / "root")
    imgs = [b.image("app", tags=[f"v{i}"], layers=[b.layer(f"app{i}")]) for i in range(1, 5)]
    b.tag("app", "latest", imgs[0].digest)
    for t in "abc":
        b.image("old", tags=[t], layers=[b.layer(f"old{t}")])
    age_tree(b.root)
    for i, days in enumerate((40, 30, 20, 10)):
        pushed(b, "app", f"v{i + 1}", days)
    pushed(b, "app", "latest", 40)
    return b


def test_dry_run_json(store: StoreBuilder) -> None:
    before = fingerprint(store.root)
    res = invoke(
        "retain",
        str(store.root),
        "--repo",
        "app",
        "--keep-last",
        "2",
        "--dry-run",
        "--json",
        "--skip-live-check",
    )
    assert res.exit_code == 0, res.output
    doc = valid(res)
    assert fingerprint(store.root) == before
    (repo,) = doc["repositories"]
    # v1 goes as a tag; its manifest stays, since latest points at it.
    assert [t["tag"] for t in repo["removed"]] == ["v2", "v1"]
    assert {t["tag"] for t in repo["kept"]} == {"v3", "v4", "latest"}
    assert len(doc["manifests"]) == 1
    assert repo["removed"][0]["pushed_at"].endswith("Z")
    assert doc["status"] == "planned" and doc["manifests"][0]["role"] == "tagged"
    assert doc["reclaimed_bytes"] == repo["freed_bytes"] > 0


def test_text_preview_per_repository(store: StoreBuilder) -> None:
    res = invoke(
        "retain",
        str(store.root),
        "--repo",
        "app",
        "--keep-last",
        "2",
        "--dry-run",
        "--skip-live-check",
    )
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "app: 2 tags removed, 3 kept, 1 manifest freed" in out
    assert "  remove v2 " in out and "pushed 30d ago" in out
    assert "Would remove: 2 tags in 1 repository, 1 manifest, 3 blobs" in out


def test_no_limit_is_refused_with_exit_2(store: StoreBuilder) -> None:
    before = fingerprint(store.root)
    res = invoke("retain", str(store.root), "--tags", "v.*", "--yes")
    assert res.exit_code == 2
    assert "needs --keep-last or --older-than" in res.output
    assert fingerprint(store.root) == before


def test_policy_and_flags_do_not_mix(store: StoreBuilder, tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text("[[rule]]\nkeep_last = 1\n")
    res = invoke("retain", str(store.root), "--policy", str(p), "--keep-last", "3", "--dry-run")
    assert res.exit_code == 2 and "--policy and --keep-last" in res.output


def test_bad_policy_names_file_and_line(store: StoreBuilder, tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text('[[rule]]\nrepo = "app"\nkeep_last = 1\nkeep-tags = "x"\n')
    res = invoke("retain", str(store.root), "--policy", str(p), "--dry-run")
    assert res.exit_code == 2
    assert f"{p}:4: rule 1: unknown key 'keep-tags'" in res.output
    res = invoke("retain", str(store.root), "--policy", str(tmp_path / "missing.toml"))
    assert res.exit_code == 2 and "cannot read the policy file" in res.output


def test_equal_seconds_exit_3_named_the_rest_proceeds(store: StoreBuilder) -> None:
    res = invoke(
        "retain",
        str(store.root),
        "--keep-last",
        "1",
        "--yes",
        "--json",
        "--skip-live-check",
        "--min-age",
        "0",
    )
    assert res.exit_code == 3, res.output
    doc = valid(res)
    assert [r["name"] for r in doc["refused_repositories"]] == ["old"]
    assert doc["status"] == "partly_refused"
    tags = store.v2 / "repositories"
    assert sorted(p.name for p in (tags / "old/_manifests/tags").iterdir()) == ["a", "b", "c"]
    assert sorted(p.name for p in (tags / "app/_manifests/tags").iterdir()) == [
        "latest",
        "v4",
    ]
    assert_whole(rescan(store))
    text = invoke("retain", str(store.root), "--keep-last", "1", "--dry-run", "--skip-live-check")
    assert text.exit_code == 3 and "old: REFUSED" in text.stdout


def test_real_run_needs_yes_without_terminal(store: StoreBuilder) -> None:
    res = invoke("retain", str(store.root), "--keep-last", "1")
    assert res.exit_code == 2 and "--yes" in res.output


def test_trash_then_restore_through_the_cli(store: StoreBuilder) -> None:
    before = fingerprint(store.root)
    res = invoke(
        "retain",
        str(store.root),
        "--repo",
        "app",
        "--older-than",
        "15d",
        "--trash",
        "--yes",
        "--json",
        "--skip-live-check",
    )
    assert res.exit_code == 0, res.output
    doc = valid(res)
    assert doc["status"] == "done"
    assert [t["status"] for t in doc["repositories"][0]["removed"]] == ["done", "done", "done"]
    assert fingerprint(store.root) != before
    res = invoke("restore", str(store.root), doc["run_id"])
    assert res.exit_code == 0, res.output
    assert fingerprint(store.root) == before


def test_min_age_protects_recent_pushes(store: StoreBuilder) -> None:
    pushed(store, "app", "v2", 0.001)  # re-pushed a minute and a half ago
    pushed(store, "app", "v3", 0.002)  # and three minutes ago
    args = ["retain", str(store.root), "--repo", "app", "--keep-last", "1", "--dry-run"]
    doc = valid(invoke(*args, "--json", "--skip-live-check"))
    kept = {t["tag"]: t["reason"] for t in doc["repositories"][0]["kept"]}
    assert kept["v3"] == "pushed within --min-age 1h"
    assert [t["tag"] for t in doc["repositories"][0]["removed"]] == ["v4", "v1"]
    doc = valid(invoke(*args, "--json", "--skip-live-check", "--min-age", "0"))
    assert [t["tag"] for t in doc["repositories"][0]["removed"]] == ["v3", "v4", "v1"]
