"""regfs.storage.config.describe_storage (re-exported by regfs.gc.regconfig): the store a
registry CONFIG names, read as the registry reads it (environment overrides included), checked
against the real registry on S3."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import realreg as rr
import s3bed
from hypothesis import given
from hypothesis import strategies as st

from regfs.storage.config import describe_storage
from regfs.storage.regyaml import ConfigError

S3_CONFIG = """
version: 0.1
storage:
  s3:
    accesskey: AKIAEXAMPLE
    secretkey: s3cr3t
    region: us-east-1
    regionendpoint: http://127.0.0.1:9000
    bucket: registry-bucket
    secure: false
    forcepathstyle: true
    rootdirectory: /prod/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
"""


def test_s3_from_the_file() -> None:
    d = describe_storage(S3_CONFIG, {})
    assert d.driver == "s3" and d.rootdirectory is None
    s3 = d.s3
    assert s3 is not None
    assert (s3.bucket, s3.region, s3.regionendpoint) == (
        "registry-bucket",
        "us-east-1",
        "http://127.0.0.1:9000",
    )
    assert (s3.accesskey, s3.secretkey) == ("AKIAEXAMPLE", "s3cr3t")
    assert s3.secure is False and s3.forcepathstyle is True and s3.v4auth is True
    assert s3.prefix == "prod/registry"
    assert s3.endpoint_url == "http://127.0.0.1:9000"
    assert s3.sources["bucket"] == "config"
    assert "s3cr3t" not in json.dumps(s3.redacted())


def test_environment_overrides_replace_parameters() -> None:
    env = {
        "REGISTRY_STORAGE_S3_BUCKET": "other-bucket",
        "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/elsewhere/",
        "REGISTRY_STORAGE_S3_SECURE": "true",
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": "minio.internal:9000",
        "UNRELATED": "x",
    }
    s3 = describe_storage(S3_CONFIG, env).s3
    assert s3 is not None
    assert s3.bucket == "other-bucket"
    assert s3.prefix == "elsewhere"
    assert s3.secure is True
    assert s3.endpoint_url == "https://minio.internal:9000"  # scheme from secure
    assert s3.sources["bucket"] == "environment REGISTRY_STORAGE_S3_BUCKET"
    assert s3.sources["region"] == "config"


def test_an_override_is_read_as_yaml() -> None:
    """As the registry reads it: REGISTRY_STORAGE_S3_ROOTDIRECTORY=N is the boolean false."""
    s3 = describe_storage(S3_CONFIG, {"REGISTRY_STORAGE_S3_ROOTDIRECTORY": "N"}).s3
    assert s3 is not None and s3.rootdirectory == "false"


def test_whole_storage_from_the_environment() -> None:
    env = {"REGISTRY_STORAGE": "{s3: {bucket: b-env, region: eu-west-1}}"}
    d = describe_storage("version: 0.1\nstorage: {filesystem: {rootdirectory: /x}}\n", env)
    assert d.driver == "s3" and d.s3 is not None
    assert (d.s3.bucket, d.s3.region, d.s3.prefix, d.s3.endpoint_url) == (
        "b-env",
        "eu-west-1",
        "",
        None,
    )
    assert d.s3.secure is True  # the driver's default


def test_filesystem_configs_work_too() -> None:
    d = describe_storage("storage:\n  filesystem:\n    rootdirectory: /srv/reg\n", {})
    assert (d.driver, d.rootdirectory, d.s3) == ("filesystem", "/srv/reg", None)
    d = describe_storage(
        "storage:\n  filesystem:\n    rootdirectory: /srv/reg\n",
        {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/data"},
    )
    assert d.rootdirectory == "/data"
    assert d.root_source == "environment REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"
    assert describe_storage("storage: {filesystem: {}}\n", {}).rootdirectory == (
        "/var/lib/registry"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("storage: {s3: {region: us-east-1}}", "no bucket"),
        ("storage: {s3: {bucket: b}}", "no region"),
        ("storage: {s3: {bucket: b, region: r, secure: maybe}}", "secure is 'maybe'"),
        ("storage: {s3: {bucket: b, region: r, v4auth: 2}}", "v4auth is 2"),
        ("storage: {azure: {accountname: a}}", "'azure' is not supported"),
        ("storage: {s3: {bucket: b, region: r}, filesystem: {}}", "more than one"),
        ("storage: {delete: {enabled: true}}", "no storage driver"),
        ("storage: [", "not valid YAML"),
    ],
)
def test_what_the_registry_refuses_is_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        describe_storage(text, {})


GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]


@given(st.sampled_from(GO_TRUE + GO_FALSE), st.sampled_from(["secure", "encrypt", "v4auth"]))
def test_booleans_as_text_follow_go_parsebool(spelling: str, name: str) -> None:
    text = f"storage: {{s3: {{bucket: b, region: r, {name}: '{spelling}'}}}}"
    s3 = describe_storage(text, {}).s3
    assert s3 is not None
    assert getattr(s3, name) is (spelling in GO_TRUE)


@given(
    # (words YAML reads as something else, "N", "yes", "010", are kept out: the registry reads
    # an override as YAML, so "N" would be the boolean false, printed "false")
    st.from_regex(r"b[a-z0-9.-]{1,40}[a-z0-9]", fullmatch=True),
    st.lists(st.from_regex(r"p[A-Za-z0-9_-]{0,11}", fullmatch=True), max_size=4),
    st.booleans(),
    st.booleans(),
)
def test_bucket_and_prefix_from_the_environment(
    bucket: str, parts: list[str], leading: bool, trailing: bool
) -> None:
    root = ("/" if leading else "") + "/".join(parts) + ("/" if trailing and parts else "")
    env = {"REGISTRY_STORAGE_S3_BUCKET": bucket, "REGISTRY_STORAGE_S3_ROOTDIRECTORY": root}
    s3 = describe_storage(S3_CONFIG, env).s3
    assert s3 is not None
    assert s3.bucket == bucket
    assert s3.prefix == "/".join(parts)


@pytest.mark.registry
def test_the_registry_writes_where_the_description_says(
    weed: s3bed.Weed, s3_root: str, tmp_path: Path
) -> None:
    """A config naming a wrong bucket and root, corrected by environment overrides: the real
    registry writes under the bucket and prefix describe_storage reports."""
    rr.require_binaries()
    storage = weed.registry_storage(s3_root)
    wrong = {**storage, "bucket": "no-such-bucket", "rootdirectory": "/wrong"}
    port = rr.free_port()
    cfg = rr.write_config(None, port, s3=wrong, path=tmp_path / "config.yml")
    env = {
        "REGISTRY_STORAGE_S3_BUCKET": weed.bucket,
        "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/" + s3_root,
    }
    desc = describe_storage(Path(cfg).read_text(), env)
    assert desc.s3 is not None
    assert (desc.s3.bucket, desc.s3.prefix) == (weed.bucket, s3_root)
    assert desc.s3.endpoint_url == weed.endpoint

    import subprocess
    import time

    bins = rr.require_binaries()
    proc = subprocess.Popen(
        [bins[0], "serve", cfg],
        env={**rr._clean_env(), **env},
        stdout=open(tmp_path / "log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                rr.http_request("GET", url + "/v2/", timeout=1)
                break
            except (OSError, rr.RegistryHTTPError):
                time.sleep(0.05)
        r = rr.http_request("POST", url + "/v2/x/y/blobs/uploads/", data=b"", expect=(202,))
        loc = r.header("location") or ""
        digest = rr.sha256_digest(b"where am I")
        sep = "&" if "?" in loc else "?"
        rr.http_request(
            "PUT",
            f"{loc}{sep}digest={digest}",
            data=b"where am I",
            headers={"Content-Type": "application/octet-stream"},  # (not a form: Go reads those)
            expect=(201,),
        )
    except rr.RegistryHTTPError as exc:
        raise AssertionError((tmp_path / "log").read_text()[-3000:]) from exc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    keys = s3bed.list_keys(weed.client(), weed.bucket, desc.s3.prefix + "/")
    hexd = digest.split(":")[1]
    assert f"{desc.s3.prefix}/docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}/data" in keys
    assert not os.path.exists(tmp_path / "docker")


@pytest.mark.registry
def test_a_config_opens_the_bucket_the_registry_wrote(
    weed: s3bed.Weed, scenarios: s3bed.Scenarios, tmp_path: Path
) -> None:
    """--config end to end: the registry's own config file (here with the bucket and root set
    by environment overrides) opens the store the registry wrote, and regfs lists it all."""
    from regfs.storage.base import ListError
    from regfs.storage.config import open_s3

    tree = scenarios.get("demo")
    wrong = {**tree.s3.storage, "bucket": "elsewhere", "rootdirectory": "/nope"}
    cfg = rr.write_config(None, 5000, s3=wrong, path=tmp_path / "config.yml")
    env = {
        "REGISTRY_STORAGE_S3_BUCKET": weed.bucket,
        "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/" + tree.s3.prefix,
    }
    desc = describe_storage(Path(cfg).read_text(), env)
    assert desc.s3 is not None
    storage = open_s3(desc.s3, workers=4)
    listed = {i.path for i in storage.list_prefix("") if not isinstance(i, ListError)}
    truth = s3bed.list_keys(weed.client(), weed.bucket, tree.s3.prefix + "/docker/registry/v2/")
    assert listed == {k.split("/docker/registry/v2/", 1)[1] for k in truth}
    hexd = next(iter(tree.meta["blobs"])).split(":")[1]
    assert storage.exists(f"blobs/sha256/{hexd[:2]}/{hexd}/data")
