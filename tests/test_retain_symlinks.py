"""``regfs retain`` and symbolic links (issue 14): a tag that cannot be removed is kept, and so
is everything it reaches, in the preview and in the plan a run executes.

The registry follows symbolic links, so what it serves through one stays, and regfs never
deletes at, below or containing one (or a link's target inside the store). A tag the rules
remove whose folder is so protected therefore survives: the selection keeps it, with the link
as its reason, and the plan is made with the tag in place (its manifest, the index children and
referrers it reaches, their blobs and layer links stay). Before, the selection removed it, the
composed plan then dropped only the tag's own folder (kept off the symbolic link) and still
freed its manifest and blobs: the preview claimed them, and that plan, executed (the library's
``Registry.execute(..., force=True)``), left a served tag pointing at nothing.

Each case is a copy of a real-registry fixture (``tests/fixtures``): an index with its
children (``multiarch``) and an image with referrers (``referrers``), the tag to remove made
old; then one level on the tag's way replaced by a symbolic link to a copy of it outside the
store, or a kept tag served through the removed tag's folder inside the store. For each:
the selection and the plan (library), the dry run and the real run (CLI: both refuse with the
same reasons, exit 3, nothing changed), the dry run's plan executed under ``force`` (the tag
still resolves, nothing outside the store changes), one case through the real registry
(every surviving tag pulled, digests verified), and a symbolic link swapped in mid-run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from gc_helpers import fingerprint
from schemas import schema_errors
from typer.testing import CliRunner

from regfs.api import Registry
from regfs.cli import app
from regfs.gc.steps import Status, Step
from regfs.graph.servable import tag_report
from regfs.retain.plan import RetainPlan, build_retain_plan
from regfs.retain.policy import Rule, make_rule
from regfs.retain.run import retain
from regfs.retain.select import select
from regfs.scan import Refresher, ScanMode, scan
from regfs.storage.local import LocalStorage

NOW = time.time()
D = 86400.0
V2 = ("docker", "registry", "v2")


@dataclass(frozen=True)
class Fixture:
    """A real-registry fixture, the repository and old tag the rule removes, and the tags the
    rule keeps by name (``into``: the kept tag some variants serve through the removed one)."""

    name: str
    repo: str
    tag: str
    keep_tags: str
    # What the tag's removal frees when nothing protects it (checked on a plain copy).
    roles: frozenset[str]

    def rule(self) -> Rule:
        return make_rule(repos=[self.repo], keep_tags=self.keep_tags, older_than="1d")

    def args(self) -> list[str]:
        return ["--repo", self.repo, "--keep-tags", self.keep_tags, "--older-than", "1d"]


FIXTURES = [
    Fixture("multiarch", "multi/oci-app", "v1", "into", frozenset({"tagged", "child"})),
    Fixture("referrers", "signed/app", "1.0", "sha256-.*|into", frozenset({"tagged", "referrer"})),
]


@dataclass
class Store:
    """A prepared copy: its root, the removed tag's manifest, and where things are."""

    root: Path
    v2: Path
    fx: Fixture
    digest: str
    # The symbolic link the variant made (relative to v2), None for the plain copy.
    link: str | None
    outside: Path

    @property
    def tags(self) -> Path:
        return self.v2 / "repositories" / self.fx.repo / "_manifests" / "tags"

    def storage(self) -> LocalStorage:
        return LocalStorage(self.v2)


def _swap(store: Store, rel: str) -> str:
    """Replace ``v2/rel`` with a symbolic link to a copy of it outside the store."""
    path = store.v2 / rel
    dst = store.outside / path.name
    if path.is_dir():
        shutil.copytree(path, dst, symlinks=True)
        shutil.rmtree(path)
    else:
        shutil.copy2(path, dst)
        path.unlink()
    os.symlink(dst, path)
    return rel


def _into_tag_folder(store: Store) -> str:
    """A kept tag ``into`` whose folder is a link to the removed tag's folder."""
    os.symlink(store.fx.tag, store.tags / "into")
    return str((store.tags / "into").relative_to(store.v2))


def _into_current(store: Store) -> str:
    """A kept tag ``into`` whose ``current`` folder is a link to the removed tag's."""
    into = store.tags / "into"
    into.mkdir()
    os.symlink(f"../{store.fx.tag}/current", into / "current")
    return str((into / "current").relative_to(store.v2))


