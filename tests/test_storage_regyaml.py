"""regfs.storage.regyaml: the registry's YAML 1.1 and its REGISTRY_* overrides (the rules are
measured against the real registry in tests/test_gc_live.py and tests/test_storage_config.py)."""

from __future__ import annotations

import pytest

from regfs.gc import regconfig
from regfs.storage.regyaml import (
    DEFAULT_ROOTDIRECTORY,
    ConfigError,
    driver_of,
    filesystem_root,
    go_sprint,
    load_yaml,
    resolved,
    source_of,
)


def test_filesystem_root_and_where_it_came_from() -> None:
    text = "storage:\n  filesystem:\n    rootdirectory: /srv/a\n"
    storage, sources, _ignored, _proxy = resolved(text, {})
    assert filesystem_root(storage, sources) == ("/srv/a", "config")
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv/b"}
    storage, sources, _ignored, _proxy = resolved(text, env)
    assert filesystem_root(storage, sources) == (
        "/srv/b",
        "environment REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
    )
    storage, sources, _ignored, _proxy = resolved("storage: {filesystem: {}}\n", {})
    assert filesystem_root(storage, sources) == (DEFAULT_ROOTDIRECTORY, "default")


def test_one_driver_exactly() -> None:
    assert driver_of({"s3": {}, "delete": {}, "maintenance": {}}) == "s3"
    with pytest.raises(ConfigError, match="more than one"):
        driver_of({"s3": {}, "filesystem": {}})
    with pytest.raises(ConfigError, match="no storage driver"):
        driver_of({"cache": {}})


def test_yaml_as_go_reads_it() -> None:
    assert load_yaml("a: y\nb: 2020-01-02\n") == {"a": True, "b": "2020-01-02"}
    assert go_sprint(None) == "<nil>" and go_sprint(True) == "true" and go_sprint(5) == "5"
    assert source_of({"s3.bucket": "REGISTRY_STORAGE_S3_BUCKET"}, ("storage", "s3.bucket")) == (
        "environment REGISTRY_STORAGE_S3_BUCKET"
    )
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml("a: [b\n")


def test_the_guard_reads_the_same_file_the_same_way() -> None:
    text = (
        "storage:\n  filesystem: {rootdirectory: /srv/a}\n"
        "  maintenance:\n    readonly: {enabled: yes}\n"
    )
    settings = regconfig.resolve(text, {})
    assert (settings.driver, settings.rootdirectory, settings.readonly) == (
        "filesystem",
        "/srv/a",
        True,
    )
