"""The retention plan and run: what goes with a removed tag, what stays, on built trees."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from builder import COSIGN_SIG, Pushed, StoreBuilder
from gc_helpers import age_tree, assert_whole, fingerprint, rescan

from regfs.api import Registry
from regfs.gc.execute import Ops
from regfs.gc.plan import PartKind
from regfs.gc.steps import Status, Step
from regfs.graph.servable import tag_report
from regfs.layout import blob_dir
from regfs.retain.plan import build_retain_plan
from regfs.retain.policy import Rule, make_rule
from regfs.retain.run import retain
from regfs.retain.select import select
from regfs.scan import Refresher, ScanMode
from regfs.storage.base import Storage

NOW = time.time()
D = 86400.0


def pushed(b: StoreBuilder, repo: str, tag: str, days_ago: float) -> None:
    """Set the pushed-at time of ``repo:tag`` (its current link's mtime)."""
    t = NOW - days_ago * D
    os.utime(b.path(f"repositories/{repo}/_manifests/tags/{tag}/current/link"), (t, t))


def plan_for(b: StoreBuilder, *rules: Rule, min_age: float = 0.0):  # type: ignore[no-untyped-def]
    snap = b.scan(mode=ScanMode.LAZY)
    sel = select(snap, list(rules), now=NOW, min_age=min_age)
    return build_retain_plan(
        snap, sel, min_age=min_age, now=NOW, refresh=Refresher(b.storage(), snap)
    )


def blobs_on_disk(b: StoreBuilder) -> set[str]:
    return {"sha256:" + p.parent.name for p in (b.v2 / "blobs").rglob("data") if p.parent.is_dir()}


def tags_on_disk(b: StoreBuilder, repo: str) -> set[str]:
    base = b.v2 / "repositories" / repo / "_manifests" / "tags"
    return {p.name for p in base.iterdir()} if base.exists() else set()


@pytest.fixture
def three(tmp_path: Path) -> tuple[StoreBuilder, list[Pushed], object]:
    """app:v1..v3 (days 30, 20, 10 ago) sharing a base layer, app:latest on v3."""
    b = StoreBuilder(tmp_path)
    base = b.layer("base")
    imgs = [b.image("app", tags=[f"v{i}"], layers=[base, b.layer(f"own{i}")]) for i in (1, 2, 3)]
    b.tag("app", "latest", imgs[2].digest)
    age_tree(tmp_path)
    for i, days in enumerate((30, 20, 10)):
        pushed(b, "app", f"v{i + 1}", days)
    return b, imgs, base


def test_keep_last_removes_tag_manifest_and_only_its_own_blobs(three) -> None:  # type: ignore[no-untyped-def]
    b, imgs, base = three
    plan = plan_for(b, make_rule(keep_last=2))
    v1 = imgs[0]
    assert [a.path for a in plan.by_step(Step.TAG)] == ["repositories/app/_manifests/tags/v1"]
    assert plan.manifests == [("app", v1.digest)]
    gone = {a.digest for a in plan.by_step(Step.BLOB)}
    own = v1.blob_digests - {base.digest}
    assert gone == own  # manifest, config, own layer; not the shared base
    assert {a.digest for a in plan.by_step(Step.LAYER_LINK)} == own - {v1.digest}
    assert plan.freed_bytes == {"app": plan.reclaimed_bytes}
    assert [(m.role, m.via) for m in plan.freed_manifests] == [("tagged", "v1")]


def test_two_tags_one_digest_one_kept_removes_only_the_tag(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path)
    img = b.image("app", tags=["old", "stable"], layers=[b.layer("x")])
    b.image("app", tags=["new"], layers=[b.layer("y")])
    age_tree(tmp_path)
    pushed(b, "app", "old", 30)
    pushed(b, "app", "stable", 1)
    pushed(b, "app", "new", 2)
    plan = plan_for(b, make_rule(keep_last=2))
    assert [a.path for a in plan.actions] == ["repositories/app/_manifests/tags/old"]
    assert plan.manifests == [] and img.digest


def test_index_children_and_referrers_go_with_their_tag(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path)
    amd = b.image("app", layers=[b.layer("amd")])
    arm = b.image("app", layers=[b.layer("arm")], platform="linux/arm64")
    shared = b.image("app", layers=[b.layer("shared")], tags=["solo"])
    idx = b.index("app", children=[amd, arm, shared], tags=["v1"])
    sig = b.referrer("app", subject=idx, artifact_type=COSIGN_SIG)
    new = b.image("app", layers=[b.layer("new")], tags=["v2"])
    untagged = b.image("app", layers=[b.layer("untagged")])
    orphan = b.orphan_blob(b"orphan bytes")
    age_tree(tmp_path)
    pushed(b, "app", "v1", 30)
    pushed(b, "app", "solo", 2)
    pushed(b, "app", "v2", 1)
    plan = plan_for(b, make_rule(tags="v.*", keep_last=1))
    roles = {(m.digest, m.role) for m in plan.freed_manifests}
    assert roles == {
        (idx.digest, "tagged"),
        (amd.digest, "child"),
        (arm.digest, "child"),
        (sig.digest, "referrer"),
    }
    gone = {a.digest for a in plan.by_step(Step.BLOB)}
    assert gone == (
        idx.blob_digests | amd.blob_digests | arm.blob_digests | sig.blob_digests
    ) - shared.blob_digests - {d for d in sig.blob_digests if d in new.blob_digests}
    assert orphan.digest not in gone  # already garbage: gc's job
    assert not gone & untagged.blob_digests  # untagged before the run: untouched
    assert ("app", untagged.digest) not in plan.manifests


def test_blob_used_by_another_repository_stays(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path)
    layer = b.layer("common")
    old = b.image("app", tags=["old"], layers=[layer])
    b.image("app", tags=["new"], layers=[b.layer("n")])
    b.image("other", tags=["x"], layers=[layer], label="other")
    age_tree(tmp_path)
    pushed(b, "app", "old", 9)
    pushed(b, "app", "new", 1)
    plan = plan_for(b, make_rule(repos=["app"], keep_last=1))
    gone = {a.digest for a in plan.by_step(Step.BLOB)}
    assert layer.digest not in gone and old.digest in gone
    # app's link to the shared layer goes (no manifest of app uses it), other's stays.
    links = {a.path for a in plan.by_step(Step.LAYER_LINK)}
    assert f"repositories/app/_layers/sha256/{layer.digest[7:]}" in links
    assert not any(p.startswith("repositories/other/") for p in links)
    assert "other" not in {a.repository for a in plan.actions}


def test_young_blob_kept(three) -> None:  # type: ignore[no-untyped-def]
    b, imgs, _base = three
    own = b.path(blob_dir(imgs[0].config.digest) + "/data")
    os.utime(own, (NOW, NOW))
    plan = plan_for(b, make_rule(keep_last=2), min_age=3600)
    kept = {k.digest: k.reason for k in plan.kept}
    assert kept[imgs[0].config.digest] == "younger than --min-age"


def test_real_run_then_restore(three) -> None:  # type: ignore[no-untyped-def]
    b, imgs, _base = three
    before = fingerprint(b.root)
    out = retain(
        str(b.root),
        [make_rule(keep_last=1)],
        dry_run=False,
        trash=True,
        min_age=0,
        skip_live_check=True,
    )
    assert out.run.executed is not None and not out.run.executed.failed
    assert tags_on_disk(b, "app") == {"v3", "latest"}
    snap = rescan(b)
    assert_whole(snap)
    assert blobs_on_disk(b) == imgs[2].blob_digests
    Registry.open(str(b.root)).restore(out.plan.run_id)
    assert fingerprint(b.root) == before


def test_dry_run_touches_nothing_and_is_the_same_plan(three) -> None:  # type: ignore[no-untyped-def]
    b, _imgs, _base = three
    before = fingerprint(b.root)
    out = retain(
        str(b.root), [make_rule(keep_last=1)], dry_run=True, min_age=0, skip_live_check=True
    )
    assert fingerprint(b.root) == before
    assert {a.repository for a in out.plan.by_step(Step.TAG)} == {"app"}
    assert not (b.root / ".regfs").exists()


def test_equal_seconds_refuse_only_that_repository(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path)
    for repo in ("copied", "fine"):
        for t in ("a", "b", "c"):
            b.image(repo, tags=[t], layers=[b.layer(f"{repo}{t}")])
    age_tree(tmp_path)
    for i, t in enumerate("abc"):
        pushed(b, "fine", t, 10 - i)
    out = retain(
        str(b.root), [make_rule(keep_last=1)], dry_run=False, min_age=0, skip_live_check=True
    )
    assert [r.name for r in out.selection.refused] == ["copied"]
    assert tags_on_disk(b, "copied") == {"a", "b", "c"}
    assert tags_on_disk(b, "fine") == {"c"}
    assert_whole(rescan(b))


class PushedAgainMidRun(Ops):
    """At the run's first change (removing one of ``tags``), the other tag is pushed again
    (same digest: the registry rewrites its current link, which gets a new mtime), as a
    client may do between plan and run."""

    def __init__(self, tags: Path, names: set[str]) -> None:
        self.tags = tags
        self.names = names
        self.pushed: str | None = None

    def _push(self, path: str) -> None:
        if self.pushed is None:
            first = {n for n in self.names if f"/tags/{n}/" in path + "/"}
            (self.pushed,) = self.names - first
            link = self.tags / self.pushed / "current" / "link"
            link.write_bytes(link.read_bytes())
            t = time.time()
            os.utime(link, (t, t))

    def unlink(self, storage: Storage, path: str) -> None:
        self._push(path)
        super().unlink(storage, path)

    def move_to_trash(self, storage: Storage, path: str, run_id: str) -> None:
        self._push(path)
        super().move_to_trash(storage, path, run_id)


@pytest.mark.parametrize("trash", [False, True])
def test_tag_pushed_again_mid_run_keeps_its_manifest_and_blobs(three, trash: bool) -> None:  # type: ignore[no-untyped-def]
    """keep-last 1 plans v1 and v2 with their manifests and own blobs. One of them is pushed
    again after the other's folder went: its removal is skipped at the re-check, and so is
    every step planned because the tags went (the gc part of the composed plan): its
    manifest, revision, layer links and blobs all stay, and it still pulls."""
    b, imgs, _base = three
    ops = PushedAgainMidRun(b.path("repositories/app/_manifests/tags"), {"v1", "v2"})
    before = fingerprint(b.root)
    out = retain(
        str(b.root),
        [make_rule(keep_last=1)],
        dry_run=False,
        trash=trash,
        min_age=0,
        skip_live_check=True,
        ops=ops,
        now=NOW,
    )
    plan = out.plan
    assert ops.pushed is not None and out.run.executed is not None
    assert not out.run.executed.failed
    victim = imgs[int(ops.pushed[1]) - 1]
    first = {"v1", "v2"} - {ops.pushed}
    assert {plan.origin[a.path] for a in plan.by_step(Step.TAG)} == {PartKind.RETAIN}
    freed = [a for a in plan.actions if a.step not in (Step.TAG, Step.FOLDER)]
    assert freed and {plan.origin[a.path] for a in freed} == {PartKind.GC}
    assert ("app", victim.digest) in plan.manifests  # planned to go with its tag
    results = {r.action.path: r for r in out.run.executed.results}
    for tag in first:
        assert results[f"repositories/app/_manifests/tags/{tag}"].status is Status.DONE
    skipped = results[f"repositories/app/_manifests/tags/{ops.pushed}"]
    assert skipped.status is Status.SKIPPED and "moved" in skipped.detail
    for a in freed:
        assert results[a.path].status is Status.SKIPPED, a.path
        assert "planned on the removal of" in results[a.path].detail
    assert tags_on_disk(b, "app") == {ops.pushed, "v3", "latest"}
    assert victim.blob_digests <= blobs_on_disk(b)
    now = fingerprint(b.root)
    kept = {p for p in before if not any(f"/tags/{t}" in p for t in {"v1", "v2"})}
    assert {p: now.get(p) for p in kept} == {p: before[p] for p in kept}, "every file stays"
    snap = rescan(b)
    assert_whole(snap)
    report = tag_report(snap, snap.repositories["app"], ops.pushed)
    assert not report.broken, report
    if trash:
        Registry.open(str(b.root)).restore(plan.run_id)
        assert tags_on_disk(b, "app") == {"v1", "v2", "v3", "latest"}
        assert_whole(rescan(b))