def _tag(store: Store, *below: str) -> str:
    return "/".join(["repositories", store.fx.repo, "_manifests", "tags", store.fx.tag, *below])


# variant -> how it is made (returns the link's path relative to v2).
VARIANTS: dict[str, Callable[[Store], str]] = {
    "tag-folder": lambda s: _swap(s, _tag(s)),
    "current": lambda s: _swap(s, _tag(s, "current")),
    "current-link": lambda s: _swap(s, _tag(s, "current", "link")),
    "index": lambda s: _swap(s, _tag(s, "index")),
    "repository": lambda s: _swap(s, f"repositories/{s.fx.repo}"),
    "_manifests": lambda s: _swap(s, f"repositories/{s.fx.repo}/_manifests"),
    "into-tag-folder": _into_tag_folder,
    "into-current": _into_current,
    # The tag can go (nothing links its folder); its manifest's revision is the link.
    "revision": lambda s: _swap(
        s, f"repositories/{s.fx.repo}/_manifests/revisions/sha256/{s.digest[7:]}"
    ),
}
KEEPS_THE_TAG = sorted(set(VARIANTS) - {"revision"})


def prepare(tmp: Path, fx: Fixture, variant: str | None) -> Store:
    """Extract ``fx``, make its tag 30 days old (the others 2), apply ``variant``."""
    root = rr.extract_fixture(fx.name, tmp / "root")
    v2 = root.joinpath(*V2)
    outside = tmp / "outside"
    outside.mkdir()
    store = Store(root, v2, fx, "", None, outside)
    for tag in os.listdir(store.tags):
        when = NOW - (30 if tag == fx.tag else 2) * D
        os.utime(store.tags / tag / "current" / "link", (when, when))
    store.digest = (store.tags / fx.tag / "current" / "link").read_text().strip()
    if variant is not None:
        store.link = VARIANTS[variant](store)
    return store


def plan_of(store: Store) -> RetainPlan:
    snap = scan(store.storage(), mode=ScanMode.LAZY)
    sel = select(snap, [store.fx.rule()], now=NOW, min_age=0.0)
    return build_retain_plan(
        snap, sel, min_age=0.0, now=NOW, refresh=Refresher(store.storage(), snap)
    )


def invoke(store: Store, *args: str) -> Any:
    return CliRunner().invoke(
        app, ["retain", str(store.root), *store.fx.args(), *args, "--json", "--min-age", "0"]
    )


def valid(res: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(res.stdout)
    assert schema_errors("retain", doc) == []
    return doc


def ages_dropped(repos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The repositories of a document without the tags' ages (the clock moved between) and
    the removed tags' step status (``planned`` in a dry run, ``not_run`` in a refused one)."""
    drop = ("pushed_age_seconds", "status")
    return [
        {
            k: [{f: x for f, x in t.items() if f not in drop} for t in v]
            if k in ("kept", "removed")
            else v
            for k, v in r.items()
        }
        for r in repos
    ]


def blobs_on_disk(store: Store) -> set[str]:
    return {d for d, _ in rr.iter_blobs(store.root)}


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.name for f in FIXTURES])
def test_plain_copy_frees_the_tag_and_what_it_reaches(tmp_path: Path, fx: Fixture) -> None:
    """The baseline the variants are measured against: with no link, the old tag goes with
    its manifest, the children or referrers only it reached, and their blobs."""
    plan = plan_of(prepare(tmp_path, fx, None))
    assert [t for _, t in plan.selection.removed_tags()] == [fx.tag]  # type: ignore[union-attr]
    assert {m.role for m in plan.freed_manifests} == fx.roles
    assert plan.by_step(Step.BLOB) and plan.by_step(Step.REVISION)


