"""regfs.gc.trashrun: restore and purge as runs under the lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builder import StoreBuilder
from gc_helpers import fingerprint

from regfs.errors import RefusedError, UsageError
from regfs.gc import trash
from regfs.gc.lock import Lock
from regfs.gc.plan import GcOptions
from regfs.gc.run import collect
from regfs.gc.trashrun import purge_runs, restore_run
from regfs.storage.local import LocalStorage


def _trashed(tmp_path: Path) -> tuple[StoreBuilder, LocalStorage, str, dict[str, object]]:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"])
    b.orphan_blob(b"orphan")
    before = fingerprint(b.root)
    storage = b.storage()
    out = collect(
        storage,
        GcOptions(min_age=0, trash=True),
        dry_run=False,
        skip_live_check=True,
        confirm=lambda plan: True,
    )
    assert out.plan.actions
    return b, storage, out.plan.run_id, before


def test_restore_run_puts_the_run_back(tmp_path: Path) -> None:
    b, storage, run_id, before = _trashed(tmp_path)
    res = restore_run(storage.state, storage, run_id)
    assert res.refused == [] and res.missing == []
    assert fingerprint(b.root) == before


@pytest.mark.parametrize("run_id", ["../..", "/etc", "nope", ""])
def test_restore_of_what_is_no_run_id_names_the_runs_folder(tmp_path: Path, run_id: str) -> None:
    b, storage, _, _ = _trashed(tmp_path)
    after = fingerprint(b.root)
    with pytest.raises(UsageError, match=r"no run .* in .*runs"):
        restore_run(storage.state, storage, run_id)
    assert fingerprint(b.root) == after


def test_restore_and_purge_wait_for_no_one_holding_the_lock(tmp_path: Path) -> None:
    b, storage, run_id, _ = _trashed(tmp_path)
    after = fingerprint(b.root)
    with Lock(storage.state, "another regfs"):
        with pytest.raises(RefusedError, match="another regfs"):
            restore_run(storage.state, storage, run_id)
        with pytest.raises(RefusedError, match="another regfs"):
            purge_runs(storage.state, 0)
    assert fingerprint(b.root) == after
    assert [r.run_id for r in trash.list_trash(storage.state)] == [run_id]


def test_purge_dry_run_lists_and_deletes_nothing(tmp_path: Path) -> None:
    _, storage, run_id, _ = _trashed(tmp_path)
    res = purge_runs(storage.state, 0, dry_run=True)
    assert res.dry_run and [r.run_id for r in res.runs] == [run_id]
    assert [r.run_id for r in trash.list_trash(storage.state)] == [run_id]


def test_purge_not_confirmed_deletes_nothing(tmp_path: Path) -> None:
    _, storage, run_id, _ = _trashed(tmp_path)
    with pytest.raises(UsageError, match="not confirmed"):
        purge_runs(storage.state, 0, confirm=lambda runs: False)
    assert [r.run_id for r in trash.list_trash(storage.state)] == [run_id]


def test_purge_honours_the_age(tmp_path: Path) -> None:
    _, storage, run_id, _ = _trashed(tmp_path)
    assert purge_runs(storage.state, 3600).runs == []
    res = purge_runs(storage.state, 0, confirm=lambda runs: True)
    assert not res.dry_run and [r.run_id for r in res.runs] == [run_id]
    assert trash.list_trash(storage.state) == []
    assert not os.path.exists(storage.state.path(f"trash/{run_id}"))
