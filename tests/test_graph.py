"""regfs.graph.mark: roots by mode, what is live, what is marked, what dangles."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from builder import COSIGN_SIG, SBOM_SPDX, StoreBuilder, canonical_json, hexof

from regfs.graph.mark import Dangling, Mode, mark, referrers_index
from regfs.layout import blob_data, revision_dir, tag_dir

INTOTO = "application/vnd.in-toto+json"


def blobs_of(*pushed: object) -> set[str]:
    out: set[str] = set()
    for p in pushed:
        out |= p.blob_digests  # type: ignore[attr-defined]
    return out


# --- default mode -------------------------------------------------------------------------------


def test_default_mode_every_revision_is_a_root(builder: StoreBuilder) -> None:
    tagged = builder.image("app", tags=["v1"])
    untagged = builder.image("app")
    other = builder.image("other")
    orphan = builder.orphan_blob(repo="app")
    snap = builder.scan()
    marks = mark(snap, Mode.DEFAULT)
    assert marks.mode is Mode.DEFAULT
    assert marks.live == {
        "app": {tagged.digest: "revision", untagged.digest: "revision"},
        "other": {other.digest: "revision"},
    }
    assert marks.marked == blobs_of(tagged, untagged, other)
    assert orphan.digest not in marks.marked
    assert not marks.keeps(orphan.digest)
    assert marks.keeps(untagged.digest)
    assert marks.protected == {}
    assert marks.dangling == []


def test_default_mode_follows_index_children(builder: StoreBuilder) -> None:
    a = builder.image("app", platform="linux/amd64")
    b = builder.image("app", platform="linux/arm64/v8")
    idx = builder.index("app", children=[a, b], platforms=["linux/amd64", "linux/arm64/v8"])
    snap = builder.scan()
    marks = mark(snap, Mode.DEFAULT)
    assert marks.marked == blobs_of(a, b, idx)


def test_default_mode_link_mismatch_marks_both(builder: StoreBuilder) -> None:
    a = builder.image("app")
    b = builder.image("other")
    # app's revision folder for a names b: both are kept.
    builder.write_link(builder.revision_link("app", a.digest), b.digest)
    snap = builder.scan()
    marks = mark(snap, Mode.DEFAULT)
    assert set(marks.live["app"]) == {a.digest, b.digest}
    assert marks.marked == blobs_of(a, b)


def test_default_mode_ignores_tags_and_referrers(builder: StoreBuilder) -> None:
    img = builder.image("app")
    sig = builder.referrer("app", subject=img)
    snap = builder.scan()
    marks = mark(snap, Mode.DEFAULT)
    assert marks.live["app"] == {img.digest: "revision", sig.digest: "revision"}


# --- untagged mode ------------------------------------------------------------------------------


def test_untagged_mode_roots_are_tags(builder: StoreBuilder) -> None:
    base = builder.layer("shared base")
    tagged = builder.image("app", tags=["v1", "latest"], layers=[base])
    untagged = builder.image("app", layers=[base, builder.layer("only untagged")])
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    assert marks.mode is Mode.UNTAGGED
    assert marks.live["app"] == {tagged.digest: "tag latest"}
    assert not marks.is_live("app", untagged.digest)
    assert marks.is_live("app", tagged.digest)
    assert marks.marked == tagged.blob_digests
    assert base.digest in marks.marked  # shared with the tagged image
    assert untagged.layers[1].digest not in marks.marked
    assert untagged.digest not in marks.marked


def test_untagged_mode_tag_history_is_not_a_root(builder: StoreBuilder) -> None:
    old = builder.image("app", tags=["v1"])
    new = builder.image("app", tags=["v1"])  # v1 moved; its index still lists old
    snap = builder.scan()
    assert set(snap.repositories["app"].tags["v1"].index) == {old.digest, new.digest}
    marks = mark(snap, Mode.UNTAGGED)
    assert set(marks.live["app"]) == {new.digest}


def test_untagged_mode_index_children_live_recursively(builder: StoreBuilder) -> None:
    amd = builder.image("app", platform="linux/amd64")
    arm = builder.image("app", platform="linux/arm64/v8")
    win = builder.image("app", platform="windows/amd64", media_type="docker")
    inner = builder.index("app", children=[amd, arm], platforms=["linux/amd64", "linux/arm64/v8"])
    outer = builder.index("app", children=[inner, win], tags=["latest"])
    stray = builder.image("app")
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    live = marks.live["app"]
    assert set(live) == {outer.digest, inner.digest, amd.digest, arm.digest, win.digest}
    assert live[outer.digest] == "tag latest"
    assert live[inner.digest] == f"child of {outer.digest}"
    assert live[amd.digest] == f"child of {inner.digest}"
    # The children's configs and layers are marked (the 2.8 --delete-untagged bug).
    assert marks.marked == blobs_of(outer, inner, amd, arm, win)
    assert not (stray.blob_digests & marks.marked)


def test_untagged_mode_docker_manifest_list(builder: StoreBuilder) -> None:
    a = builder.image("app", media_type="docker")
    b = builder.image("app", media_type="docker", platform="linux/arm/v7")
    lst = builder.index(
        "app",
        children=[a, b],
        tags=["v1"],
        media_type="docker",
        platforms=["linux/amd64", "linux/arm/v7"],
    )
    marks = mark(builder.scan(), Mode.UNTAGGED)
    assert set(marks.live["app"]) == {lst.digest, a.digest, b.digest}
    assert marks.marked == blobs_of(lst, a, b)


def test_referrers_of_live_manifests_live_transitively(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    sbom = builder.referrer("app", subject=img, artifact_type=SBOM_SPDX)
    sbom_sig = builder.referrer("app", subject=sbom, artifact_type=COSIGN_SIG)
    att = builder.referrer("app", subject=img, artifact_type=INTOTO)
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    live = marks.live["app"]
    assert set(live) == {img.digest, sbom.digest, sbom_sig.digest, att.digest}
    assert live[sbom.digest] == f"referrer of {img.digest}"
    assert live[sbom_sig.digest] == f"referrer of {sbom.digest}"
    assert marks.marked == blobs_of(img, sbom, sbom_sig, att)


def test_referrer_of_an_index_child_lives(builder: StoreBuilder) -> None:
    a = builder.image("app")
    idx = builder.index("app", children=[a], tags=["v1"])
    sig = builder.referrer("app", subject=a)
    marks = mark(builder.scan(), Mode.UNTAGGED)
    assert set(marks.live["app"]) == {idx.digest, a.digest, sig.digest}


def test_referrers_of_dead_manifests_are_dead(builder: StoreBuilder) -> None:
    keep = builder.image("app", tags=["v1"])
    dead = builder.image("app")
    sig = builder.referrer("app", subject=dead)
    sig_of_sig = builder.referrer("app", subject=sig)
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    assert set(marks.live["app"]) == {keep.digest}
    for m in (dead, sig, sig_of_sig):
        assert not marks.is_live("app", m.digest)
        assert m.digest not in marks.marked
    # The shared empty config is not marked by the dead referrers.
    assert sig.config is not None
    assert sig.config.digest not in marks.marked


def test_referrers_only_count_within_their_repository(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"], label="same")
    builder.image("other", tags=["v1"], label="same", layers=list(img.layers))
    sig = builder.referrer("other", subject=img)
    snap = builder.scan()
    assert referrers_index(snap, snap.repositories["app"]) == {}
    assert referrers_index(snap, snap.repositories["other"]) == {img.digest: [sig.digest]}
    marks = mark(snap, Mode.UNTAGGED)
    assert marks.is_live("other", sig.digest)
    assert not marks.is_live("app", sig.digest)


def test_referrers_index(builder: StoreBuilder) -> None:
    img = builder.image("app")
    s1 = builder.referrer("app", subject=img)
    s2 = builder.referrer("app", subject=img, artifact_type=SBOM_SPDX)
    s3 = builder.referrer("app", subject=s1)
    snap = builder.scan()
    assert referrers_index(snap, snap.repositories["app"]) == {
        img.digest: sorted([s1.digest, s2.digest]),
        s1.digest: [s3.digest],
    }


def test_cosign_style_tag_keeps_its_target(builder: StoreBuilder) -> None:
    img = builder.image("app")  # pushed by digest, untagged
    payload = canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": "app"},
                "image": {"docker-manifest-digest": img.digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    layer = builder.blob(payload)
    from builder import Blob

    sig_layer = Blob(
        layer.digest, layer.size, layer.data, "application/vnd.dev.cosign.simplesigning.v1+json"
    )
    sig = builder.image("app", tags=[f"sha256-{hexof(img.digest)}.sig"], layers=[sig_layer])
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    assert marks.live["app"][sig.digest] == f"tag sha256-{hexof(img.digest)}.sig"
    assert sig.blob_digests <= marks.marked
    assert layer.digest in marks.marked


# --- dangling references ------------------------------------------------------------------------


def test_dangling_config_and_layer(builder: StoreBuilder) -> None:
    layer = builder.layer("lost layer")
    img = builder.image("app", tags=["v1"], layers=[layer, builder.layer("kept")])
    assert img.config is not None
    builder.remove_blob(layer.digest)
    builder.remove_blob(img.config.digest)
    snap = builder.scan()
    for mode in Mode:
        marks = mark(snap, mode)
        assert marks.dangling == [
            Dangling("app", "config", img.config.digest, blob_data(img.config.digest), img.digest),
            Dangling("app", "layer", layer.digest, blob_data(layer.digest), img.digest),
        ]
        # Still marked: the reference is live even though the data is gone.
        assert layer.digest in marks.marked


def test_child_with_a_revision_but_no_data_dangles(builder: StoreBuilder) -> None:
    a = builder.image("app")
    b = builder.image("app", platform="linux/arm64/v8")
    idx = builder.index("app", children=[a, b], tags=["v1"])
    builder.remove_blob(b.digest)
    snap = builder.scan()
    # Default mode meets it first as a revision, untagged mode as the index's child.
    assert [(dg.kind, dg.digest) for dg in mark(snap, Mode.DEFAULT).dangling] == [
        ("revision", b.digest)
    ]
    assert mark(snap, Mode.UNTAGGED).dangling == [
        Dangling("app", "child", b.digest, blob_data(b.digest), idx.digest)
    ]


def test_absent_child_is_not_dangling(builder: StoreBuilder) -> None:
    """A child never pushed (a v3 sparse index) is an absent platform, not damage."""
    a = builder.image("app")
    missing = builder.absent(b'{"not":"stored"}')
    builder.index("app", children=[a, missing], tags=["v1"])
    snap = builder.scan()
    for mode in Mode:
        marks = mark(snap, mode)
        assert marks.dangling == []
        assert missing.digest in marks.marked  # named by the index: never swept as "data"
        assert missing.digest not in marks.live["app"]


def test_child_deleted_by_digest_keeps_its_blob_but_nothing_below(builder: StoreBuilder) -> None:
    """distribution's TestDeleteManifestIndexWithDanglingReferences: the registry cannot serve
    the child any more, so its config and layers are garbage in both modes; its own blob is kept
    because the index names it (what the reference does)."""
    a = builder.image("app", platform="linux/amd64")
    b = builder.image("app", platform="linux/arm64/v8")
    idx = builder.index("app", children=[a, b], tags=["test"])
    builder.delete_manifest("app", b.digest)
    snap = builder.scan()
    below_b = b.blob_digests - {b.digest} - a.blob_digests
    assert below_b
    for mode in Mode:
        marks = mark(snap, mode)
        assert b.digest in marks.marked
        assert not (below_b & marks.marked), mode
        assert a.blob_digests <= marks.marked
        assert idx.digest in marks.live["app"]
        assert b.digest not in marks.live["app"]
        assert marks.dangling == []


def test_unservable_child_index_marks_nothing_below(builder: StoreBuilder) -> None:
    amd = builder.image("app", platform="linux/amd64")
    inner = builder.index("app", children=[amd], platforms=["linux/amd64"])
    outer = builder.index("app", children=[inner], tags=["v1"])
    builder.delete_manifest("app", inner.digest)
    snap = builder.scan()
    untagged = mark(snap, Mode.UNTAGGED)
    assert set(untagged.live["app"]) == {outer.digest}
    assert inner.digest in untagged.marked
    assert not (amd.blob_digests & untagged.marked)
    # In default mode amd is still a revision (a root of its own): kept.
    assert amd.blob_digests <= mark(snap, Mode.DEFAULT).marked


def test_tag_on_a_manifest_without_revision_keeps_only_its_blob(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    builder.path(builder.revision_link("app", img.digest)).unlink()
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    assert marks.marked == {img.digest}
    assert "app" in marks.live and marks.live["app"] == {}


def test_dangling_manifest(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    builder.remove_blob(img.digest)
    snap = builder.scan()
    assert mark(snap, Mode.DEFAULT).dangling == [
        Dangling("app", "revision", img.digest, revision_dir("app", img.digest) + "/link", None)
    ]
    assert mark(snap, Mode.UNTAGGED).dangling == [
        Dangling("app", "tag", img.digest, tag_dir("app", "v1") + "/current/link", None)
    ]


def test_foreign_layers_are_not_dangling(builder: StoreBuilder) -> None:
    foreign = builder.foreign_layer()
    img = builder.image(
        "win", tags=["v1"], layers=[foreign, builder.layer("local")], media_type="docker"
    )
    snap = builder.scan()
    marks = mark(snap, Mode.DEFAULT)
    assert marks.dangling == []
    assert foreign.digest in marks.marked
    assert foreign.digest not in snap.blobs
    assert img.digest in marks.marked


def test_dangling_as_dict() -> None:
    d = Dangling("app", "layer", "sha256:" + "a" * 64, "blobs/x", None)
    assert d.as_dict() == {
        "repository": "app",
        "kind": "layer",
        "digest": "sha256:" + "a" * 64,
        "path": "blobs/x",
        "referrer": None,
    }


def test_dangling_is_sorted(builder: StoreBuilder) -> None:
    imgs = [builder.image(name, tags=["v1"]) for name in ("b", "a", "c")]
    for img in imgs:
        builder.remove_blob(img.digest)
    dangling = mark(builder.scan(), Mode.DEFAULT).dangling
    assert [d.repository for d in dangling] == ["a", "b", "c"]


def test_index_cycle_terminates(builder: StoreBuilder) -> None:
    # Two indexes naming each other cannot be pushed, but a store can be damaged into it.
    from builder import OCI_INDEX, sha256

    a_doc: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    a_data = canonical_json(a_doc)
    b_data = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "size": len(a_data), "digest": sha256(a_data)}],
        }
    )
    a_doc["manifests"] = [{"mediaType": OCI_INDEX, "size": len(b_data), "digest": sha256(b_data)}]
    # a now names b, b names the old a: write b under a's old digest to close the loop.
    builder.push_manifest("app", canonical_json(a_doc), ["v1"])
    builder.write(
        f"blobs/sha256/{hexof(sha256(a_data))[:2]}/{hexof(sha256(a_data))}/data",
        canonical_json(a_doc),
    )
    builder.push_manifest("app", b_data)
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    # The old a is named by b but is no revision of app: kept as a blob, not live, not followed.
    assert len(marks.live["app"]) == 2
    assert sha256(a_data) in marks.marked


# --- what cannot be read is never garbage --------------------------------------------------------


def test_unparseable_manifest_protects_the_repositorys_layers(builder: StoreBuilder) -> None:
    tagged = builder.image("app", tags=["v1"])
    leftover = builder.orphan_blob(repo="app")  # only a layer link holds it
    bad = builder.push_manifest("app", b'{"schemaVersion": 2, "mediaType": "x/unknown"}')
    elsewhere = builder.orphan_blob(repo="other")
    snap = builder.scan()
    for mode in Mode:
        marks = mark(snap, mode)
        assert marks.is_live("app", bad)
        assert leftover.digest in marks.protected
        assert marks.keeps(leftover.digest)
        assert leftover.digest not in marks.marked
        assert tagged.blob_digests <= marks.marked | marks.protected.keys()
        assert not marks.keeps(elsewhere.digest)
        assert marks.dangling == []
    assert mark(snap, Mode.UNTAGGED).live["app"][bad] == "kept: unreadable"


def test_unreadable_revision_link_keeps_it_live(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    untagged = builder.image("app")
    leftover = builder.orphan_blob(repo="app")
    builder.write(builder.revision_link("app", untagged.digest), b"")
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    assert marks.live["app"][untagged.digest] == "kept: unreadable"
    assert untagged.blob_digests <= marks.marked
    assert leftover.digest in marks.protected


def test_unreadable_tag_keeps_every_revision(builder: StoreBuilder) -> None:
    tagged = builder.image("app", tags=["v1"])
    untagged = builder.image("app")
    builder.write("repositories/app/_manifests/tags/v1/current/link", b"garbage")
    snap = builder.scan()
    marks = mark(snap, Mode.UNTAGGED)
    assert set(marks.live["app"]) == {tagged.digest, untagged.digest}
    assert marks.live["app"][untagged.digest] == "kept: unreadable tag"
    assert marks.marked == blobs_of(tagged, untagged)


def test_unreadable_tags_folder_keeps_every_revision(
    builder: StoreBuilder, deny: Callable[[Path], None]
) -> None:
    tagged = builder.image("app", tags=["v1"])
    untagged = builder.image("app")
    leftover = builder.orphan_blob(repo="app")
    deny(builder.path("repositories/app/_manifests/tags"))
    snap = builder.scan()
    assert snap.repositories["app"].incomplete
    marks = mark(snap, Mode.UNTAGGED)
    assert set(marks.live["app"]) == {tagged.digest, untagged.digest}
    # A tag resolves only through a revision link of its repository, and those are all known:
    # what no revision references stays garbage (regfs.graph.unread, "tags" scope).
    assert not marks.keeps(leftover.digest)
    assert not marks.keep_all


def test_unreadable_layers_folder_keeps_everything(
    builder: StoreBuilder, deny: Callable[[Path], None]
) -> None:
    builder.image("app", tags=["v1"])
    leftover = builder.orphan_blob(repo="other")
    deny(builder.path("repositories/app/_layers"))
    marks = mark(builder.scan(), Mode.DEFAULT)
    assert marks.keep_all and marks.keeps(leftover.digest)
    assert "repositories/app/_layers" in (marks.undecided_reason(leftover.digest) or "")


def test_tag_without_current_link_is_not_a_root(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    os.unlink(builder.path("repositories/app/_manifests/tags/v1/current/link"))
    marks = mark(builder.scan(), Mode.UNTAGGED)
    assert marks.live["app"] == {}
    assert not marks.keeps(img.digest)


def test_repository_without_manifests_has_no_roots(builder: StoreBuilder) -> None:
    blob = builder.orphan_blob(repo="layersonly")
    marks = mark(builder.scan(), Mode.DEFAULT)
    assert marks.live == {"layersonly": {}}
    assert not marks.keeps(blob.digest)
