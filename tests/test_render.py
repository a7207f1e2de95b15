"""regfs.render: text and JSON from report values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from builder import StoreBuilder

from regfs.graph.mark import Dangling
from regfs.graph.unread import Scope, Unread
from regfs.model.findings import Finding, Kind
from regfs.render import (
    SCHEMA_VERSION,
    orphans_dict,
    orphans_text,
    size,
    to_json,
    tree_dict,
    tree_json,
    tree_text,
)
from regfs.reports.orphans import (
    OrphanBlob,
    OrphansReport,
    StaleUpload,
    UndecidedBlob,
    UntaggedManifest,
    orphans,
)
from regfs.reports.treeview import build_tree

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "?"),
        (0, "0 B"),
        (1, "1 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_500_000, "1.5 MB"),
        (3 * 10**9, "3.0 GB"),
    ],
)
def test_size(n: int | None, text: str) -> None:
    assert size(n) == text


def test_to_json_handles_datetimes() -> None:
    dt = datetime(2020, 1, 2, tzinfo=UTC)
    assert json.loads(to_json({"a": [1, dt]})) == {"a": [1, str(dt)]}
    assert to_json({"a": 1}) == '{\n  "a": 1\n}'


def _tree() -> dict[str, Any]:
    return {
        "type": "registry",
        "path": "/srv/registry/docker/registry/v2",
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
                                "digest": A,
                                "size": 1500,
                                "kind": "index",
                                "children": [
                                    {
                                        "type": "manifest",
                                        "digest": B,
                                        "size": 400,
                                        "kind": "image",
                                        "platform": "linux/arm64/v8",
                                        "children": [
                                            {
                                                "type": "config",
                                                "digest": C,
                                                "size": 250,
                                                "children": [],
                                            },
                                            {
                                                "type": "layer",
                                                "digest": A,
                                                "size": 2_000_000,
                                                "shared": True,
                                                "children": [],
                                            },
                                            {
                                                "type": "layer",
                                                "digest": B,
                                                "size": 10,
                                                "foreign": True,
                                                "children": [],
                                            },
                                            {
                                                "type": "layer",
                                                "digest": C,
                                                "size": None,
                                                "missing": True,
                                                "children": [],
                                            },
                                        ],
                                    },
                                    {
                                        "type": "referrer",
                                        "digest": C,
                                        "size": 300,
                                        "kind": "artifact",
                                        "artifact_type": "application/spdx+json",
                                        "children": [],
                                    },
                                ],
                            }
                        ],
                    },
                    {
                        "type": "tag",
                        "name": "broken",
                        "broken": True,
                        "issues": ["its current link cannot be read"],
                        "children": [],
                    },
                    {
                        "type": "untagged",
                        "count": 2,
                        "children": [
                            {
                                "type": "manifest",
                                "digest": B,
                                "size": None,
                                "kind": None,
                                "missing": True,
                                "children": [],
                            },
                            {
                                "type": "manifest",
                                "digest": C,
                                "size": 5,
                                "kind": None,
                                "unparseable": "unparseable manifest: not JSON",
                                "children": [],
                            },
                            {
                                "type": "manifest",
                                "digest": A,
                                "size": 5,
                                "kind": "index",
                                "cycle": True,
                                "children": [],
                            },
                        ],
                    },
                    {"type": "uploads", "count": 1, "size": 2048, "children": []},
                ],
            }
        ],
    }


def test_tree_text_exact() -> None:
    a, b, c = A[7:19], B[7:19], C[7:19]
    assert tree_text(_tree()).splitlines() == [
        "/srv/registry/docker/registry/v2",
        "└── app",
        "    ├── :v1",
        f"    │   └── {a}  index  1.5 kB",
        f"    │       ├── {b}  image  linux/arm64/v8  400 B",
        f"    │       │   ├── config {c}  250 B",
        f"    │       │   ├── layer  {a}  2.0 MB  [shared]",
        f"    │       │   ├── layer  {b}  10 B  [foreign]",
        f"    │       │   └── layer  {c}  ?  [missing]",
        f"    │       └── referrer {c}  spdx  300 B",
        "    ├── :broken  [broken: its current link cannot be read]",
        "    ├── (untagged: 2)",
        f"    │   ├── {b}  ?  ?  [missing]",
        f"    │   ├── {c}  ?  5 B  [unparseable]",
        f"    │   └── {a}  index  5 B  [cycle]",
        "    └── (uploads: 1, 2.0 kB)",
    ]


def test_tree_text_empty_registry() -> None:
    assert tree_text({"type": "registry", "path": "/r", "children": []}) == (
        "/r\n(no repositories)"
    )


def test_tree_json_adds_the_schema_first() -> None:
    text = tree_json(_tree())
    data = json.loads(text)
    assert list(data)[:2] == ["schema", "type"]
    assert data["schema"] == SCHEMA_VERSION == 1
    assert data["children"][0]["children"][0]["children"][0]["digest"] == A
    assert {k: v for k, v in data.items() if k != "schema"} == tree_dict(_tree())


def test_tree_json_has_every_key_of_every_node() -> None:
    """Keys are always present: false, null or [] when the builder left them out."""
    from regfs.render import TREE_KEYS

    def walk(given: dict[str, Any], out: dict[str, Any]) -> None:
        assert set(TREE_KEYS[out["type"]]) | {"type", "children"} <= set(out)
        for key, value in given.items():
            if key != "children":
                assert out[key] == value  # nothing the builder set is changed
        for g, o in zip(given["children"], out["children"], strict=True):
            walk(g, o)

    out = json.loads(tree_json(_tree()))
    walk(_tree(), {k: v for k, v in out.items() if k != "schema"})
    layer = out["children"][0]["children"][0]["children"][0]["children"][0]["children"][1]
    assert (layer["shared"], layer["missing"], layer["foreign"]) == (True, False, False)


def test_tree_text_from_a_real_scan(builder: StoreBuilder) -> None:
    img = builder.image("app", tags=["v1"])
    lines = tree_text(build_tree(builder.scan())).splitlines()
    assert lines[0] == str(builder.v2)
    assert lines[1] == "└── app"
    assert lines[2] == "    └── :v1"
    assert lines[3] == f"        └── {img.digest[7:19]}  image  401 B"
    assert len(lines) == 6


# --- orphans --------------------------------------------------------------------------------


def _report() -> OrphansReport:
    return OrphansReport(
        orphaned_blobs=[OrphanBlob(A, 1000, 0.0), OrphanBlob(B, 500, 0.0)],
        untagged_manifests=[UntaggedManifest("app", C, "image", 400, 2400, ("v1", "v2"))],
        untagged_bytes=5000,
        dangling=[Dangling("web", "layer", A, "blobs/x", B), Dangling("web", "tag", C, "t", None)],
        stale_uploads=[
            StaleUpload(
                "app",
                "u-1",
                "repositories/app/_uploads/u-1",
                datetime(2020, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
                7,
                3 * 365 * 86400 + 1,
                "startedat",
            ),
            StaleUpload("app", "u-2", "repositories/app/_uploads/u-2", None, 3, 1209600.5, "mtime"),
            StaleUpload(
                "app",
                "u-3",
                "repositories/app/_uploads/u-3",
                datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC),
                0,
                10 * 86400,
                "upload_id",
            ),
        ],
        problems=[
            Finding(Kind.EMPTY_LINK, "repositories/app/x/link", "empty link file", A, "app", True)
        ],
        protected_blobs=2,
        undecidable=[
            UndecidedBlob(D, 30, "repositories/x cannot be read (permission denied)"),
            UndecidedBlob(E, 12, "repositories/x cannot be read (permission denied)"),
        ],
        unread=[
            Unread(
                "repositories/x", Scope.EVERYTHING, "permission denied listing folder", None, None
            )
        ],
    )


def test_orphans_dict_exact() -> None:
    assert orphans_dict(_report()) == {
        "schema": 1,
        "orphaned_blobs": [{"digest": A, "size": 1000}, {"digest": B, "size": 500}],
        "untagged_manifests": [
            {
                "repository": "app",
                "digest": C,
                "kind": "image",
                "size": 400,
                "exclusive_bytes": 2400,
                "history_tags": ["v1", "v2"],
            }
        ],
        "dangling": [
            {"repository": "web", "kind": "layer", "digest": A, "path": "blobs/x", "referrer": B},
            {"repository": "web", "kind": "tag", "digest": C, "path": "t", "referrer": None},
        ],
        "stale_uploads": [
            {
                "repository": "app",
                "uuid": "u-1",
                "path": "repositories/app/_uploads/u-1",
                "started_at": "2020-01-02T03:04:05Z",
                "size": 7,
                "age_seconds": 3 * 365 * 86400 + 1,
                "age_from": "startedat",
            },
            {
                "repository": "app",
                "uuid": "u-2",
                "path": "repositories/app/_uploads/u-2",
                "started_at": None,
                "size": 3,
                "age_seconds": 1209600,
                "age_from": "mtime",
            },
            {
                "repository": "app",
                "uuid": "u-3",
                "path": "repositories/app/_uploads/u-3",
                "started_at": "2024-06-01T12:00:00Z",
                "size": 0,
                "age_seconds": 864000,
                "age_from": "upload_id",
            },
        ],
        "problems": [
            {
                "kind": "empty_link",
                "path": "repositories/app/x/link",
                "message": "empty link file",
                "digest": A,
                "repository": "app",
                "blocks_gc": True,
            }
        ],
        "undecidable_blobs": [
            {
                "digest": D,
                "size": 30,
                "reason": "repositories/x cannot be read (permission denied)",
            },
            {
                "digest": E,
                "size": 12,
                "reason": "repositories/x cannot be read (permission denied)",
            },
        ],
        "unread": [
            {
                "path": "repositories/x",
                "scope": "everything",
                "reason": "permission denied listing folder",
            }
        ],
        "totals": {
            "orphaned_blobs": 2,
            "orphaned_bytes": 1500,
            "untagged_manifests": 1,
            "untagged_bytes": 5000,
            "dangling": 2,
            "stale_uploads": 3,
            "stale_upload_bytes": 10,
            "problems": 1,
            "protected_blobs": 2,
            "undecidable_blobs": 2,
            "undecidable_bytes": 42,
        },
    }
    # It is JSON as it stands.
    assert json.loads(to_json(orphans_dict(_report()))) == orphans_dict(_report())


def test_orphans_text_exact() -> None:
    assert orphans_text(_report()).splitlines() == [
        "Orphaned blobs: 2 (1.5 kB), deleted by `regfs gc`",
        f"  1.0 kB {A}",
        f"   500 B {B}",
        "Untagged manifests: 1; `regfs gc --delete-untagged` would also free 5.0 kB",
        f"  app@{C[:19]}  image  2.4 kB exclusive  (was v1, v2)",
        "Dangling references: 2",
        f"  {A}",
        f"    missing layer of {B[:19]} in web",
        f"  {C}",
        "    missing tagged manifest in web",
        "Stale uploads: 3 (10 B)",
        "  app",
        "    u-1  7 B",
        "      started 3 years ago (2020-01-02T03:04:05Z)",
        "    u-2  3 B",
        "      no startedat (cancelled); last written 14 days ago",
        "    u-3  0 B",
        "      started 10 days ago (2024-06-01T12:00:00Z, from its upload id)",
        "Problems: 1 (digests shortened)",
        "",
        "empty_link (1): empty link files",
        "  repositories/app/x/link",
        "    empty link file",
        "Unknown: 2 blobs (42 B) cannot be decided, kept by `regfs gc`: something that",
        "  could not be read may reference them",
        "  2 blobs: repositories/x cannot be read (permission denied)",
        f"    {D}",
        f"    {E}",
        "Could not read (what gc keeps because of each: README, Safety):",
        "  repositories/x: permission denied listing folder [keeps: everything]",
    ]


def test_orphans_text_of_a_clean_store(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    report = orphans(builder.scan())
    assert orphans_text(report).splitlines() == [
        "Orphaned blobs: 0 (0 B), deleted by `regfs gc`",
        "Untagged manifests: 0; `regfs gc --delete-untagged` would also free 0 B",
        "Dangling references: 0",
        "Stale uploads: 0 (0 B)",
        "Problems: 0",
    ]
    d = orphans_dict(report)
    assert d["totals"] == {k: 0 for k in d["totals"]}
