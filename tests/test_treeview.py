"""regfs.reports.treeview: repository -> tag -> manifest -> config and layers, as plain dicts."""

from __future__ import annotations

from typing import Any

import pytest
from builder import COSIGN_SIG, SBOM_SPDX, StoreBuilder

from regfs.errors import UsageError
from regfs.reports.treeview import build_tree


def find(node: dict[str, Any], **want: Any) -> list[dict[str, Any]]:
    out = []
    if all(node.get(k) == v for k, v in want.items()):
        out.append(node)
    for c in node["children"]:
        out.extend(find(c, **want))
    return out


def test_exact_tree_of_one_image(builder: StoreBuilder) -> None:
    layer = builder.layer("one")
    img = builder.image("app", tags=["v1"], layers=[layer])
    assert img.config is not None
    tree = build_tree(builder.scan())
    assert tree == {
        "type": "registry",
        "path": str(builder.v2),
        "children": [
            {
                "type": "repository",
                "name": "app",
                "children": [
                    {
                        "type": "tag",
                        "name": "v1",
                        "children": [
                            {
                                "type": "manifest",
                                "digest": img.digest,
                                "size": img.size,
                                "kind": "image",
                                "children": [
                                    {
                                        "type": "config",
                                        "digest": img.config.digest,
                                        "size": img.config.size,
                                        "children": [],
                                    },
                                    {
                                        "type": "layer",
                                        "digest": layer.digest,
                                        "size": layer.size,
                                        "children": [],
                                    },
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }


def test_empty_registry(builder: StoreBuilder) -> None:
    assert build_tree(builder.scan()) == {
        "type": "registry",
        "path": str(builder.v2),
        "children": [],
    }


def test_index_children_platforms_and_referrers(builder: StoreBuilder) -> None:
    a = builder.image("app", platform="linux/amd64")
    b = builder.image("app", platform="linux/arm64/v8")
    idx = builder.index(
        "app", children=[a, b], tags=["latest"], platforms=["linux/amd64", "linux/arm64/v8"]
    )
    sig = builder.referrer("app", subject=a, artifact_type=COSIGN_SIG)
    sbom = builder.referrer("app", subject=idx, artifact_type=SBOM_SPDX)
    tree = build_tree(builder.scan())
    repo = tree["children"][0]
    assert [c["type"] for c in repo["children"]] == ["tag"]  # nothing is untagged
    top = repo["children"][0]["children"][0]
    assert (top["digest"], top["kind"]) == (idx.digest, "index")
    kids = top["children"]
    assert [(k["type"], k["digest"], k.get("platform")) for k in kids] == [
        ("manifest", a.digest, "linux/amd64"),
        ("manifest", b.digest, "linux/arm64/v8"),
        ("referrer", sbom.digest, None),
    ]
    assert kids[2]["kind"] == "artifact"
    assert kids[2]["artifact_type"] == SBOM_SPDX
    a_kids = kids[0]["children"]
    assert [k["type"] for k in a_kids] == ["config", "layer", "referrer"]
    assert a_kids[2]["digest"] == sig.digest
    assert a_kids[2]["artifact_type"] == COSIGN_SIG
    # The referrer's own config and layer are shown under it.
    assert [k["type"] for k in a_kids[2]["children"]] == ["config", "layer"]


def test_untagged_group_lists_only_top_manifests(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    a = builder.image("app")
    idx = builder.index("app", children=[a])  # untagged index: a is nested under it
    sig = builder.referrer("app", subject=idx)  # nested under idx
    lone = builder.image("app")
    repo = build_tree(builder.scan())["children"][0]
    untagged = repo["children"][-1]
    assert untagged["type"] == "untagged"
    assert untagged["count"] == 4
    assert sorted(c["digest"] for c in untagged["children"]) == sorted([idx.digest, lone.digest])
    idx_node = next(c for c in untagged["children"] if c["digest"] == idx.digest)
    assert [(c["type"], c["digest"]) for c in idx_node["children"]] == [
        ("manifest", a.digest),
        ("referrer", sig.digest),
    ]


def test_uploads_node(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    builder.upload("app", data=b"12345")
    builder.upload("app", data=b"678")
    repo = build_tree(builder.scan())["children"][0]
    assert repo["children"][-1] == {"type": "uploads", "count": 2, "size": 8, "children": []}


def test_broken_tag_missing_and_unparseable(builder: StoreBuilder) -> None:
    layer = builder.layer("lost")
    img = builder.image("app", tags=["v1"], layers=[layer])
    builder.remove_blob(layer.digest)
    gone = builder.image("app", tags=["gone"])
    builder.remove_blob(gone.digest)
    builder.write("repositories/app/_manifests/tags/broken/current/link", b"")
    bad = builder.push_manifest("app", b'{"schemaVersion": 9}', ["bad"])
    assert bad in builder.scan().unparseable
    repo = build_tree(builder.scan())["children"][0]
    tags = {t["name"]: t for t in repo["children"] if t["type"] == "tag"}
    assert tags["broken"] == {
        "type": "tag",
        "name": "broken",
        "children": [],
        "broken": True,
        "issues": ["its current link cannot be read"],
    }
    gone_node = tags["gone"]["children"][0]
    assert gone_node == {
        "type": "manifest",
        "digest": gone.digest,
        "size": None,
        "kind": None,
        "children": [],
        "missing": True,
    }
    bad_node = tags["bad"]["children"][0]
    assert bad_node["kind"] is None
    assert "unsupported schemaVersion 9" in bad_node["unparseable"]
    assert bad_node["children"] == []
    layer_node = find(tags["v1"], type="layer")[0]
    assert layer_node["missing"] is True
    assert layer_node["size"] == layer.size  # from the descriptor
    assert img.digest == tags["v1"]["children"][0]["digest"]


def test_shared_and_foreign_blobs(builder: StoreBuilder) -> None:
    shared = builder.layer("shared")
    foreign = builder.foreign_layer()
    builder.image("a", tags=["v1"], layers=[foreign, shared], media_type="docker", label="a")
    builder.image("b", tags=["v1"], layers=[shared], label="b")
    tree = build_tree(builder.scan())
    a_layers = find(tree["children"][0], type="layer")
    assert a_layers[0] == {
        "type": "layer",
        "digest": foreign.digest,
        "size": foreign.size,
        "children": [],
        "foreign": True,
    }
    assert a_layers[1]["shared"] is True
    assert "missing" not in a_layers[1]
    b_config = find(tree["children"][1], type="config")[0]
    assert "shared" not in b_config


def test_repo_glob(builder: StoreBuilder) -> None:
    for name in ("org/app", "org/web", "other"):
        builder.image(name, tags=["v1"])
    snap = builder.scan()
    names = [r["name"] for r in build_tree(snap, "org/*")["children"]]
    assert names == ["org/app", "org/web"]
    with pytest.raises(UsageError, match="no repository matches 'nothing\\*'"):
        build_tree(snap, "nothing*")
    assert len(build_tree(snap)["children"]) == 3


def test_index_cycle_is_shown_not_followed(builder: StoreBuilder) -> None:
    from builder import OCI_INDEX, canonical_json, hexof, sha256

    placeholder = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    p = sha256(placeholder)
    idx = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "size": len(placeholder), "digest": p}],
        }
    )
    builder.push_manifest("app", placeholder)
    d = builder.push_manifest("app", idx, ["v1"])
    # Damage: the child's blob now holds the parent's bytes, which name the child again.
    builder.write(f"blobs/sha256/{hexof(p)[:2]}/{hexof(p)}/data", idx)
    top = build_tree(builder.scan())["children"][0]["children"][0]["children"][0]
    assert top["digest"] == d
    child = top["children"][0]
    assert child["digest"] == p
    grandchild = child["children"][0]
    assert grandchild["digest"] == p
    assert grandchild["cycle"] is True
    assert grandchild["children"] == []


def _tree_broken(tree: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (repo["name"], tag["name"])
        for repo in tree["children"]
        for tag in repo["children"]
        if tag["type"] == "tag" and tag.get("broken")
    }


def _check_broken(snap: Any) -> set[tuple[str, str]]:
    from regfs.model.findings import Kind
    from regfs.reports.check import check

    out = set()
    for f in check(snap).problems:
        if f.kind is Kind.BROKEN_TAG:
            assert f.repository is not None
            out.add((f.repository, f.path.split("/_manifests/tags/")[1].split("/")[0]))
    return out


def test_partial_index_marks_the_tag_and_the_absent_child(builder: StoreBuilder) -> None:
    amd = builder.image("multi", layers=[builder.layer("amd")], platform="linux/amd64")
    arm = builder.image("multi", layers=[builder.layer("arm")], platform="linux/arm64/v8")
    builder.index(
        "multi", children=[amd, arm], tags=["v1"], platforms=["linux/amd64", "linux/arm64/v8"]
    )
    builder.delete_manifest("multi", arm.digest)
    snap = builder.scan()
    tree = build_tree(snap)
    tag = find(tree, type="tag", name="v1")[0]
    assert "broken" not in tag
    assert tag["absent_platforms"] == ["linux/arm64/v8"]
    arm_node = find(tree, digest=arm.digest)[0]
    # Its blob is still stored, but the repository does not serve it: not expanded.
    assert arm_node["absent"] is True and arm_node["children"] == []
    assert find(tree, digest=amd.digest)[0]["children"]
    assert _tree_broken(tree) == _check_broken(snap) == set()


def test_tree_broken_mark_agrees_with_check_on_every_fixture(tmp_path: Any) -> None:
    """One function decides: `tree`'s broken mark and `check`'s broken_tag never differ."""
    import realreg as rr

    from regfs.scan import scan
    from regfs.storage.local import LocalStorage, resolve_root

    names = sorted(p.name.removesuffix(".tar.gz") for p in rr.FIXTURES_DIR.glob("*.tar.gz"))
    assert "damaged" in names
    for name in names:
        root = rr.extract_fixture(name, tmp_path / name)
        snap = scan(LocalStorage(resolve_root(str(root))), workers=1)
        broken = _check_broken(snap)
        assert _tree_broken(build_tree(snap)) == broken, name
        if name == "damaged":
            assert broken  # the comparison is not vacuous
