"""regfs.storage.names: repository and tag names from folder listings alone."""

from __future__ import annotations

import shutil

from builder import StoreBuilder

from regfs.storage.local import LocalStorage
from regfs.storage.memory import MemoryStorage
from regfs.storage.names import repository_names, tag_names


def test_names_of_nested_repositories(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1", "v2"])
    builder.image("team/app", tags=["latest"])
    builder.image("team/app/sub", tags=["x"])
    storage = builder.storage()
    assert repository_names(storage) == ["app", "team/app", "team/app/sub"]
    assert tag_names(storage, "app") == ["v1", "v2"]
    assert tag_names(storage, "team/app") == ["latest"]


def test_a_folder_that_cannot_be_listed_gives_no_names(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    storage = builder.storage()
    assert tag_names(storage, "nothing") == []
    shutil.rmtree(builder.path("repositories"))
    assert repository_names(LocalStorage(storage.location)) == []


def test_an_empty_store() -> None:
    assert repository_names(MemoryStorage()) == []
