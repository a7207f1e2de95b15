"""regfs.reports.multipart and regfs.gc.multipart: abandoned multipart uploads in a bucket
(SeaweedFS), reported with age, bytes and repository, and put into a gc plan."""

from __future__ import annotations

import time

import pytest
import s3bed

from regfs.gc.multipart import with_multipart
from regfs.gc.plan import GcOptions, GcPlan
from regfs.gc.steps import Action, Step
from regfs.reports.multipart import MultipartLeftover, multipart_leftovers
from regfs.scan import Repository as Repo
from regfs.scan import Snapshot, Upload
from regfs.storage.s3 import S3Storage
from regfs.storage.s3client import make_client

V2 = "docker/registry/v2"


def _storage(weed: s3bed.Weed, prefix: str) -> S3Storage:
    client = make_client(
        endpoint_url=weed.endpoint,
        region=weed.REGION,
        access_key=weed.ACCESS_KEY,
        secret_key=weed.SECRET_KEY,
        timeout=5,
    )
    return S3Storage(client, weed.bucket, prefix)


def _multipart(weed: s3bed.Weed, prefix: str, rel: str, size: int) -> str:
    c = weed.client()
    key = f"{prefix}/{V2}/{rel}"
    mp = c.create_multipart_upload(Bucket=weed.bucket, Key=key)
    if size:
        c.upload_part(
            Bucket=weed.bucket, Key=key, UploadId=mp["UploadId"], PartNumber=1, Body=b"p" * size
        )
    return str(mp["UploadId"])


def _snapshot(uploads: dict[str, list[str]]) -> Snapshot:
    repos = {
        name: Repo(name, uploads={u: Upload(u, None, 0, 0.0) for u in uuids})
        for name, uuids in uploads.items()
    }
    return Snapshot("/x", {}, repos, {}, {}, [], set())


@pytest.mark.registry
def test_leftovers_are_found_with_age_bytes_and_repository(weed: s3bed.Weed, s3_root: str) -> None:
    started = time.time()
    a = _multipart(weed, s3_root, "repositories/org/app/_uploads/u-1/data", 120)
    b = _multipart(weed, s3_root, "repositories/web/_uploads/u-2/data", 0)
    # not an upload's data: never reported, never aborted
    _multipart(weed, s3_root, "repositories/web/_layers/sha256/ab/link", 5)
    _multipart(weed, s3_root, "repositories/web/_uploads/u-3/hashstates/sha256/0", 5)
    storage = _storage(weed, s3_root)
    snap = _snapshot({"web": ["u-2"]})
    found = multipart_leftovers(storage, snap, older_than=0, now=time.time() + 10)
    assert [(m.repository, m.uuid, m.path, m.size, m.has_folder) for m in found] == [
        ("org/app", "u-1", "repositories/org/app/_uploads/u-1", 120, False),
        ("web", "u-2", "repositories/web/_uploads/u-2", 0, True),
    ]
    assert [m.upload_id for m in found] == [a, b]
    assert all(started - 5 <= m.initiated <= time.time() + 1 for m in found)
    assert all(m.age >= 10 for m in found)
    # younger than the limit: not reported
    assert multipart_leftovers(storage, snap, older_than=3600, now=time.time()) == []
    # aborted through its handle
    storage.abort_multipart(found[0].upload)
    assert [m.uuid for m in multipart_leftovers(storage, None, older_than=0)] == ["u-2"]


def _plan(actions: list[Action]) -> GcPlan:
    return GcPlan("r", "s3://b/p/docker/registry/v2", GcOptions(), 100.0, actions, [], [])


def _left(path: str, size: int, has_folder: bool, initiated: float = 50.0) -> MultipartLeftover:
    repo = path.split("/")[1]
    return MultipartLeftover(repo, path.rsplit("/", 1)[1], path, "id", initiated, size, has_folder)


def test_with_multipart_adds_and_sizes_upload_steps_in_plan_order() -> None:
    stale = Action(Step.UPLOAD, "repositories/a/_uploads/s", repository="a", size=3)
    plan = _plan(
        [
            Action(Step.REVISION, "repositories/a/_manifests/revisions/sha256/" + "1" * 64),
            stale,
            Action(Step.BLOB, "blobs/sha256/22/" + "2" * 64, size=7),
            Action(Step.FOLDER, "repositories/a/_uploads"),
        ]
    )
    with_multipart(
        plan,
        [
            _left("repositories/a/_uploads/s", 100, True),  # its stale upload takes its bytes
            _left("repositories/b/_uploads/gone", 40, False, 60.0),  # parts only: a new step
            _left("repositories/b/_uploads/gone", 2, False, 70.0),
            _left("repositories/c/_uploads/young", 9, True),  # its upload stays: so does it
        ],
    )
    assert [(a.step, a.path, a.size) for a in plan.actions] == [
        ("revision", "repositories/a/_manifests/revisions/sha256/" + "1" * 64, 0),
        ("upload", "repositories/a/_uploads/s", 103),
        ("upload", "repositories/b/_uploads/gone", 42),
        ("blob", "blobs/sha256/22/" + "2" * 64, 7),
        ("folder", "repositories/a/_uploads", 0),
    ]
    assert plan.actions[2].expect_mtime == 70.0 and plan.actions[2].repository == "b"
    empty = _plan([])
    with_multipart(empty, [_left("repositories/b/_uploads/x", 1, False)])
    assert [a.path for a in empty.actions] == ["repositories/b/_uploads/x"]


def test_orphans_show_multipart_uploads_on_a_bucket_only() -> None:
    from schemas import schema_errors

    from regfs.render import orphans_text
    from regfs.render.json_inspect import orphans_dict
    from regfs.reports.orphans import orphans

    report = orphans(_snapshot({}))
    assert "multipart_uploads" not in orphans_dict(report)  # a filesystem: not there
    assert "multipart" not in orphans_text(report)
    report.multipart_uploads = [
        MultipartLeftover(
            "org/app",
            "u-1",
            "repositories/org/app/_uploads/u-1",
            "x1",
            0.0,
            2048,
            False,
            8 * 86400.0,
        ),
        MultipartLeftover(
            "org/app", "u-2", "repositories/org/app/_uploads/u-2", "x2", 0.0, 0, True, 9 * 86400.0
        ),
    ]
    doc = orphans_dict(report)
    assert schema_errors("orphans", doc) == []
    assert doc["multipart_uploads"][0] == {
        "repository": "org/app",
        "uuid": "u-1",
        "path": "repositories/org/app/_uploads/u-1",
        "upload_id": "x1",
        "started_at": "1970-01-01T00:00:00Z",
        "age_seconds": 8 * 86400,
        "size": 2048,
        "folder_left": False,
    }
    text = orphans_text(report)
    assert "Abandoned multipart uploads: 2 (2.0 kB), invisible to listings" in text
    assert "u-1  2.0 kB, started 8 days ago, its upload folder already gone" in text
