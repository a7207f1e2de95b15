"""The deleting commands on a bucket from the command line (``s3://BUCKET/PREFIX`` with
``--endpoint-url``, credentials from the environment), on buckets the real registry wrote
(SeaweedFS on 127.0.0.1): ``regfs gc --yes`` exits 4 when a batch delete keeps failing and its
journal names what is left; ``gc --trash``, ``trash list``, ``restore`` and ``trash purge``;
after ``restore`` the registry, on the bucket, pulls every restored image with every digest
verified (skopeo too)."""

from __future__ import annotations

import json
from typing import Any

import faultproxy
import pytest
import realreg as rr
import s3bed
from schemas import schema_errors
from test_gc_integration import survivors
from test_gc_s3 import blob_keys, pull_everything_from_the_bucket
from typer.testing import CliRunner

from regfs.cli import app

pytestmark = pytest.mark.registry

V2 = "docker/registry/v2"

proxy = s3bed.proxy
bucket_copy = s3bed.bucket_copy
aws_env = s3bed.aws_env


def cli(*args: str) -> tuple[int, Any, str]:
    """``regfs ARGS``: (exit code, the ``--json`` document or ``{}``, stderr)."""
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else {}, res.stderr


def fresh_copy(weed: s3bed.Weed, tree: Any, made: list[str], label: str) -> tuple[str, str]:
    """A private copy of a scenario's bucket prefix: (prefix, ``s3://`` URL)."""
    prefix = s3bed.copy_scenario(weed, tree, made, label)
    return prefix, f"s3://{weed.bucket}/{prefix}"


def reference_blobs(tree: Any, prefix: str, **kw: Any) -> set[str]:
    """What ``docker-registry garbage-collect --dry-run`` would delete from the copy now."""
    storage = s3bed.registry_storage_of(tree, prefix)
    ref = rr.reference_gc(None, dry_run=True, s3=storage, schema1=tree.schema1, **kw)
    assert ref.exit_code == 0, ref.output
    return set(ref.blobs)


def state_keys(weed: s3bed.Weed, prefix: str, below: str) -> dict[str, Any]:
    """regfs's own objects under ``PREFIX/.regfs/BELOW``."""
    return s3bed.list_keys(weed.client(), weed.bucket, f"{prefix}/.regfs/{below}")


@pytest.mark.timeout(900)
def test_gc_exits_4_on_a_failed_batch_then_trash_and_restore_put_it_back(
    aws_env: s3bed.Weed,
    scenarios: s3bed.Scenarios,
    bucket_copy: list[str],
    proxy: faultproxy.FaultProxy,
) -> None:
    weed = aws_env
    tree = scenarios.get("shared")
    prefix, url = fresh_copy(weed, tree, bucket_copy, "gcc-shared")
    expected = reference_blobs(tree, prefix)
    assert expected  # the scenario has orphaned blobs
    before = blob_keys(weed, prefix)
    common = ("--endpoint-url", proxy.url, "--min-age", "0", "--json", "--skip-live-check")

    proxy.inject("slowdown", op="DeleteObjects", times=-1)
    code, out, err = cli("gc", url, "--yes", *common)
    assert code == 4, err
    assert out["status"] == "failed" and schema_errors("gc", out) == []
    failed = [s for s in out["skipped"] if s["status"] == "failed"]
    assert failed and all("SlowDown" in s["reason"] for s in failed)
    assert blob_keys(weed, prefix) == before  # the first batch failed: nothing deleted
    runs = f"{prefix}/.regfs/runs/{out['run_id']}"
    client = weed.client()
    result = json.loads(
        client.get_object(Bucket=weed.bucket, Key=f"{runs}/result.json")["Body"].read()
    )
    plan = json.loads(client.get_object(Bucket=weed.bucket, Key=f"{runs}/plan.json")["Body"].read())
    assert result["left"] == [a["path"] for a in plan["actions"]] and result["left"]
    assert "SlowDown" in result["failed"]
    assert not state_keys(weed, prefix, "lock")  # released

    proxy.clear_faults()
    code, out, err = cli("gc", url, "--yes", "--trash", *common)
    assert code == 0, err
    assert out["status"] == "done"
    assert {b["digest"] for b in out["blobs"]} == expected
    assert blob_keys(weed, prefix) == before - expected
    assert reference_blobs(tree, prefix) == set()

    code, restored, err = cli("restore", url, out["run_id"], "--endpoint-url", proxy.url, "--json")
    assert code == 0, err
    assert restored["refused"] == [] and restored["missing"] == []
    assert blob_keys(weed, prefix) == before
    assert reference_blobs(tree, prefix) == expected  # orphaned again, as before the run


