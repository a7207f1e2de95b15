"""The command line on a registry in S3 (SeaweedFS on 127.0.0.1, buckets the real registry
wrote): ``s3://BUCKET/PREFIX`` with ``--endpoint-url``, ``--config CONFIG.yml`` (the registry's
own file, ``REGISTRY_*`` overrides applied), every reading command, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faultproxy
import pytest
import realreg as rr
import s3bed
from s3compare import comparable_orphans
from typer.testing import CliRunner

from regfs.cli import app
from regfs.storage.s3client import Retry

pytestmark = pytest.mark.registry


aws = s3bed.aws_env


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def stable(out: str) -> Any:
    """A ``--json`` document without what moves with the clock (``age_seconds``)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "age_seconds"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(out))


def url(weed: s3bed.Weed, tree: Any) -> str:
    return f"s3://{weed.bucket}/{tree.s3.prefix}"


def config_file(tmp_path: Path, tree: Any, **storage: Any) -> str:
    return rr.write_config(
        None, 5000, s3={**tree.s3.storage, **storage}, path=str(tmp_path / "config.yml")
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", rr.ALL_FIXTURES)
def test_orphans_on_the_bucket_are_orphans_on_disk(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path, name: str
) -> None:
    tree = scenarios.get(name)
    code, out, err = run("orphans", url(aws, tree), "--endpoint-url", aws.endpoint, "--json")
    disk = rr.extract_fixture(name, tmp_path / "root")
    fs_code, fs_out, _ = run("orphans", str(disk), "--json")
    assert code == fs_code, err
    assert comparable_orphans(json.loads(out)) == comparable_orphans(json.loads(fs_out))
    if name != "damaged":  # where the reference is right: the same blobs on the same bucket
        ref = rr.reference_gc(None, dry_run=True, s3=tree.s3.storage, schema1=tree.schema1)
        assert sorted(b["digest"] for b in json.loads(out)["orphaned_blobs"]) == sorted(ref.blobs)


def test_config_reads_the_bucket_as_the_registry_does(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = scenarios.get("shared")
    by_url = run("orphans", url(aws, tree), "--endpoint-url", aws.endpoint, "--json")
    # The file names another bucket and prefix; the environment overrides both, as it does for
    # `registry garbage-collect CONFIG`. Keys come from the file, not the environment.
    cfg = config_file(tmp_path, tree, bucket="elsewhere", rootdirectory="/nowhere")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("REGISTRY_STORAGE_S3_BUCKET", aws.bucket)
    monkeypatch.setenv("REGISTRY_STORAGE_S3_ROOTDIRECTORY", "/" + tree.s3.prefix)
    code, out, err = run("orphans", "--config", cfg, "--json")
    assert (code, stable(out)) == (by_url[0], stable(by_url[1])), err
    ref = rr.reference_gc(None, dry_run=True, s3=tree.s3.storage)
    assert sorted(b["digest"] for b in json.loads(by_url[1])["orphaned_blobs"]) == sorted(ref.blobs)


def test_every_reading_command_works_on_a_bucket(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path
) -> None:
    tree = scenarios.get("multiarch")
    disk = str(rr.extract_fixture("multiarch", tmp_path / "root"))
    where = [url(aws, tree), "--endpoint-url", aws.endpoint]
    for cmd in (["tree", "--json"], ["du", "--json", "--by", "tag"], ["check", "--json"]):
        code, out, err = run(cmd[0], *where, *cmd[1:])
        fs_code, fs_out, _ = run(cmd[0], disk, *cmd[1:])
        assert code == fs_code == 0, err
        doc, fs_doc = json.loads(out), json.loads(fs_out)
        if cmd[0] == "tree":  # where the registry is: a bucket's location, a folder's path
            assert doc.pop("path") == f"{url(aws, tree)}/docker/registry/v2"
            fs_doc.pop("path")
        assert doc == fs_doc, cmd
    code, out, _ = run("tree", *where)
    assert code == 0 and "multi/" in out


def test_gc_dry_run_on_a_bucket_plans_the_reference_blobs(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path
) -> None:
    """gc and rm take the bucket from s3:// + --endpoint-url and from --config alike."""
    tree = scenarios.get("shared")
    args = ["--dry-run", "--min-age", "0", "--skip-live-check", "--json"]
    code, out, err = run("gc", url(aws, tree), "--endpoint-url", aws.endpoint, *args)
    assert code == 0, err
    ref = rr.reference_gc(None, dry_run=True, s3=tree.s3.storage)
    assert sorted(b["digest"] for b in json.loads(out)["blobs"]) == sorted(ref.blobs)
    by_config = run("gc", "--config", config_file(tmp_path, tree), *args)
    assert by_config[0] == 0 and json.loads(by_config[1])["blobs"] == json.loads(out)["blobs"]
    code, out, err = run(
        "rm", url(aws, tree), "base/os:1.0", "--endpoint-url", aws.endpoint, "--dry-run"
    )
    assert code in (0, 3), err
    assert "base/os:1.0" in out + err


def test_verify_digests_hashes_the_bucket(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path
) -> None:
    """``check --verify-digests`` streams every blob and hashes it (in threads): the byte
    flipped in ``damaged`` is found, as on disk; a healthy bucket verifies clean."""
    damaged = scenarios.get("damaged")
    code, out, err = run(
        "check", url(aws, damaged), "--endpoint-url", aws.endpoint, "--verify-digests", "--json"
    )
    assert code == 1, err
    doc = json.loads(out)
    flipped = next(d for d in damaged.meta["damage"] if d["id"] == "bit-flip")
    assert ("digest_mismatch", flipped["digest"]) in {
        (p["kind"], p.get("digest")) for p in doc["problems"]
    }
    healthy = scenarios.get("demo")
    code, out, err = run(
        "check", url(aws, healthy), "--endpoint-url", aws.endpoint, "--verify-digests", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["verified_blobs"] == len(healthy.meta["blobs"])


def _one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regfs: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_errors_are_one_line_exit_2(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path
) -> None:
    tree = scenarios.get("demo")
    good = url(aws, tree)
    dead = f"http://127.0.0.1:{rr.free_port()}"
    cases: list[tuple[list[str], tuple[str, ...]]] = [
        (["orphans", good, "--endpoint-url", dead], ("cannot reach", dead)),
        (
            ["orphans", f"s3://{aws.bucket}/no-registry-here", "--endpoint-url", aws.endpoint],
            ("not a registry storage root", "no-registry-here"),
        ),
        (["orphans", "s3://no-such-bucket-x/p", "--endpoint-url", aws.endpoint], ("bucket",)),
        (["orphans", "s3://"], ("s3://BUCKET/PREFIX",)),
        (["orphans", str(tmp_path), "--endpoint-url", aws.endpoint], ("--endpoint-url",)),
        (["orphans", good, "--config", "x.yml"], ("ROOT or --config",)),
        (["orphans", "--config", str(tmp_path / "missing.yml")], ("missing.yml", "cannot read")),
    ]
    bad = tmp_path / "bad.yml"
    bad.write_text("storage: [not, a, mapping\n")
    cases.append((["du", "--config", str(bad)], ("bad.yml", "YAML")))
    gcs = tmp_path / "gcs.yml"
    gcs.write_text("version: 0.1\nstorage:\n  gcs: {bucket: b}\n")
    cases.append((["tree", "--config", str(gcs)], ("gcs.yml", "'gcs' is not supported")))
    nobucket = tmp_path / "nobucket.yml"
    nobucket.write_text("version: 0.1\nstorage:\n  s3: {region: us-east-1}\n")
    cases.append((["check", "--config", str(nobucket)], ("no bucket",)))
    for args, needles in cases:
        _one_line_error(*run(*args), *needles)


def test_a_filesystem_config_and_its_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rr.extract_fixture("demo", tmp_path / "root")
    expected = run("orphans", str(root), "--json")
    cfg = tmp_path / "config.yml"
    cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\n")
    code, out, err = run("orphans", "--config", str(cfg), "--json")
    assert (code, stable(out)) == (expected[0], stable(expected[1])), err
    moved = tmp_path / "moved"
    root.rename(moved)
    monkeypatch.setenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", str(moved))
    code, out, err = run("orphans", "--config", str(cfg), "--json")
    assert (code, stable(out)) == (expected[0], stable(expected[1])), err
    # --config works for the deleting commands too, on a folder.
    code, _out, err = run("gc", "--config", str(cfg), "--dry-run", "--skip-live-check")
    assert code == 0, err
    # A relative rootdirectory starts at the registry's working directory, not regfs's.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "moved")
    _one_line_error(*run("gc", "--config", str(cfg), "--dry-run"), "'moved' is relative")


def test_missing_boto3_says_how_to_install(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    tree = scenarios.get("demo")
    code, out, err = run("orphans", url(aws, tree), "--endpoint-url", aws.endpoint)
    _one_line_error(code, out, err, "pip install 'regfs[s3]'")


def test_an_unreadable_key_is_a_finding_exit_1_never_a_wrong_report(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios
) -> None:
    """Through a loopback proxy that answers SlowDown to every read of one manifest: retried,
    then reported (exit 1); nothing that manifest may reference is called orphaned."""
    tree = scenarios.get("shared")
    clean = json.loads(run("orphans", url(aws, tree), "--endpoint-url", aws.endpoint, "--json")[1])
    image = next(i for i in tree.meta["images"] if i["tag"] and i["state"] == "tagged")
    hexd = image["digest"].split(":", 1)[1]
    with faultproxy.FaultProxy(aws.s3_port) as proxy:
        proxy.inject("slowdown", op="GetObject", times=-1, match=lambda _o, _m, p: hexd in p)
        code, out, err = run("orphans", url(aws, tree), "--endpoint-url", proxy.url, "--json")
        assert any(s.fault == "slowdown" for s in proxy.seen())
    assert code == 1, err
    doc = json.loads(out)
    assert [p["kind"] for p in doc["problems"]] == ["unparseable_manifest"]
    assert hexd in doc["problems"][0]["path"] and doc["problems"][0]["blocks_gc"]
    ours = {b["digest"] for b in doc["orphaned_blobs"]}
    assert ours <= {b["digest"] for b in clean["orphaned_blobs"]}
    assert image["config"] not in ours and not set(image["layers"]) & ours


def test_orphans_on_a_bucket_lists_the_open_multipart_uploads(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios
) -> None:
    """An unfinished upload's data is an open multipart upload (invisible to the listing): the
    bucket's report lists each one with its bytes; a folder's report has no such key."""
    tree = scenarios.get("uploads")
    where = [url(aws, tree), "--endpoint-url", aws.endpoint]
    code, out, err = run("orphans", *where, "--uploads-older-than", "0", "--json")
    assert code == 0, err
    listed = {
        (m["uuid"], m["size"], m["folder_left"]) for m in json.loads(out)["multipart_uploads"]
    }
    expected = {
        (u["uuid"], u["multipart"][0]["size"], True) for u in tree.meta["uploads"] if u["multipart"]
    }
    assert listed == expected and expected
    # Started just now (nothing can back-date a multipart upload): not stale at the default age.
    code, out, err = run("orphans", *where, "--json")
    assert json.loads(out)["multipart_uploads"] == []


def test_a_throttled_start_is_retried_as_every_request_is(
    aws: s3bed.Weed, scenarios: s3bed.Scenarios
) -> None:
    """The start-up check (one small listing) meets throttling (``SlowDown``, 503) with the
    retries and backoff of every other request: five throttled answers in a row still
    start; a bucket that stays throttled is one line, exit 2, after as many tries as any
    request gets."""
    tree = scenarios.get("demo")
    clean = run("orphans", url(aws, tree), "--endpoint-url", aws.endpoint, "--json")
    assert clean[0] == 0, clean[2]
    with faultproxy.FaultProxy(aws.s3_port) as proxy:
        proxy.inject("slowdown", op="ListObjectsV2", times=5)
        code, out, err = run("orphans", url(aws, tree), "--endpoint-url", proxy.url, "--json")
        assert (code, stable(out)) == (0, stable(clean[1])), err
        first = [(s.op, s.fault) for s in proxy.seen()][:6]
        assert first == [("ListObjectsV2", "slowdown")] * 5 + [("ListObjectsV2", None)]
        proxy.clear_faults()
        proxy.reset()
        proxy.inject("slowdown", op="ListObjectsV2", times=-1)
        code, out, err = run("orphans", url(aws, tree), "--endpoint-url", proxy.url)
        _one_line_error(code, out, err, "SlowDown", url(aws, tree))
        assert proxy.counts() == {"ListObjectsV2": Retry().attempts}
