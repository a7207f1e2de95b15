"""The gc planner: what it deletes in each mode, grace, fail-closed, folders, order."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from builder import StoreBuilder
from gc_helpers import OLD, age_tree, fingerprint

from regfs.errors import RefusedError
from regfs.gc.plan import GcOptions, state_dir
from regfs.gc.refresh import build_plan
from regfs.gc.run import collect
from regfs.gc.steps import STEP_ORDER, Step

NOW = time.time()


def plan_for(b: StoreBuilder, **opts: object):  # type: ignore[no-untyped-def]
    return build_plan(b.scan(), GcOptions(**opts), now=NOW)  # type: ignore[arg-type]


def steps(plan, step: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {a.digest or a.path for a in plan.by_step(step)}


@pytest.fixture
def tree(builder: StoreBuilder) -> dict[str, object]:
    b = builder
    base = b.layer("base")
    app1 = b.layer("app v1")
    app2 = b.layer("app v2")
    old = b.image("app", tags=["v1"], layers=[base, app1])
    new = b.image("app", tags=["v1"], layers=[base, app2])  # pushed over: `old` untagged
    a = b.image("multi", layers=[b.layer("amd")], platform="linux/amd64")
    r = b.image("multi", layers=[b.layer("arm")], platform="linux/arm64")
    idx = b.index(
        "multi", children=[a, r], tags=["latest"], platforms=["linux/amd64", "linux/arm64"]
    )
    sig = b.referrer("app", subject=new)
    sig_old = b.referrer("app", subject=old)
    orphan = b.orphan_blob(repo="app")
    gone = b.image("gone", tags=["t"], layers=[b.layer("gone")])
    b.delete_manifest("gone", gone.digest)
    age_tree(b.root)
    return {
        "b": b,
        "old": old,
        "new": new,
        "idx": idx,
        "a": a,
        "r": r,
        "sig": sig,
        "sig_old": sig_old,
        "orphan": orphan,
        "gone": gone,
        "app1": app1,
        "base": base,
    }


def test_default_mode_deletes_only_unreachable_blobs(tree: dict) -> None:  # type: ignore[type-arg]
    b = tree["b"]
    plan = plan_for(b, min_age=0)
    gone = tree["gone"]
    expected = {tree["orphan"].digest} | gone.blob_digests
    assert steps(plan, "blob") == expected
    assert plan.by_step(Step.REVISION) == [] and plan.by_step(Step.TAG_INDEX) == []
    # Layer links of deleted blobs go with them.
    assert tree["orphan"].digest in steps(plan, "layer_link")
    # The repository whose only manifest was deleted disappears completely.
    folders = steps(plan, "folder")
    assert "repositories/gone" in folders
    assert "repositories/app" not in folders


def test_delete_untagged_keeps_children_and_live_referrers(tree: dict) -> None:  # type: ignore[type-arg]
    plan = plan_for(tree["b"], min_age=0, delete_untagged=True)
    removed = {d for _r, d in plan.manifests}
    assert removed == {tree["old"].digest, tree["sig_old"].digest}
    blobs = steps(plan, "blob")
    assert tree["app1"].digest in blobs and tree["old"].digest in blobs
    assert tree["base"].digest not in blobs
    for keep in ("a", "r", "idx", "sig", "new"):
        assert not (tree[keep].blob_digests & blobs), keep
    # Both the revision and the tag's history entry of the pushed-over manifest go.
    assert tree["old"].digest in steps(plan, "tag_index")


def test_actions_are_in_reference_before_data_order(tree: dict) -> None:  # type: ignore[type-arg]
    plan = plan_for(tree["b"], min_age=0, delete_untagged=True)
    order = [STEP_ORDER.index(a.step) for a in plan.actions]
    assert order == sorted(order)
    folders = [a.path for a in plan.by_step(Step.FOLDER)]
    assert folders == sorted(folders, key=lambda p: (-p.count("/"), p))


def test_grace_keeps_young_data_and_blobs_relinked_recently(builder: StoreBuilder) -> None:
    b = builder
    young = b.orphan_blob(b"young data")
    relinked = b.orphan_blob(b"old data, new link", repo="x")
    old = b.orphan_blob(b"old")
    age_tree(b.root)
    now = time.time()
    os_utime(b.path(f"blobs/sha256/{young.digest[7:9]}/{young.digest[7:]}/data"), now - 60)
    os_utime(b.path(b.layer_link("x", relinked.digest)), now - 60)
    plan = build_plan(b.scan(), GcOptions(min_age=3600), now=now)
    assert steps(plan, "blob") == {old.digest}
    kept = {k.digest for k in plan.kept if k.reason == "younger than --min-age"}
    assert {young.digest, relinked.digest} <= kept
    # Exactly at the boundary the item is old enough.
    plan = build_plan(b.scan(), GcOptions(min_age=60), now=now)
    assert steps(plan, "blob") == {old.digest, young.digest, relinked.digest}
    plan = build_plan(b.scan(), GcOptions(min_age=61), now=now)
    assert steps(plan, "blob") == {old.digest}


def os_utime(p: Path, t: float) -> None:
    import os

    os.utime(p, (t, t))


def test_unreferenced_layer_links_go_but_young_ones_stay(builder: StoreBuilder) -> None:
    b = builder
    shared = b.layer("shared")
    b.image("one", tags=["v1"], layers=[shared])
    b.link_layer("two", shared.digest)  # mounted into `two`, no manifest there uses it
    age_tree(b.root)
    plan = build_plan(b.scan(), GcOptions(min_age=3600), now=time.time())
    assert plan.by_step(Step.BLOB) == []
    assert [a.path for a in plan.by_step(Step.LAYER_LINK)] == [
        b.layer_link("two", shared.digest)[:-5]
    ]
    os_utime(b.path(b.layer_link("two", shared.digest)), time.time())
    plan = build_plan(b.scan(), GcOptions(min_age=3600), now=time.time())
    assert plan.by_step(Step.LAYER_LINK) == []


def test_stale_uploads_go_by_their_start_fresh_ones_stay(builder: StoreBuilder) -> None:
    b = builder
    now = time.time()
    b.image("up", tags=["v1"])
    stale = b.upload("up", started_at="2020-01-02T03:04:05Z", mtime=OLD)
    cancelled = b.upload("up", startedat_file=False, mtime=OLD)  # hashstates only, in life
    young_cancelled = b.upload("up", startedat_file=False, mtime=now - 600)
    fresh = b.upload("up")
    # A copy (or a checkout) refreshed every mtime; its startedat still says 2020.
    copied = b.upload("up", started_at="2020-01-02T03:04:05Z")
    plan = build_plan(b.scan(), GcOptions(min_age=3600), now=now)
    assert sorted(a.path.rsplit("/", 1)[1] for a in plan.by_step(Step.UPLOAD)) == sorted(
        [stale, cancelled]
    )
    kept = {k.path.rsplit("/", 1)[1]: k.reason for k in plan.kept if k.kind == "upload"}
    assert kept == {copied: "written to within --min-age"}
    # Evidence of a registry at work: what started within --min-age, by startedat, else by
    # the newest file; never the fresh mtimes of an upload whose startedat is old.
    assert sorted(p.rsplit("/", 1)[1] for p in plan.young_uploads) == sorted(
        [fresh, young_cancelled]
    )


def test_uploads_older_than_zero_is_no_limit(builder: StoreBuilder) -> None:
    b = builder
    now = time.time()
    b.image("up", tags=["v1"])
    ids = [b.upload("up"), b.upload("up", startedat_file=False), b.upload("up", mtime=OLD)]
    # Every unfinished upload is stale; --min-age still keeps those written to within it.
    plan = build_plan(b.scan(), GcOptions(min_age=3600, uploads_older_than=0), now=now)
    assert [a.path.rsplit("/", 1)[1] for a in plan.by_step(Step.UPLOAD)] == [ids[2]]
    assert sorted(k.path.rsplit("/", 1)[1] for k in plan.kept) == sorted(ids[:2])
    plan = build_plan(b.scan(), GcOptions(min_age=0, uploads_older_than=0), now=now)
    assert sorted(a.path.rsplit("/", 1)[1] for a in plan.by_step(Step.UPLOAD)) == sorted(ids)
    assert plan.young_uploads == []  # --min-age 0: nothing is young


def test_folders_never_remove_child_repositories_or_unknown_files(builder: StoreBuilder) -> None:
    b = builder
    parent = b.image("org/team", tags=["v1"])
    b.image("org/team/app", tags=["v1"])
    b.delete_manifest("org/team", parent.digest)
    stray = b.image("stray", tags=["t"])
    b.delete_manifest("stray", stray.digest)
    b.write("repositories/stray/_manifests/NOTES.txt", b"keep me")
    age_tree(b.root)
    plan = plan_for(b, min_age=0)
    folders = steps(plan, "folder")
    assert "repositories/org/team/_manifests" in folders
    assert "repositories/org/team" not in folders
    assert not any(f.startswith("repositories/org/team/app") for f in folders)
    assert "repositories/stray/_manifests" not in folders
    assert "repositories/stray" not in folders
    assert "repositories/stray/_layers" in folders


def test_fail_closed_on_unparseable_manifest_and_force_keeps_its_repository(
    builder: StoreBuilder,
) -> None:
    b = builder
    l1 = b.layer("l1")
    b.image("bad", tags=["v1"], layers=[l1])
    d = b.push_manifest("bad", b"not json at all", tags=["v2"])
    orphan = b.orphan_blob(b"orphan")
    age_tree(b.root)
    before = fingerprint(b.root)
    with pytest.raises(RefusedError) as info:
        collect(str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True)
    assert info.value.exit_code == 3
    assert any(d.split(":")[1] in r and "unparseable" in r for r in info.value.reasons)
    assert fingerprint(b.root) == before
    # --force: proceeds, keeps everything the unreadable manifest might reference.
    hidden = b.orphan_blob(b"maybe referenced by the bad manifest", repo="bad")
    age_tree(b.root)
    out = collect(
        str(b.root), GcOptions(min_age=0, force=True), dry_run=False, skip_live_check=True
    )
    assert out.executed is not None and out.executed.failed is None
    deleted = {r.action.digest for r in out.executed.results if r.action.step == "blob"}
    assert deleted == {orphan.digest}
    assert hidden.digest not in deleted and d not in deleted


def test_dry_run_writes_nothing(tree: dict) -> None:  # type: ignore[type-arg]
    b = tree["b"]
    before = fingerprint(b.root)
    out = collect(str(b.root), GcOptions(min_age=0, delete_untagged=True), dry_run=True)
    assert out.plan.actions
    assert fingerprint(b.root) == before
    assert not Path(state_dir(str(b.v2))).exists()


def test_dry_run_plan_is_the_plan_a_real_run_executes(tree: dict) -> None:  # type: ignore[type-arg]
    b = tree["b"]
    dry = collect(str(b.root), GcOptions(min_age=0), dry_run=True)
    real = collect(str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True)
    assert real.executed is not None
    assert [(a.step, a.path) for a in dry.plan.actions] == [
        (r.action.step, r.action.path) for r in real.executed.results
    ]
    assert all(r.status == "done" for r in real.executed.results)


def test_text_summary_ends_with_the_restart_advice(tree: dict) -> None:  # type: ignore[type-arg]
    from regfs.render import gc_text

    b = tree["b"]
    out = collect(
        str(b.root), GcOptions(min_age=0, trash=True), dry_run=False, skip_live_check=True
    )
    text = gc_text(out)
    lines = text.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("Now restart the registry"))
    assert all(line.startswith("  ") for line in lines[start + 1 :])  # its wrapped tail
    assert any(line.startswith("Undo with: regfs restore") for line in lines)
    # Warnings are the CLI's, on stderr: never in the result text.
    assert "WARNING" not in text
