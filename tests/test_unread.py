"""regfs.graph.unread: what each unreadable part of the layout forces gc to keep (the marking rule).

Permission denial is simulated here (the suite runs as root, which chmod cannot stop); the same
levels are made unreadable for real, by an unprivileged process against the real registry, in
tests/test_unreadable_matrix.py.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder, hexof

from regfs.gc.garbage import gc_candidates
from regfs.gc.plan import GcOptions, GcPlan
from regfs.gc.refresh import build_plan, refreshed
from regfs.graph.mark import Mode, mark
from regfs.graph.unread import Scope, _classify, unknowns
from regfs.model.findings import Finding, Kind
from regfs.reports.orphans import orphans
from regfs.scan import ScanMode, Snapshot, scan
from regfs.storage.local import LocalStorage


def blob_dir(d: str) -> str:
    return f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}"


@pytest.fixture
def store(builder: StoreBuilder) -> StoreBuilder:
    """app: a tagged image with a referrer, a tagged index of two children, an untagged image
    and a deleted one (orphans); other: a tagged image and a linked orphan."""
    b = builder
    base = b.layer("base")
    tagged = b.image("app", tags=["v1"], layers=[base, b.layer("app")])
    sig = b.referrer("app", subject=tagged)
    c1 = b.image("app", layers=[b.layer("c1")], platform="linux/amd64")
    c2 = b.image("app", layers=[b.layer("c2")], platform="linux/arm64")
    idx = b.index("app", children=[c1, c2], tags=["multi"])
    b.untagged = b.image("app", layers=[b.layer("old")])  # type: ignore[attr-defined]
    gone = b.image("app", layers=[b.layer("gone")])
    b.delete_manifest("app", gone.digest)
    other = b.image("other", tags=["1"], layers=[base])
    b.loose = b.orphan_blob(b"loose", repo="other")  # type: ignore[attr-defined]
    b.tagged, b.sig, b.idx = tagged, sig, idx  # type: ignore[attr-defined]
    b.gone, b.other = gone, other  # type: ignore[attr-defined]
    b.live = (  # type: ignore[attr-defined]
        tagged.blob_digests
        | sig.blob_digests
        | idx.blob_digests
        | c1.blob_digests
        | c2.blob_digests
        | other.blob_digests
    )
    return b


def fast_plan(b: StoreBuilder, *, untagged: bool = False) -> tuple[Snapshot, GcPlan]:
    """The scan (as the run refreshed it) and plan `regfs gc --force --min-age 0` makes."""
    storage = LocalStorage(b.v2)
    snap = scan(storage, workers=1, mode=ScanMode.LAZY if untagged else ScanMode.TAG_NAMES)
    opts = GcOptions(delete_untagged=untagged, min_age=0, force=True)
    fresh = refreshed(storage, snap, gc_candidates(snap, opts, now=time.time()))
    return fresh, build_plan(fresh, opts)


def deleted_blobs(plan: GcPlan) -> set[str]:
    return {a.digest for a in plan.actions if a.step == "blob" and a.digest}


def deleted_manifests(plan: GcPlan) -> set[str]:
    return {d for _r, d in plan.manifests}


def test_healthy_store_deletes_exactly_the_orphans(store: StoreBuilder) -> None:
    _snap, plan = fast_plan(store)
    assert deleted_blobs(plan) == store.gone.blob_digests | {store.loose.digest}  # type: ignore[attr-defined]
    _snap, plan = fast_plan(store, untagged=True)
    assert deleted_manifests(plan) == {store.untagged.digest}  # type: ignore[attr-defined]


# Each level whose loss hides revisions, layer links or repositories: no blob may go at all.
EVERYTHING = [
    "repositories",
    "repositories/app",
    "repositories/app/_manifests",
    "repositories/app/_manifests/revisions",
    "repositories/app/_manifests/revisions/sha256",
    "REVISION_FOLDER",
    "REVISION_LINK",
    "repositories/app/_layers",
    "repositories/app/_layers/sha256",
    "blobs",
    "blobs/sha256",
]


def _level(b: StoreBuilder, level: str) -> Path:
    d = b.tagged.digest  # type: ignore[attr-defined]
    if level == "REVISION_FOLDER":
        return b.path(f"repositories/app/_manifests/revisions/sha256/{hexof(d)}")
    if level == "REVISION_LINK":
        return b.path(f"repositories/app/_manifests/revisions/sha256/{hexof(d)}/link")
    if level == "PREFIX":
        return b.path(blob_dir(d).rsplit("/", 1)[0])
    if level == "BLOB_FOLDER":
        return b.path(blob_dir(d))
    if level == "DATA":
        return b.path(blob_dir(d) + "/data")
    return b.path(level)


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "untagged"])
@pytest.mark.parametrize("level", EVERYTHING)
def test_unreadable_level_keeps_every_blob(
    store: StoreBuilder, deny: Callable[[Path], None], level: str, untagged: bool
) -> None:
    deny(_level(store, level))
    snap, plan = fast_plan(store, untagged=untagged)
    assert deleted_blobs(plan) == set()
    assert plan.blocking, "an unreadable part must stop gc without --force"
    marks = mark(snap, Mode.DEFAULT)
    assert marks.keep_all, level
    # The report of `regfs orphans` comes from a full scan (a lazy one knows sizes by name only).
    full = scan(LocalStorage(store.v2), workers=1)
    report = orphans(full)
    assert report.orphaned_blobs == []
    assert {b.digest for b in report.undecidable} == set(full.blobs) - mark(
        full, Mode.DEFAULT
    ).marked
    assert not report.healthy
    # Manifests of the repository whose folders cannot be read are never deleted.
    assert store.untagged.digest not in deleted_manifests(plan)  # type: ignore[attr-defined]


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "untagged"])
@pytest.mark.parametrize("level", ["PREFIX", "BLOB_FOLDER", "DATA"])
def test_unreadable_manifest_keeps_what_its_repository_links(
    store: StoreBuilder, deny: Callable[[Path], None], level: str, untagged: bool
) -> None:
    deny(_level(store, level))
    snap, plan = fast_plan(store, untagged=untagged)
    gone = deleted_blobs(plan)
    assert not gone & store.live  # type: ignore[attr-defined]
    # Only what no repository holding the unreadable manifest links may go: "other"'s orphan
    # and the deleted manifest's own blob (no revision link: nothing can serve it).
    assert gone <= {store.loose.digest, store.gone.digest}  # type: ignore[attr-defined]
    assert store.loose.digest in gone  # type: ignore[attr-defined]
    assert deleted_manifests(plan) == set()  # every revision of "app" stays a root
    assert plan.blocking
    u = unknowns(snap)
    assert "app" in u.manifests and not u.everything
    report = orphans(snap)
    assert not {b.digest for b in report.orphaned_blobs} & store.live  # type: ignore[attr-defined]
    assert report.undecidable and not report.healthy
    assert report.dangling == []  # a reference into an unreadable folder is unknown, not missing


@pytest.mark.parametrize("level", ["repositories/app/_manifests/tags", "TAG"])
def test_unreadable_tags_keep_the_repositorys_revisions(
    store: StoreBuilder, deny: Callable[[Path], None], level: str
) -> None:
    path = store.path("repositories/app/_manifests/tags/v1" if level == "TAG" else level)
    deny(path)
    snap, plan = fast_plan(store, untagged=True)
    assert deleted_manifests(plan) == set()
    assert not deleted_blobs(plan) & store.live  # type: ignore[attr-defined]
    # Tags are served only through revision links, which are all known: orphans still go.
    assert deleted_blobs(plan) == store.gone.blob_digests | {store.loose.digest}  # type: ignore[attr-defined]
    assert unknowns(snap).tags.keys() == {"app"}


def test_unreadable_manifest_in_another_prefix_is_read_not_called_missing(
    store: StoreBuilder, deny: Callable[[Path], None]
) -> None:
    """A revision whose blob folder cannot be listed is unknown, never dangling."""
    deny(_level(store, "PREFIX"))
    snap = store.scan()
    assert mark(snap, Mode.DEFAULT).dangling == []
    d = store.tagged.digest  # type: ignore[attr-defined]
    assert d in snap.unparseable


def test_unrecognised_blocking_finding_keeps_everything() -> None:
    f = Finding(Kind.UNREADABLE, "somewhere/odd", "cannot list", blocks_gc=True)
    assert _classify(f, []).scope is Scope.EVERYTHING
    f = Finding(Kind.UNREADABLE, "repositories/a/_weird", "x", repository="a", blocks_gc=True)
    assert _classify(f, ["a"]).scope is Scope.EVERYTHING


@pytest.mark.parametrize(
    ("path", "kind", "scope"),
    [
        ("repositories", Kind.UNREADABLE, Scope.EVERYTHING),
        ("repositories/org", Kind.UNREADABLE, Scope.EVERYTHING),
        ("repositories/a/_layers/sha256/ab", Kind.UNREADABLE, Scope.EVERYTHING),
        ("repositories/a/_manifests/revisions/sha256/ab/link", Kind.UNREADABLE, Scope.EVERYTHING),
        ("repositories/a/_manifests/revisions/sha256/ab/link", Kind.EMPTY_LINK, Scope.MANIFESTS),
        ("repositories/a/_manifests/revisions/sha256/ab/link", Kind.LINK_MISMATCH, Scope.NONE),
        ("repositories/a/_manifests/tags/v1/current/link", Kind.UNREADABLE, Scope.TAGS),
        ("repositories/a/_manifests/tags/v1/index/sha256", Kind.UNREADABLE, Scope.NONE),
        ("repositories/a/_uploads/u", Kind.UNREADABLE, Scope.NONE),
        ("blobs", Kind.UNREADABLE, Scope.EVERYTHING),
        ("blobs/sha256", Kind.UNREADABLE, Scope.EVERYTHING),
        ("blobs/sha256/ab", Kind.UNREADABLE, Scope.BLOBS),
        ("blobs/sha256/ab/ab12", Kind.UNREADABLE, Scope.BLOBS),
        ("blobs/sha256/ab/ab12/data", Kind.UNPARSEABLE_MANIFEST, Scope.MANIFESTS),
    ],
)
def test_classification(path: str, kind: Kind, scope: Scope) -> None:
    repo = "a" if path.startswith("repositories/a/") else None
    f = Finding(kind, path, "m", repository=repo, blocks_gc=True)
    assert _classify(f, ["a"]).scope is scope


# --- symbolic links: read through for marking, never deleted through ---------------------------


def _move_out(b: StoreBuilder, rel: str, outside: Path) -> None:
    """Move ``rel`` outside the store and put a symbolic link to it in its place."""
    import shutil

    target = outside / rel.replace("/", "_")
    shutil.move(b.path(rel), target)
    b.path(rel).symlink_to(target)


def _symlink_levels(b: StoreBuilder) -> list[str]:
    d = b.tagged.digest  # type: ignore[attr-defined]
    return [
        "repositories/app",
        "repositories/app/_manifests",
        "repositories/app/_manifests/revisions",
        "repositories/app/_layers",
        f"repositories/app/_manifests/revisions/sha256/{hexof(d)}/link",
        "repositories/app/_manifests/tags/v1",
        blob_dir(d).rsplit("/", 1)[0],
        blob_dir(d),
        blob_dir(d) + "/data",
        blob_dir(b.gone.digest),  # type: ignore[attr-defined]  # an orphan behind a link
        "blobs",
    ]


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "untagged"])
@pytest.mark.parametrize("index", range(11))
def test_symlinked_level_is_marked_and_never_deleted_through(
    store: StoreBuilder, tmp_path: Path, index: int, untagged: bool
) -> None:
    level = _symlink_levels(store)[index]
    outside = tmp_path / "outside"
    outside.mkdir()
    _move_out(store, level, outside)
    snap, plan = fast_plan(store, untagged=untagged)
    assert not deleted_blobs(plan) & store.live  # type: ignore[attr-defined]
    for a in plan.actions:  # nothing at, below or containing the link
        assert not (a.path == level or a.path.startswith(level + "/")), a
        assert not level.startswith(a.path + "/"), a
    assert any(f.kind is Kind.SYMLINK for f in plan.blocking)
    assert not unknowns(snap).everything  # read through: nothing unknown
    if level != "blobs" and not level.startswith(blob_dir(store.gone.digest)):  # type: ignore[attr-defined]
        # The orphans outside the link are still reclaimed.
        assert store.loose.digest in deleted_blobs(plan)  # type: ignore[attr-defined]
    if untagged and level in _symlink_levels(store)[:3]:
        # An untagged revision behind the link stays a root, with its blobs.
        assert not deleted_blobs(plan) & store.untagged.blob_digests  # type: ignore[attr-defined]


def test_a_symlink_target_inside_the_store_is_never_deleted(store: StoreBuilder) -> None:
    """blobs/.../X -> blobs/.../Y: the registry serves Y's data as X; Y must stay even when
    nothing names Y (and X is live)."""
    import shutil

    live = store.tagged.digest  # type: ignore[attr-defined]
    spare = store.orphan_blob(b"spare")  # unreferenced: gc would delete it
    x, y = store.path(blob_dir(live)), store.path(blob_dir(spare.digest))
    shutil.rmtree(x)
    x.symlink_to(y)
    _snap, plan = fast_plan(store)
    assert spare.digest not in deleted_blobs(plan)
    assert any(f.path == blob_dir(spare.digest) for f in plan.blocking)


# --- every path of a store, damaged in turn: damage only ever shrinks what gc deletes ----------


def _all_paths(b: StoreBuilder) -> list[str]:
    out = []
    for cur, dirs, files in os.walk(b.v2):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(cur, n), b.v2))
    return sorted(out)


def _plan_sets(b: StoreBuilder, untagged: bool) -> tuple[set[str], set[str], list[Finding]]:
    _snap, plan = fast_plan(b, untagged=untagged)
    return deleted_blobs(plan), deleted_manifests(plan), plan.blocking


class _Denied:
    """Simulate ``chmod 000`` on one path for LocalStorage (the suite runs as root): listing or
    reading it fails, and so does any access below it; its own lstat still works."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
        self.path = path

        def guard(self_: LocalStorage, rel: str, *, itself: bool) -> None:
            p = self_.abspath(rel)
            if p.startswith(path + "/") or (itself and p == path):
                raise PermissionError(errno.EACCES, "Permission denied", p)

        for name, itself in (
            ("list_dir", True),
            ("list_kinds", True),
            ("read_file", True),
            ("lstat", False),
            ("stat", False),
        ):
            orig = getattr(LocalStorage, name)

            def patched(
                self_: LocalStorage, rel: str, *a: Any, _o: Any = orig, _i: bool = itself, **k: Any
            ) -> Any:
                guard(self_, rel, itself=_i)
                return _o(self_, rel, *a, **k)

            monkeypatch.setattr(LocalStorage, name, patched)

        def exists(self_: LocalStorage, rel: str) -> bool:
            guard(self_, rel, itself=False)
            return os.path.lexists(self_.abspath(rel))

        monkeypatch.setattr(LocalStorage, "exists", exists)


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "untagged"])
def test_every_path_unreadable_in_turn_only_shrinks_what_gc_deletes(
    store: StoreBuilder, untagged: bool
) -> None:
    healthy_blobs, healthy_manifests, blocking = _plan_sets(store, untagged)
    assert blocking == [] and healthy_blobs and (healthy_manifests or not untagged)
    for rel in _all_paths(store):
        with pytest.MonkeyPatch.context() as mp:
            _Denied(mp, str(store.v2 / rel))
            blobs, manifests, blocking = _plan_sets(store, untagged)
        assert blobs <= healthy_blobs, rel
        assert manifests <= healthy_manifests, rel
        assert not blobs & store.live, rel  # type: ignore[attr-defined]
        if (blobs, manifests) != (healthy_blobs, healthy_manifests):
            assert blocking, f"{rel}: the plan changed but gc would not refuse without --force"


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "untagged"])
def test_every_path_symlinked_in_turn_deletes_nothing_through_it(
    store: StoreBuilder, tmp_path: Path, untagged: bool
) -> None:
    import shutil

    healthy_blobs, healthy_manifests, _ = _plan_sets(store, untagged)
    outside = tmp_path / "outside"
    for i, rel in enumerate(_all_paths(store)):
        real = store.path(rel)
        if real.is_symlink() or not real.exists():
            continue
        target = outside / str(i)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(real, target)
        real.symlink_to(target)
        try:
            _snap, plan = fast_plan(store, untagged=untagged)
            assert deleted_blobs(plan) <= healthy_blobs, rel
            assert deleted_manifests(plan) <= healthy_manifests, rel
            assert not deleted_blobs(plan) & store.live, rel  # type: ignore[attr-defined]
            for a in plan.actions:
                assert not (a.path == rel or a.path.startswith(rel + "/")), (rel, a)
                assert not rel.startswith(a.path + "/"), (rel, a)
            changed = (deleted_blobs(plan), deleted_manifests(plan)) != (
                healthy_blobs,
                healthy_manifests,
            )
            history = not untagged and "/index" in rel and "/_manifests/tags/" in rel
            if changed or not (rel.endswith(("/link", "/data", "/current")) or history):
                # gc's fast scan lists the folders it walks but reads or stats only the files
                # it needs, straight through their folder: a symlinked link file, data file of
                # a live blob or tag `current` folder changes nothing and may go unnoticed, and
                # default mode never reads tag histories (nothing is deleted through any of
                # them); `regfs check` reports them.
                assert any(f.kind is Kind.SYMLINK for f in plan.blocking), rel
        finally:
            real.unlink()
            shutil.move(target, real)
