"""``regfs retain`` on a bucket (``s3://BUCKET/PREFIX``, SeaweedFS on 127.0.0.1) that the real
registry wrote with its S3 driver.

A tag's pushed-at time on S3 is its ``current/link``'s ``LastModified``, which nothing can set:
the tags are pushed a second and more apart, so that only their order matters (``--keep-last``,
``--tags``); ``--by created`` orders by the image configs' build times, read from the bucket.
After ``retain --trash`` the registry, restarted on the bucket, serves the kept tags (every one
pulls with every digest verified, skopeo too), each removed tag is 404 and the bucket holds
exactly the blobs of the kept images; ``regfs restore`` brings every removed tag back, pullable.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import realreg as rr
import s3bed
from fixtures import build as fx
from test_gc_s3 import blob_keys, skopeo_pull
from test_retain_realreg import closure, img, push
from typer.testing import CliRunner

from regfs.cli import app

pytestmark = pytest.mark.registry

bucket_copy = s3bed.bucket_copy
aws_env = s3bed.aws_env

# Distinct LastModified seconds between two tags pushed one after the other.
APART = 1.2


def cli(*args: str) -> tuple[int, Any, str]:
    """``regfs ARGS``: (exit code, the ``--json`` document or ``{}``, stderr)."""
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else {}, res.stderr


def by_repo(doc: dict[str, Any]) -> dict[str, tuple[set[str], set[str]]]:
    """repository -> (kept tags, removed tags) of a ``retain --json`` document."""
    return {
        r["name"]: ({t["tag"] for t in r["kept"]}, {t["tag"] for t in r["removed"]})
        for r in doc["repositories"]
    }


@pytest.mark.timeout(900)
def test_retain_on_a_bucket_removes_by_order_and_restore_brings_back(
    aws_env: s3bed.Weed, bucket_copy: list[str]
) -> None:
    weed = aws_env
    rr.require_binaries()
    prefix = weed.new_prefix("retain")
    bucket_copy.append(prefix)
    storage = weed.registry_storage(prefix)
    base = fx.layer("retain-s3-base", 500)
    app_tags = {f"v{i}": img(f"s3-app-{i}", shared=[base]) for i in range(1, 5)}
    tool_tags = {n: img(f"s3-tools-{n}") for n in ("dev-1", "dev-2", "dev-3", "rel-1")}
    built = {  # --by created: the image configs' build times, read from the bucket
        "a": img("s3-built-a", created="2020-06-01T00:00:00Z"),
        "b": img("s3-built-b", created="2022-06-01T00:00:00Z"),
        "c": img("s3-built-c", created="2021-06-01T00:00:00Z"),
    }
    pushed = {"s3/app": app_tags, "s3/tools": tool_tags, "s3/built": built}
    with rr.Registry(None, s3=storage) as reg:
        for repo, tags in pushed.items():
            for tag, m in tags.items():  # oldest first, each in a later second
                push(reg, repo, m, tag)
                time.sleep(APART)
    before = blob_keys(weed, prefix)
    url = f"s3://{weed.bucket}/{prefix}"
    where = ("--endpoint-url", weed.endpoint, "--min-age", "0", "--json")
    expect = {
        "s3/app": ({"v3", "v4"}, {"v1", "v2"}),
        "s3/tools": ({"dev-3", "rel-1"}, {"dev-1", "dev-2"}),
        "s3/built": ({"b"}, {"a", "c"}),
    }
    runs: list[str] = []
    rules = {
        "s3/app": ["--keep-last", "2"],
        "s3/tools": ["--tags", "dev-.*", "--keep-last", "1"],
        "s3/built": ["--by", "created", "--keep-last", "1"],
    }
    for repo, rule in rules.items():
        args = ["--repo", repo, *rule]
        now = s3bed.list_keys(weed.client(), weed.bucket, prefix + "/")
        code, dry, err = cli("retain", url, *args, "--dry-run", *where)
        assert code == 0, err
        assert by_repo(dry) == {repo: expect[repo]}
        assert s3bed.list_keys(weed.client(), weed.bucket, prefix + "/") == now  # wrote nothing
        code, done, err = cli("retain", url, *args, "--yes", "--trash", *where)
        assert code == 0, err
        assert by_repo(done) == {repo: expect[repo]}
        runs.append(done["run_id"])

    kept = [pushed[repo][t] for repo, (names, _) in expect.items() for t in names]
    assert blob_keys(weed, prefix) == set().union(*(closure(m) for m in kept))
    with rr.Registry(None, s3=storage) as reg:
        for repo, (kept_tags, removed) in expect.items():
            # SeaweedFS (a filer) keeps an emptied tag folder as a common prefix, and the
            # registry's tag list is a delimited listing: it may still name a removed tag
            # (as after the registry's own deletes there); real S3 lists none. Its manifest
            # is 404 either way.
            assert kept_tags <= set(reg.tags(repo)) <= kept_tags | removed
            for tag in kept_tags:
                assert pushed[repo][tag].digest in reg.pull(repo, tag)
                skopeo_pull(reg, repo, tag)
            for tag in removed:
                with pytest.raises(rr.RegistryHTTPError) as info:
                    reg.get_manifest(repo, tag)
                assert info.value.status == 404, (repo, tag)

    for run_id in reversed(runs):
        code, restored, err = cli("restore", url, run_id, "--endpoint-url", weed.endpoint, "--json")
        assert code == 0, err
        assert restored["refused"] == [] and restored["missing"] == []
    assert blob_keys(weed, prefix) == before
    with rr.Registry(None, s3=storage) as reg:
        for repo, tags in pushed.items():
            assert reg.tags(repo) == sorted(tags)
            for tag, m in tags.items():
                assert m.digest in reg.pull(repo, tag)
                skopeo_pull(reg, repo, tag)
