"""regfs.storage.locate: ROOT, --config and --endpoint-url to a store (the bucket cases end to
end on SeaweedFS: tests/test_cli_s3.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builder import StoreBuilder
from hypothesis import given
from hypothesis import strategies as st
from test_storage_listed import Bucketish
from test_storage_memory_gc import to_memory

from regfs.errors import RootError, UsageError
from regfs.storage.listed import ListedStorage
from regfs.storage.local import LocalStorage
from regfs.storage.locate import is_s3_url, open_store, parse_s3_url, state_of


def test_s3_urls() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/") == ("bucket", "")
    assert parse_s3_url("s3://my.bucket-1/prod/registry/") == ("my.bucket-1", "prod/registry")
    # The v2 prefix itself names the rootdirectory above it, as a v2 folder does on disk.
    assert parse_s3_url("s3://b-1/prod/docker/registry/v2") == ("b-1", "prod")
    assert parse_s3_url("s3://b-1/docker/registry/v2/") == ("b-1", "")
    for bad in ("s3://", "s3:///x", "s3://UPPER/x", "s3://a/x", "s3://b_b!/x", "s3://bb/a//b"):
        with pytest.raises(RootError):
            parse_s3_url(bad)
    assert is_s3_url("s3://b/x") and not is_s3_url("/srv/s3://") and not is_s3_url(None)


@given(
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True),
    parts=st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True), max_size=4),
)
def test_an_s3_url_round_trips(bucket: str, parts: list[str]) -> None:
    prefix = "/".join(parts)
    got = parse_s3_url(f"s3://{bucket}/{prefix}")
    assert got[0] == bucket
    assert got[1] == prefix or prefix.endswith("docker/registry/v2")


def test_a_folder(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"], layers=[b.layer("x")])
    store = open_store(str(b.root), environ={})
    assert isinstance(store.storage, LocalStorage)
    assert store.storage.location == str(b.v2) and store.state is store.storage.state
    with pytest.raises(UsageError, match="--endpoint-url"):
        open_store(str(b.root), endpoint_url="http://127.0.0.1:1", environ={})
    with pytest.raises(UsageError, match="ROOT or --config"):
        open_store(str(b.root), config="x.yml", environ={})
    # $REGFS_ROOT as the default, a folder or a bucket.
    assert open_store(None, environ={"REGFS_ROOT": str(b.root)}).storage.location == str(b.v2)
    with pytest.raises(RootError, match="s3://BUCKET/PREFIX"):
        open_store(None, environ={"REGFS_ROOT": "s3://"})


def test_a_filesystem_config(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"], layers=[b.layer("x")])
    cfg = tmp_path / "config.yml"
    cfg.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /nowhere\n")
    with pytest.raises(RootError, match="/nowhere"):
        open_store(None, config=str(cfg), environ={})
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(b.root)}
    assert open_store(None, config=str(cfg), environ=env).storage.location == str(b.v2)
    with pytest.raises(UsageError, match="filesystem"):
        open_store(None, config=str(cfg), environ=env, endpoint_url="http://127.0.0.1:1")


def test_a_relative_filesystem_rootdirectory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry resolves a relative ``rootdirectory`` from its own working directory
    (measured: ``docker-registry serve`` with ``rootdirectory: relstore`` writes below its
    cwd), which the file does not say: regfs refuses it rather than read a folder relative
    to its own, even when that folder is a registry's. An empty one is ``/``, as the driver
    joins it."""
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"], layers=[b.layer("x")])
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "config.yml"
    for rel in ("t", "./t", "t/../t"):
        cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {rel}\n")
        with pytest.raises(RootError, match="is relative") as err:
            open_store(None, config=str(cfg), environ={})
        assert err.value.path == str(cfg)
        env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(b.root)}
        assert open_store(None, config=str(cfg), environ=env).storage.location == str(b.v2)
    cfg.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp\n")
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "t"}
    with pytest.raises(RootError, match="is relative"):
        open_store(None, config=str(cfg), environ=env)
    # An empty override is YAML null, which the driver formats as "<nil>": relative.
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": ""}
    with pytest.raises(RootError, match="'<nil>' is relative"):
        open_store(None, config=str(cfg), environ=env)
    cfg.write_text('version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ""\n')
    with pytest.raises(RootError) as err:  # "/" holds no registry here
        open_store(None, config=str(cfg), environ={})
    assert "relative" not in str(err.value) and err.value.path == "/"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("storage: [a\n", "not valid YAML"),
        ("storage:\n  azure: {accountname: a}\n", "'azure' is not supported"),
        ("storage:\n  s3: {bucket: b}\n", "no region"),
        ("storage:\n  s3: {region: r, bucket: b, secure: maybe}\n", "not a boolean"),
        ("version: 0.1\n", "no storage driver"),
    ],
)
def test_a_config_regfs_cannot_use_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(text)
    with pytest.raises(RootError, match=message) as err:
        open_store(None, config=str(cfg), environ={})
    assert err.value.path == str(cfg)
    with pytest.raises(RootError, match="cannot read"):
        open_store(None, config=str(tmp_path / "missing.yml"), environ={})


def test_state_of_each_backend(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"], layers=[b.layer("x")])
    local = LocalStorage(b.v2)
    assert state_of(local) is local.state
    mem = Bucketish(to_memory(b.v2))
    assert state_of(mem) is mem.state
    assert state_of(ListedStorage(mem)) is mem.state
