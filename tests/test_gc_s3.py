"""``regfs gc`` on buckets the real registry wrote (SeaweedFS on 127.0.0.1): the plan equals
``docker-registry garbage-collect --dry-run CONFIG`` on the same bucket where the reference is
right; after the run the registry, restarted on the bucket, pulls every live image with every
digest verified (and skopeo copies each tag out); throttling and dropped connections injected
through the fault proxy are retried and never delete the wrong key; a batch that keeps failing
ends the run with exit 4 and the journal naming what is left."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any

import faultproxy
import pytest
import realreg as rr
import s3bed
from schemas import schema_errors
from test_gc_integration import survivors

from regfs.defaults import UPLOADS_OLDER_THAN as DEFAULT_UPLOAD_AGE
from regfs.gc.outcome import GcOutcome, GcRefused, RunStatus
from regfs.gc.plan import GcOptions
from regfs.gc.run import collect
from regfs.render.json_gc import gc_dict
from regfs.storage.s3client import Retry

pytestmark = pytest.mark.registry

V2 = "docker/registry/v2"
# Scenarios where the reference's plan is right in both modes on a bucket (multiarch, referrers
# and demo: 2.8.2's --delete-untagged breaks what must stay, README "Where regfs and ... differ").
RIGHT_DEFAULT = ["demo", "shared", "multiarch", "partial", "referrers", "schema1", "uploads"]
RIGHT_UNTAGGED = ["shared", "schema1", "uploads"]


@pytest.fixture
def aws(weed: s3bed.Weed) -> s3bed.Weed:
    """The test server (its keys are given to each client)."""
    return weed


proxy = s3bed.proxy
bucket_copy = s3bed.bucket_copy


def gc(weed: s3bed.Weed, prefix: str, *args: str, endpoint: str | None = None) -> Any:
    """``regfs gc s3://BUCKET/PREFIX --min-age 0 --json ARGS`` through the library (the run
    the command makes): (exit code, the --json document, the refusal's message)."""
    storage = s3bed.storage(weed, prefix, endpoint, timeout=30, retry=Retry())
    url = args[args.index("--registry-url") + 1] if "--registry-url" in args else None
    options = GcOptions(
        delete_untagged="--delete-untagged" in args,
        min_age=0,
        uploads_older_than=0 if "--uploads-older-than=0" in args else DEFAULT_UPLOAD_AGE,
    )
    try:
        outcome = collect(
            storage,
            options,
            dry_run="--dry-run" in args,
            registry_url=url,
            skip_live_check="--skip-live-check" in args,
        )
    except GcRefused as exc:
        assert isinstance(exc.outcome, GcOutcome)
        return 3, gc_dict(exc.outcome), exc.message
    codes = {RunStatus.REFUSED: 3, RunStatus.FAILED: 4, RunStatus.INTERRUPTED: 130}
    doc = gc_dict(outcome)
    assert schema_errors("gc", doc) == []
    return codes.get(outcome.status, 0), doc, ""


def blob_keys(weed: s3bed.Weed, prefix: str) -> set[str]:
    base = f"{prefix}/{V2}/blobs/"
    return {
        "sha256:" + k.split("/")[-2]
        for k in s3bed.list_keys(weed.client(), weed.bucket, base)
        if k.endswith("/data")
    }


def skopeo_pull(reg: rr.Registry, repo: str, ref: str) -> None:
    """``skopeo copy`` the image out of the registry into a directory: skopeo verifies every
    blob's digest as it copies."""
    bins = rr.require_binaries()
    sep = "@" if ref.startswith("sha256:") else ":"
    with tempfile.TemporaryDirectory(prefix="regfs-skopeo-pull-") as td:
        env = rr._clean_env()
        env["HOME"] = td
        cmd = [
            bins[1],
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-no-creds",
            f"docker://{reg.host}/{repo}{sep}{ref}",
            f"dir:{os.path.join(td, 'image')}",
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, f"skopeo pull {repo}{sep}{ref}: {p.stderr}"


def pull_everything_from_the_bucket(
    tree: Any, prefix: str, must: set[tuple[str, str]], gone: set[tuple[str, str]]
) -> None:
    meta = tree.meta
    storage = s3bed.registry_storage_of(tree, prefix)
    absent = {i["digest"] for i in meta["images"] if i["state"] == "deleted"}
    schema1 = bool(meta.get("registry_config", {}).get("schema1", tree.schema1))
    # skopeo copies one image at a time (an index: one platform, chosen for this host)
    # (and never a foreign layer: its URL is not on this host)
    single = {
        (i["repo"], i["digest"])
        for i in meta["images"]
        if not i.get("children") and not i.get("foreign_layers")
    }
    with rr.Registry(None, s3=storage, schema1=schema1) as reg:
        for repo, tags in meta["tags"].items():
            for tag, digest in tags.items():
                if (repo, digest) in must:
                    reg.pull(repo, tag, absent=absent)
                    if not schema1 and (repo, digest) in single:
                        skopeo_pull(reg, repo, tag)
        for repo, digest in sorted(must):
            reg.pull(repo, digest, absent=absent)
        for repo, digest in sorted(gone):
            with pytest.raises(rr.RegistryHTTPError) as info:
                reg.get_manifest(repo, digest)
            assert info.value.status == 404, (repo, digest)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", RIGHT_DEFAULT)
def test_default_gc_on_the_bucket_equals_the_reference_and_every_image_pulls(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, bucket_copy: list[str], name: str
) -> None:
    tree = scenarios.get(name)
    prefix = s3bed.copy_scenario(aws, tree, bucket_copy, f"gc-{name}")
    storage = s3bed.registry_storage_of(tree, prefix)
    ref = rr.reference_gc(None, dry_run=True, s3=storage, schema1=tree.schema1)
    assert ref.exit_code == 0, ref.output
    code, dry, err = gc(aws, prefix, "--dry-run")
    assert code == 0, err
    assert sorted(b["digest"] for b in dry["blobs"]) == sorted(ref.blobs)
    before = blob_keys(aws, prefix)
    code, out, err = gc(aws, prefix, "--yes", "--skip-live-check")
    assert code == 0, err
    assert out["status"] == "done"
    assert sorted(b["digest"] for b in out["blobs"]) == sorted(ref.blobs)
    assert blob_keys(aws, prefix) == before - set(ref.blobs)
    must, gone = survivors(tree.meta, untagged_mode=False)
    pull_everything_from_the_bucket(tree, prefix, must, gone)
    code, again, err = gc(aws, prefix, "--yes", "--skip-live-check")  # converges
    assert code == 0 and again["blobs"] == [] and again["layer_links"] == [], err


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["demo", "multiarch", "partial", "referrers", *RIGHT_UNTAGGED])
def test_delete_untagged_on_the_bucket_keeps_every_live_image(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, bucket_copy: list[str], name: str
) -> None:
    tree = scenarios.get(name)
    prefix = s3bed.copy_scenario(aws, tree, bucket_copy, f"gcu-{name}")
    must, gone = survivors(tree.meta, untagged_mode=True)
    code, dry, err = gc(aws, prefix, "--dry-run", "--delete-untagged")
    assert code == 0, err
    if name in RIGHT_UNTAGGED:  # the reference is right here: the same plan
        storage = s3bed.registry_storage_of(tree, prefix)
        ref = rr.reference_gc(
            None, dry_run=True, delete_untagged=True, s3=storage, schema1=tree.schema1
        )
        assert sorted(b["digest"] for b in dry["blobs"]) == sorted(ref.blobs)
    code, out, err = gc(aws, prefix, "--yes", "--skip-live-check", "--delete-untagged")
    assert code == 0, err
    assert {(m["repository"], m["digest"]) for m in out["manifests"]} == gone
    pull_everything_from_the_bucket(tree, prefix, must, gone)


@pytest.mark.timeout(900)
def test_faults_are_retried_and_never_delete_the_wrong_key(
    aws: s3bed.Weed,
    scenarios: s3bed.Scenarios,
    bucket_copy: list[str],
    proxy: faultproxy.FaultProxy,
) -> None:
    tree = scenarios.get("shared")
    prefix = s3bed.copy_scenario(aws, tree, bucket_copy, "gcf-shared")
    storage = s3bed.registry_storage_of(tree, prefix)
    ref = rr.reference_gc(None, dry_run=True, s3=storage, schema1=tree.schema1)
    before = blob_keys(aws, prefix)

    # What gc's own side sends (the re-checks and the batches; the read side's listing and
    # reads have their faults in test_storage_s3): throttled, refused, and cut off before
    # and after the server carried a batch out.
    for op in ("HeadObject", "DeleteObjects"):
        proxy.inject("slowdown", op=op, times=3)
        proxy.inject("error500", op=op, times=1)
    proxy.inject("drop", op="HeadObject", times=2)
    proxy.inject("drop", op="DeleteObjects", times=2, after_forward=True)
    code, _out, err = gc(aws, prefix, "--yes", "--skip-live-check", endpoint=proxy.url)
    assert code == 0, err
    faults = [s.fault for s in proxy.seen() if s.fault]
    assert faults.count("slowdown") == 6 and faults.count("drop") == 4
    assert blob_keys(aws, prefix) == before - set(ref.blobs)
    must, gone = survivors(tree.meta, untagged_mode=False)
    pull_everything_from_the_bucket(tree, prefix, must, gone)


@pytest.mark.timeout(900)
def test_a_batch_that_keeps_failing_exits_4_and_the_journal_names_what_is_left(
    aws: s3bed.Weed,
    scenarios: s3bed.Scenarios,
    bucket_copy: list[str],
    proxy: faultproxy.FaultProxy,
) -> None:
    tree = scenarios.get("shared")
    prefix = s3bed.copy_scenario(aws, tree, bucket_copy, "gcx-shared")
    before = blob_keys(aws, prefix)
    proxy.inject("slowdown", op="DeleteObjects", times=-1)
    code, out, err = gc(aws, prefix, "--yes", "--skip-live-check", endpoint=proxy.url)
    assert code == 4, err
    assert out["status"] == "failed"
    failed = [s for s in out["skipped"] if s["status"] == "failed"]
    assert failed and all("SlowDown" in s["reason"] for s in failed)
    assert blob_keys(aws, prefix) == before  # nothing deleted: the first batch failed
    client = aws.client()
    runs = f"{prefix}/.regfs/runs/{out['run_id']}"
    result = json.loads(
        client.get_object(Bucket=aws.bucket, Key=f"{runs}/result.json")["Body"].read()
    )
    plan = json.loads(client.get_object(Bucket=aws.bucket, Key=f"{runs}/plan.json")["Body"].read())
    assert result["left"] == [a["path"] for a in plan["actions"]]
    assert result["failed"] and "SlowDown" in result["failed"]
    # the lock is released: a run after the fault goes through and converges
    proxy.clear_faults()
    code, out, err = gc(aws, prefix, "--yes", "--skip-live-check", endpoint=proxy.url)
    assert code == 0, err
    ref = rr.reference_gc(None, dry_run=True, s3=s3bed.registry_storage_of(tree, prefix))
    assert ref.blobs == set()  # nothing left for the reference either


@pytest.mark.timeout(600)
def test_a_registry_serving_the_bucket_refuses_the_run(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, bucket_copy: list[str]
) -> None:
    tree = scenarios.get("demo")
    prefix = s3bed.copy_scenario(aws, tree, bucket_copy, "gcl-demo")
    before = s3bed.list_keys(aws.client(), aws.bucket, f"{prefix}/{V2}/")
    storage = s3bed.registry_storage_of(tree, prefix)
    with rr.Registry(None, s3=storage) as reg:
        assert reg.proc is not None
        for args in (("--dry-run",), ("--yes",), ("--yes", "--registry-url", reg.url)):
            code, out, err = gc(aws, prefix, *args)
            assert code == 3, err
            kinds = {(r["kind"], r["pid"]) for r in out["refused"]}
            assert ("registry_writable", reg.proc.pid) in kinds
            if "--registry-url" in args:
                assert "probe" in {r["kind"] for r in out["refused"]}
    assert s3bed.list_keys(aws.client(), aws.bucket, f"{prefix}/{V2}/") == before


@pytest.mark.timeout(600)
def test_abandoned_multipart_uploads_are_aborted(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, bucket_copy: list[str]
) -> None:
    tree = scenarios.get("demo")
    prefix = s3bed.copy_scenario(aws, tree, bucket_copy, "gcm-demo")
    client = aws.client()
    repo = sorted(tree.meta["tags"])[0]
    upload = f"repositories/{repo}/_uploads/6b3c1e2a-0000-4000-8000-000000000001"
    key = f"{prefix}/{V2}/{upload}/data"
    mp = client.create_multipart_upload(Bucket=aws.bucket, Key=key)
    client.upload_part(
        Bucket=aws.bucket, Key=key, UploadId=mp["UploadId"], PartNumber=1, Body=b"q" * 4096
    )
    # younger than --uploads-older-than (a week by default): kept
    code, out, err = gc(aws, prefix, "--dry-run")
    assert code == 0, err
    assert upload not in [u["path"] for u in out["uploads"]]
    code, out, err = gc(aws, prefix, "--yes", "--skip-live-check", "--uploads-older-than=0")
    assert code == 0, err
    assert {"repository": repo, "path": upload, "size": 4096} in out["uploads"]
    left = client.list_multipart_uploads(Bucket=aws.bucket, Prefix=f"{prefix}/").get("Uploads")
    assert not left