@pytest.mark.parametrize("variant", KEEPS_THE_TAG)
@pytest.mark.parametrize("fx", FIXTURES, ids=[f.name for f in FIXTURES])
def test_a_protected_tag_is_kept_with_all_it_reaches(
    tmp_path: Path, fx: Fixture, variant: str
) -> None:
    """The selection keeps the tag and says which link protects it; the plan then frees
    nothing of it (no manifest, revision, layer link or blob: nothing at all here)."""
    store = prepare(tmp_path, fx, variant)
    plan = plan_of(store)
    assert plan.selection is not None
    (repo,) = plan.selection.repositories
    assert repo.removed == [] and repo.refused is None
    (kept,) = [t for t in repo.kept if t.tag == fx.tag]
    # The link that protects the folder: the variant's own, or (a kept tag served through
    # the removed tag's folder) the link's target inside the store.
    link = {"into-tag-folder": _tag(store), "into-current": _tag(store, "current")}
    assert f"symbolic link {link.get(variant, store.link)} (" in kept.reason, kept.reason
    assert plan.actions == [] and plan.manifests == [] and plan.freed_manifests == []
    assert plan.reclaimed_bytes == 0


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.name for f in FIXTURES])
def test_a_linked_revision_lets_the_tag_go_but_keeps_its_manifest(
    tmp_path: Path, fx: Fixture
) -> None:
    store = prepare(tmp_path, fx, "revision")
    plan = plan_of(store)
    assert [a.path for a in plan.by_step(Step.TAG)] == [_tag(store)]
    assert plan.manifests == [] and plan.freed_manifests == []
    assert not plan.by_step(Step.BLOB) and not plan.by_step(Step.REVISION)
    assert not plan.by_step(Step.LAYER_LINK)
    # The preview says why the manifest stays: the link at its revision (and only that one:
    # what it reaches stays because it stays).
    (kept,) = [k for k in plan.kept if k.kind is Step.REVISION]
    assert (kept.path, kept.digest, kept.repository) == (store.link, store.digest, fx.repo)
    assert f"symbolic link {store.link}" in kept.reason


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.name for f in FIXTURES])
def test_a_linked_revision_a_kept_tag_still_reaches_needs_no_word(
    tmp_path: Path, fx: Fixture
) -> None:
    """The manifest stays because a kept tag (``into``, a plain copy of the removed tag)
    still points at it: the link is not why, and the preview does not say it is."""
    store = prepare(tmp_path, fx, "revision")
    shutil.copytree(store.tags / fx.tag, store.tags / "into", symlinks=True)
    plan = plan_of(store)
    assert [a.path for a in plan.by_step(Step.TAG)] == [_tag(store)]
    assert plan.manifests == [] and not plan.by_step(Step.BLOB)
    assert [k for k in plan.kept if k.kind is Step.REVISION] == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("fx", FIXTURES, ids=[f.name for f in FIXTURES])
def test_cli_dry_and_real_run_agree(tmp_path: Path, fx: Fixture, variant: str) -> None:
    """The dry run shows the plan (the tag kept, with why; nothing of it freed) and refuses
    with exit 3 for the link (a symbolic link stops a run without --force, as in gc); the
    real run refuses for the same reasons, exit 3, and changes nothing."""
    store = prepare(tmp_path, fx, variant)
    before = fingerprint(store.root)
    dry = invoke(store, "--dry-run")
    assert dry.exit_code == 3, dry.output
    doc = valid(dry)
    assert doc["status"] == "refused"
    assert {r["kind"] for r in doc["refused"]} == {"scan_problem"}
    assert store.link in {r["path"] for r in doc["refused"]}
    (repo,) = doc["repositories"]
    assert doc["manifests"] == [] and doc["blobs"] == [] and doc["reclaimed_bytes"] == 0
    if variant == "revision":
        assert [t["tag"] for t in repo["removed"]] == [fx.tag]
        assert [k["path"] for k in doc["kept"] if k["kind"] == "revision"] == [store.link]
    else:
        assert repo["removed"] == []
        (kept,) = [t for t in repo["kept"] if t["tag"] == fx.tag]
        assert "symbolic link" in kept["reason"]
    real = invoke(store, "--yes", "--skip-live-check")
    assert real.exit_code == 3, real.output
    got = valid(real)
    assert got["status"] == "refused" and got["refused"] == doc["refused"]
    assert ages_dropped(got["repositories"]) == ages_dropped(doc["repositories"])
    assert fingerprint(store.root) == before