@pytest.mark.timeout(900)
def test_untagged_images_trashed_and_restored_pull_again_then_purge(
    aws_env: s3bed.Weed, scenarios: s3bed.Scenarios, bucket_copy: list[str]
) -> None:
    """``gc --delete-untagged --trash`` removes the untagged images; ``trash list`` shows the
    run; ``restore`` brings them back and the registry pulls each by digest (and every tag),
    digests verified, and the trash is empty again; a second run's trash is purged for good
    (``--dry-run`` first) and then cannot be restored (exit 2)."""
    weed = aws_env
    tree = scenarios.get("demo")
    prefix, url = fresh_copy(weed, tree, bucket_copy, "gct-demo")
    where = ("--endpoint-url", weed.endpoint)
    before = s3bed.list_keys(weed.client(), weed.bucket, f"{prefix}/{V2}/")
    must, gone = survivors(tree.meta, untagged_mode=True)
    assert gone

    args = ("--delete-untagged", "--trash", "--min-age", "0", "--skip-live-check", "--json")
    code, out, err = cli("gc", url, *where, "--yes", *args)
    assert code == 0, err
    assert {(m["repository"], m["digest"]) for m in out["manifests"]} == gone
    run_id = out["run_id"]
    pull_everything_from_the_bucket(tree, prefix, must, gone)  # gone: 404 now

    code, listed, err = cli("trash", "list", url, *where, "--json")
    assert code == 0, err
    assert schema_errors("trash-list", listed) == []
    (run,) = listed["runs"]
    assert run["run_id"] == run_id and run["items"] > 0 and run["bytes"] > 0

    code, restored, err = cli("restore", url, run_id, *where, "--json")
    assert code == 0, err
    assert restored["missing"] == [] and restored["refused"] == [] and restored["restored"]
    after = s3bed.list_keys(weed.client(), weed.bucket, f"{prefix}/{V2}/")
    assert {k: v["Size"] for k, v in after.items()} == {k: v["Size"] for k, v in before.items()}
    present, _ = survivors(tree.meta, untagged_mode=False)
    pull_everything_from_the_bucket(tree, prefix, present, set())  # every image, with skopeo

    # a run restored whole leaves nothing in the trash (SeaweedFS keeps emptied folders)
    assert cli("trash", "list", url, *where, "--json")[1]["runs"] == []

    code, out, err = cli("gc", url, *where, "--yes", *args)  # again: trashed
    assert code == 0, err
    run_id = out["run_id"]
    left = state_keys(weed, prefix, "trash/")
    assert left
    code, dry, err = cli("trash", "purge", url, *where, "--older-than", "0", "--dry-run", "--json")
    assert code == 0, err
    assert dry["purged"] == [run_id] and state_keys(weed, prefix, "trash/") == left
    code, purged, err = cli("trash", "purge", url, *where, "--older-than", "0", "--yes", "--json")
    assert code == 0, err
    assert purged["purged"] == [run_id] and purged["bytes"] == sum(v["Size"] for v in left.values())
    assert not state_keys(weed, prefix, "trash/")
    assert cli("trash", "list", url, *where, "--json")[1]["runs"] == []
    code, _, err = cli("restore", url, run_id, *where)
    assert code == 2 and "nothing in the trash" in err, err
    pull_everything_from_the_bucket(tree, prefix, must, gone)  # gone for good
