"""Every fixture scenario, written to S3 by the real registry's own S3 driver, is the same
registry content as its filesystem fixture, and the reference GC says the same about it."""

from __future__ import annotations

from typing import Any

import pytest
import realreg as rr
import s3bed

pytestmark = pytest.mark.registry


def _same_gc(s3: dict[str, Any], fs: dict[str, Any]) -> None:
    for key in ("exit_code", "summary", "marked", "blobs", "manifests", "manifests_by_repo"):
        assert s3[key] == fs[key], key
    if fs["error"] is None:
        assert s3["error"] is None
    else:  # the same complaint, through the other driver
        assert s3["error"] == fs["error"].replace("filesystem: filesystem:", "s3aws: s3aws:")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", rr.ALL_FIXTURES)
def test_scenario_on_s3_matches_its_filesystem_fixture(
    scenarios: s3bed.Scenarios, name: str
) -> None:
    fs = rr.load_fixture_meta(name)
    tree = scenarios.get(name)
    s3 = tree.meta
    assert s3["tags"] == fs["tags"]
    assert s3["repositories"] == fs["repositories"]
    assert s3["blobs"] == fs["blobs"]  # digest -> size: the same bytes, written by the driver
    assert [(i["repo"], i["tag"], i["digest"], i["state"]) for i in s3["images"]] == [
        (i["repo"], i["tag"], i["digest"], i["state"]) for i in fs["images"]
    ]
    for mode in ("default", "delete_untagged"):
        _same_gc(s3["reference_gc"][mode], fs["reference_gc"][mode])
    if name == "damaged":
        ids = [d["id"] for d in s3["damage"]]
        assert ids == [d["id"] for d in fs["damage"] if d["id"] != "symlink-outside"]


def test_uploads_on_s3_are_multipart_uploads(scenarios: s3bed.Scenarios) -> None:
    """An unfinished upload's ``data`` is an open S3 multipart upload holding the PATCHed
    bytes (invisible to listings); a cancelled one has none; the other files are objects."""
    fs = {u["uuid"]: u for u in rr.load_fixture_meta("uploads")["uploads"]}
    s3 = scenarios.get("uploads").meta["uploads"]
    assert len(s3) == len(fs)
    for up in s3:
        kinds = {u["kind"] for u in fs.values()}
        assert up["kind"] in kinds
        if up["kind"] in ("unfinished", "posted"):
            assert up["multipart"] == [{"key": "data", "size": up["size"]}]
            assert "data" not in up["files"]
            assert up["startedat"] is not None
        else:
            assert up["multipart"] == []
            assert up["files"] == ["hashstates/sha256/0"]
            assert up["startedat"] is None
        if up["stale"] and up["kind"] != "cancelled":
            assert up["startedat"] == "2020-01-02T03:04:05Z"