def execute_forced(store: Store) -> None:
    """The dry run's plan object executed under ``force`` (a symbolic link no longer stops
    it), as a library caller may: ``Registry.execute``."""
    reg = Registry.open(str(store.root))
    dry = reg.retain([store.fx.rule()], dry_run=True, min_age=0.0, skip_live_check=True)
    assert {r.kind for r in dry.run.would_refuse or []} == {"scan_problem"}
    done = reg.execute(dry.run, force=True, skip_live_check=True, confirm=lambda _plan: True)
    assert done.executed is not None and not done.executed.failed


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("fx", FIXTURES, ids=[f.name for f in FIXTURES])
def test_the_previewed_plan_executed_keeps_the_tag_whole(
    tmp_path: Path, fx: Fixture, variant: str
) -> None:
    store = prepare(tmp_path, fx, variant)
    blobs = blobs_on_disk(store)
    outside = fingerprint(store.outside)
    execute_forced(store)
    assert blobs_on_disk(store) == blobs, "a blob the kept tag (or manifest) needs went"
    assert fingerprint(store.outside) == outside, "changed through a symbolic link"
    assert (store.v2 / store.link).is_symlink()  # type: ignore[operator]
    snap = scan(store.storage())
    repo = snap.repositories[fx.repo]
    assert (fx.tag in repo.tags) == (variant != "revision")
    for tag in repo.tags:
        report = tag_report(snap, repo, tag)
        assert not report.broken, (tag, report)
    assert store.digest in repo.revisions


@pytest.mark.registry
def test_real_registry_pulls_every_surviving_tag(tmp_path: Path) -> None:
    """The index case with its tag's ``current`` a link outside the store, another index of
    another repository removed by the same run: after the previewed plan is executed the
    real registry (2.8.2) serves every surviving tag, digests verified (the protected one
    through its link), and the removed one is 404."""
    rr.require_binaries()
    fx = FIXTURES[0]
    store = prepare(tmp_path, fx, "current")
    other = "multi/docker-app"
    link = store.v2 / "repositories" / other / "_manifests" / "tags" / "v1" / "current" / "link"
    old = NOW - 30 * D
    os.utime(link, (old, old))
    rule = make_rule(repos=[fx.repo, other], keep_tags="", older_than="1d")
    reg = Registry.open(str(store.root))
    dry = reg.retain([rule], dry_run=True, min_age=0.0, skip_live_check=True)
    assert dry.run.would_refuse
    assert dry.selection.removed_tags() == [(other, "v1")]
    assert {m.repository for m in dry.plan.freed_manifests} == {other}
    with rr.Registry(store.root) as live:
        before = live.pull_all()
    done = reg.execute(dry.run, force=True, skip_live_check=True, confirm=lambda _plan: True)
    assert done.executed is not None and not done.executed.failed
    with rr.Registry(store.root) as live:
        after = live.pull_all()
        with pytest.raises(rr.RegistryHTTPError) as gone:
            live.get_manifest(other, "v1")
        assert gone.value.status == 404
    assert after.pop(other, {}) == {}
    del before[other]
    assert after == before
    assert store.digest in after[fx.repo][fx.tag]


@pytest.mark.parametrize("trash", [False, True])
def test_a_link_swapped_in_after_the_plan_keeps_the_tag_and_all_below(
    tmp_path: Path, trash: bool
) -> None:
    """Fault injection: the plan removes the tag with its manifest, children and blobs; the
    tag's ``current`` becomes a link after the plan, before the executor reaches it. The
    re-check refuses the tag's removal and every step planned on it is skipped: the tag
    still resolves whole, and nothing outside the store changes."""
    fx = FIXTURES[0]
    store = prepare(tmp_path, fx, None)
    blobs = blobs_on_disk(store)
    planned: list[int] = []

    def confirm(plan: object) -> bool:
        assert isinstance(plan, RetainPlan)
        planned.append(len(plan.manifests))
        store.link = _swap(store, _tag(store, "current"))
        return True

    out = retain(
        str(store.root),
        [fx.rule()],
        dry_run=False,
        trash=trash,
        min_age=0.0,
        skip_live_check=True,
        confirm=confirm,
        now=NOW,
    )
    assert planned == [3] and out.run.executed is not None  # the index and its 2 children
    outside = fingerprint(store.outside)
    results = {r.action.path: r for r in out.run.executed.results}
    tag = results[_tag(store)]
    assert tag.status is Status.SKIPPED, tag
    freed = [a for a in out.plan.actions if a.step not in (Step.TAG, Step.FOLDER)]
    assert freed
    for a in freed:
        assert results[a.path].status is Status.SKIPPED, (a.path, results[a.path])
    assert blobs_on_disk(store) == blobs
    assert fingerprint(store.outside) == outside
    snap = scan(store.storage())
    assert not tag_report(snap, snap.repositories[fx.repo], fx.tag).broken
