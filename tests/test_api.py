"""regfs.api: the Registry a script uses, and the argument rules the CLI takes from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from builder import StoreBuilder

from regfs.api import Registry
from regfs.errors import RootError, UsageError
from regfs.gc.outcome import RunStatus
from regfs.gc.plan import GcOptions
from regfs.gc.steps import Step
from regfs.reports.orphans import orphans


@pytest.fixture
def store(builder: StoreBuilder) -> StoreBuilder:
    """app:v1 and an orphaned blob."""
    builder.image("app", tags=["v1"])
    builder.orphan_blob(b"orphan")
    return builder


def test_snapshot_is_taken_once_and_again_when_asked(store: StoreBuilder) -> None:
    reg = Registry.open(store.root)
    first = reg.snapshot()
    assert reg.snapshot() is first
    assert reg.orphans().orphaned_blobs == orphans(first).orphaned_blobs
    assert reg.snapshot(rescan=True) is not first


def test_reports_come_from_one_scan(store: StoreBuilder) -> None:
    reg = Registry.open(store.root)
    assert len(reg.orphans().orphaned_blobs) == 1
    snap = reg.snapshot()
    assert reg.check().healthy
    assert [r.name for r in reg.du().repositories] == ["app"]
    assert reg.tree()["children"][0]["name"] == "app"
    assert reg.snapshot() is snap
    assert reg.repository_names() == ["app"]
    assert reg.tag_names("app") == ["v1"]


def test_at_resolves_root_on_first_use(tmp_path: Path) -> None:
    reg = Registry.at(str(tmp_path) + "/nothing")  # no error yet
    with pytest.raises(RootError, match="no such folder"):
        reg.orphans()


def test_du_checks_its_options_before_root(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--by"):
        Registry.at(str(tmp_path) + "/nothing").du(by="size")


def test_plan_gc_then_execute_runs_that_plan(store: StoreBuilder) -> None:
    reg = Registry.open(store.root)
    planned = reg.plan_gc(GcOptions(min_age=0), skip_live_check=True)
    assert planned.dry_run and planned.status is RunStatus.PLANNED
    assert [a.step for a in planned.plan.by_step(Step.BLOB)] == ["blob"]
    done = reg.execute(planned, skip_live_check=True, confirm=lambda plan: True)
    assert done.plan is planned.plan  # the plan the dry run showed, not a new one
    assert done.status is RunStatus.DONE and not done.dry_run
    assert done.executed is not None and done.executed.reclaimed_bytes == 6
    after = reg.snapshot(rescan=True)
    assert orphans(after).orphaned_blobs == []
    assert reg.check().healthy  # the image that stays is whole
    with pytest.raises(UsageError, match="only a dry run"):
        reg.execute(done, skip_live_check=True)


def test_execute_not_confirmed_deletes_nothing(store: StoreBuilder) -> None:
    reg = Registry.open(store.root)
    planned = reg.plan_gc(GcOptions(min_age=0), skip_live_check=True)
    with pytest.raises(UsageError, match="not confirmed"):
        reg.execute(planned, skip_live_check=True, confirm=lambda plan: False)
    assert len(reg.orphans().orphaned_blobs) == 1


def test_plan_rm_then_execute_the_removal(store: StoreBuilder) -> None:
    reg = Registry.open(store.root)
    planned = reg.plan_rm(["app:v1"], skip_live_check=True)
    assert planned.status is RunStatus.PLANNED
    done = reg.execute(planned.removal, skip_live_check=True)
    assert done.status is RunStatus.DONE
    assert reg.tag_names("app") == []


def test_gc_on_a_store_that_is_neither_folder_nor_bucket_is_refused() -> None:
    from regfs.storage.memory import MemoryStorage

    reg = Registry(MemoryStorage())
    with pytest.raises(UsageError, match="run on a folder or a bucket"):
        reg.gc(GcOptions(), dry_run=True, skip_live_check=True)
