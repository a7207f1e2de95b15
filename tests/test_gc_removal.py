"""``regfs rm --gc`` is one plan: one run id, one lock and journal, one restore; its dry run
shows exactly the plan a real run executes; a removal step not done stops the gc steps
planned on it. Then the same against the real registry: every surviving image pulls, and
the restore of that one run brings everything back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from builder import StoreBuilder
from fixtures import build as fx
from gc_helpers import age_tree, fingerprint
from typer.testing import CliRunner

from regfs.cli import app
from regfs.gc import trash
from regfs.gc.journal import load_run
from regfs.gc.plan import GcOptions, PartKind, state_dir
from regfs.gc.removal import remove
from regfs.gc.steps import Status, Step

NOW = 2_000_000_000.0
UNTAGGED = GcOptions(min_age=0, delete_untagged=True)


def _store(tmp_path: Path) -> StoreBuilder:
    b = StoreBuilder(tmp_path / "t")
    base = b.layer("base")
    b.image("app", tags=["v1"], layers=[base, b.layer("one")])
    b.image("app", tags=["v2"], layers=[base, b.layer("two")])
    b.image("web", tags=["v1"], layers=[base, b.layer("web")])
    b.orphan_blob(b"an orphan", repo="web")
    age_tree(b.root)
    return b


def test_the_dry_run_shows_the_plan_that_runs(tmp_path: Path) -> None:
    b = _store(tmp_path)
    kw: dict[str, Any] = {"run_gc": True, "gc_options": UNTAGGED, "skip_live_check": True}
    planned = remove(str(b.root), ["app:v1"], dry_run=True, trash=True, now=NOW, **kw)
    assert planned.run is not None and planned.gc is not None
    assert planned.gc.plan.run_id == planned.removal.plan.run_id == planned.run.plan.run_id
    steps = {a.step for a in planned.run.plan.actions}
    assert {Step.TAG, Step.REVISION, Step.LAYER_LINK, Step.BLOB, Step.FOLDER} <= steps
    before = fingerprint(b.root)
    done = remove(str(b.root), ["app:v1"], dry_run=False, trash=True, now=NOW, **kw)
    assert done.run is not None and done.run.executed is not None
    state = state_dir(str(b.v2))
    assert [e.name for e in (Path(state) / "runs").iterdir()] == [done.run.plan.run_id]
    _doc, actions, finished = load_run(state, done.run.plan.run_id)
    assert actions == planned.run.plan.actions  # the very plan the dry run showed
    assert set(finished.values()) == {Status.DONE}
    assert done.status == "done" and done.gc is not None and done.gc.executed is not None
    assert done.gc.executed.reclaimed_bytes > 0
    res = trash.restore(state, str(b.v2), done.run.plan.run_id)
    assert res.refused == [] and res.missing == []
    assert fingerprint(b.root) == before


def test_json_one_run_id_and_folders_once(tmp_path: Path) -> None:
    b = _store(tmp_path)
    r = CliRunner().invoke(
        app, ["rm", str(b.root), "app", "--gc", "--min-age", "0", "--yes", "--json"]
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["gc"]["run_id"] == doc["run_id"]
    assert doc["gc"]["folders"] == [] and "repositories/app" in doc["folders"]
    assert doc["gc"]["blobs"] and doc["gc"]["status"] == "done"
    assert len(list((b.root / ".regfs" / "runs").iterdir())) == 1


def test_a_removal_not_done_stops_the_gc_planned_on_it(tmp_path: Path) -> None:
    """The tag step is skipped (its folder holds a file regfs does not know): its manifest
    is still tagged, so gc's removal of that manifest and of what only it uses is not done."""
    b = _store(tmp_path)
    tag_folder = b.v2 / "repositories/app/_manifests/tags/v1"

    def meddle(plan: Any) -> bool:
        (tag_folder / "unexpected").write_bytes(b"x")
        return True

    kept = {p: v for p, v in fingerprint(b.root).items() if "tags/v1" not in p}
    out = remove(
        str(b.root),
        ["app:v1"],
        dry_run=False,
        run_gc=True,
        gc_options=UNTAGGED,
        skip_live_check=True,
        confirm=meddle,
        now=NOW,
    )
    assert out.run is not None and out.run.executed is not None
    results = out.run.executed.results
    tag = [r for r in results if r.action.step is Step.TAG]
    assert [r.status for r in tag] == [Status.SKIPPED]
    gc = [r for r in results if out.run.plan.origin[r.action.path] is PartKind.GC]
    assert gc and all(r.status is Status.SKIPPED for r in gc if r.action.step is not Step.FOLDER)
    assert all("planned on the removal of" in r.detail for r in gc if r.action.step is Step.BLOB)
    now = fingerprint(b.root)
    assert {p: v for p, v in now.items() if p in kept} == kept, "nothing of app:v1 went"


@pytest.mark.registry
def test_rm_gc_against_the_real_registry(tmp_path: Path) -> None:
    rr.require_binaries()
    root = tmp_path / "store"
    root.mkdir()
    base = fx.layer("rmgc-base", 600)
    old = fx.image("rmgc-old", [base, fx.layer("rmgc-old", 500)])
    new = fx.image("rmgc-new", [base, fx.layer("rmgc-new", 500)])
    web = fx.image("rmgc-web", [base, fx.layer("rmgc-web", 500)])
    with rr.Registry(root) as reg:
        for repo, m, tag in (("app", old, "old"), ("app", new, "new"), ("web", web, "v1")):
            for blob in m.blobs:
                reg.push_blob(repo, blob.data)
            assert reg.push_manifest(repo, tag, m.body, m.media_type) == m.digest
        before = reg.pull_all()
    blobs_before = {d for d, _ in rr.iter_blobs(root)}
    r = CliRunner().invoke(
        app,
        [
            "rm",
            str(root),
            f"app@{old.digest}",
            "--gc",
            "--min-age",
            "0",
            "--trash",
            "--yes",
            "--json",
        ],
    )
    assert r.exit_code == 0, (r.stderr, r.stdout)
    doc = json.loads(r.stdout)
    assert doc["gc"]["run_id"] == doc["run_id"]
    freed = {b["digest"] for b in doc["gc"]["blobs"]}
    assert old.digest in freed and base.digest not in freed
    assert {d for d, _ in rr.iter_blobs(root)} == blobs_before - freed
    with rr.Registry(root) as reg:
        assert reg.tags("app") == ["new"]
        after = reg.pull_all()
        assert after == {"app": {"new": before["app"]["new"]}, "web": before["web"]}
        with pytest.raises(rr.RegistryHTTPError) as info:
            reg.get_manifest("app", "old")
        assert info.value.status == 404
    r = CliRunner().invoke(app, ["restore", str(root), doc["run_id"]])
    assert r.exit_code == 0, r.output
    assert {d for d, _ in rr.iter_blobs(root)} == blobs_before
    with rr.Registry(root) as reg:
        assert reg.pull_all() == before
