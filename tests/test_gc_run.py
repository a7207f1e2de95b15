"""regfs.gc.run: the frame every deleting run (gc, rm, retain) plans and decides in
(locked_scan: the store, its lock, the scan under it, the tail), and what each run keeps of
its own around it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder
from gc_helpers import age_tree, fingerprint

from regfs.errors import RootError, UsageError
from regfs.gc.execute import Ops
from regfs.gc.lock import Lock, read_holder
from regfs.gc.outcome import GcOutcome, GcRefused
from regfs.gc.plan import GcOptions, state_dir
from regfs.gc.removal import RmOutcome, execute_removal, remove
from regfs.gc.run import collect, execute_planned, locked_scan
from regfs.parallel.tuning import SERIAL
from regfs.retain.policy import make_rule
from regfs.retain.run import RetainRefused, retain
from regfs.storage.base import Storage

NOW = 2_000_000_000.0


def _store(tmp_path: Path) -> StoreBuilder:
    b = StoreBuilder(tmp_path / "t")
    base = b.layer("base")
    b.image("app", tags=["v1"], layers=[base, b.layer("one")])
    b.image("app", tags=["v2"], layers=[base, b.layer("two")])
    b.orphan_blob(b"an orphan")
    age_tree(b.root)
    # v1 pushed before v2: keep-last 1 lets v1 go
    for tag, days in (("v1", 2), ("v2", 1)):
        t = time.time() - days * 86400
        os.utime(b.path(f"repositories/app/_manifests/tags/{tag}/current/link"), (t, t))
    return b


def _lock_file(b: StoreBuilder) -> Path:
    return Path(state_dir(str(b.v2))) / "lock"


def test_a_real_run_holds_the_lock_over_its_scan_and_releases_it(tmp_path: Path) -> None:
    b = _store(tmp_path)
    with locked_scan(
        str(b.root),
        {"command": "regfs test", "skip_live_check": True},
        command="regfs gc",
        dry_run=False,
        tag_links=True,
        now=NOW,
        tuning=SERIAL,
    ) as frame:
        holder = read_holder(state_dir(str(b.v2)))
        assert holder is not None and holder.pid == os.getpid()
        assert holder.command == frame.tail.run.command == "regfs test"
        assert frame.tail.lock is None and frame.tail.skip_live_check
        assert frame.now == NOW and frame.seen is frame.storage
        assert set(frame.snap.repositories["app"].tags) == {"v1", "v2"}
    assert not _lock_file(b).exists()
    # Left by an exception, the frame releases the lock too.
    with (
        pytest.raises(KeyError),
        locked_scan(
            str(b.root),
            {},
            command="regfs gc",
            dry_run=False,
            tag_links=True,
            now=None,
            tuning=SERIAL,
        ),
    ):
        assert _lock_file(b).exists()
        raise KeyError("boom")
    assert not _lock_file(b).exists()


def test_a_dry_run_writes_nothing_not_even_the_lock(tmp_path: Path) -> None:
    b = _store(tmp_path)
    before = fingerprint(b.root)
    kw: dict[str, Any] = {"command": "regfs gc", "tag_links": False, "tuning": SERIAL}
    t0 = time.time()
    with locked_scan(str(b.root), {}, dry_run=True, now=None, **kw) as frame:
        assert not (b.root / ".regfs").exists()
        assert frame.tail.lock is None and not frame.tail.skip_live_check
        assert frame.tail.run.command == "regfs gc" and frame.tail.registry_url is None
        assert t0 <= frame.now <= time.time()
    assert fingerprint(b.root) == before and not (b.root / ".regfs").exists()
    # Another's lock: the dry run says so, and leaves it as it is.
    with Lock(state_dir(str(b.v2)), "regfs gc (elsewhere)"):
        with locked_scan(str(b.root), {}, dry_run=True, now=NOW, **kw) as frame:
            assert frame.tail.lock is not None and frame.tail.lock.kind == "lock"
            assert frame.tail.lock.pid == os.getpid()
        holder = read_holder(state_dir(str(b.v2)))
        assert holder is not None and holder.command == "regfs gc (elsewhere)"


def test_a_malformed_registry_url_is_reported_before_root_is_opened(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    bad = "ftp://127.0.0.1"
    with pytest.raises(UsageError, match="--registry-url"):
        collect(missing, GcOptions(), dry_run=True, registry_url=bad)
    with pytest.raises(UsageError, match="--registry-url"):
        remove(missing, ["app:v1"], dry_run=True, registry_url=bad)
    with pytest.raises(UsageError, match="--registry-url"):
        retain(missing, [make_rule(keep_last=1)], dry_run=True, registry_url=bad)
    with pytest.raises(RootError):
        collect(missing, GcOptions(), dry_run=True, registry_url="http://127.0.0.1:1")


def test_an_unknown_option_is_refused_as_python_refuses_a_keyword(tmp_path: Path) -> None:
    """``**kw`` would take a misspelt option silently (``skip_live_chek``: the guard runs,
    ``confrm``: no question asked); each entry point refuses it before reading anything."""
    missing = str(tmp_path / "missing")
    bad: dict[str, Any] = {"confrm": lambda plan: False}
    calls: list[tuple[str, Callable[[], object]]] = [
        ("collect", lambda: collect(missing, GcOptions(), dry_run=False, **bad)),
        ("remove", lambda: remove(missing, ["app:v1"], dry_run=False, **bad)),
        ("retain", lambda: retain(missing, [make_rule(keep_last=1)], dry_run=False, **bad)),
    ]
    for name, call in calls:
        with pytest.raises(TypeError, match=rf"^{name}\(\) .* keyword argument 'confrm'$"):
            call()
    b = _store(tmp_path)
    planned = collect(str(b.root), GcOptions(min_age=0), dry_run=True, skip_live_check=True)
    with pytest.raises(TypeError, match="execute_planned"):
        execute_planned(planned, b.storage(), **bad)
    rm_planned = remove(str(b.root), ["app:v1"], dry_run=True, skip_live_check=True)
    with pytest.raises(TypeError, match="execute_removal"):
        execute_removal(rm_planned, b.storage(), root=str(b.root), **bad)
    assert rm_planned.run is not None and rm_planned.run.executed is None


class LockReader(Ops):
    """Notes who holds the lock at each deletion of a real run."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.commands: set[str] = set()

    def unlink(self, storage: Storage, path: str) -> None:
        holder = read_holder(self.state)
        assert holder is not None and holder.pid == os.getpid()
        self.commands.add(holder.command)
        super().unlink(storage, path)


@pytest.mark.parametrize("command", ["regfs gc", "regfs rm", "regfs retain"])
def test_each_run_deletes_under_the_lock_recording_its_own_command(
    tmp_path: Path, command: str
) -> None:
    b = _store(tmp_path)
    ops = LockReader(state_dir(str(b.v2)))
    kw: dict[str, Any] = {"skip_live_check": True, "ops": ops, "now": NOW}
    out: GcOutcome | None
    if command == "regfs gc":
        out = collect(str(b.root), GcOptions(min_age=0), dry_run=False, **kw)
    elif command == "regfs rm":
        out = remove(str(b.root), ["app:v1"], dry_run=False, **kw).run
    else:
        out = retain(str(b.root), [make_rule(keep_last=1)], dry_run=False, min_age=0, **kw).run
    assert out is not None and out.executed is not None and out.executed.results
    assert ops.commands == {command} and not _lock_file(b).exists()


def test_each_real_run_refused_by_a_held_lock_raises_its_own_refusal(tmp_path: Path) -> None:
    b = _store(tmp_path)
    before = fingerprint(b.root)
    kw: dict[str, Any] = {"dry_run": False, "skip_live_check": True, "now": NOW}
    with Lock(state_dir(str(b.v2)), "regfs gc (elsewhere)"):
        with pytest.raises(GcRefused) as gc_info:
            collect(str(b.root), GcOptions(min_age=0), **kw)
        assert isinstance(gc_info.value.outcome, GcOutcome)
        with pytest.raises(GcRefused) as rm_info:
            remove(str(b.root), ["app:v1"], **kw)
        assert isinstance(rm_info.value.outcome, RmOutcome)
        with pytest.raises(RetainRefused) as retain_info:
            retain(str(b.root), [make_rule(keep_last=1)], min_age=0, **kw)
        assert retain_info.value.result.selection.removed_tags() == [("app", "v1")]
        for info in (gc_info, rm_info, retain_info):
            assert [r.kind for r in info.value.details] == ["lock"]
    assert fingerprint(b.root) == before


def test_a_gc_preview_neither_takes_the_lock_nor_decides(tmp_path: Path) -> None:
    """``check_safety=False`` (rm's preview of what gc would reclaim): a plan only, even
    with ``dry_run=False``: nothing written under ROOT, not even the lock, and another's
    lock neither refuses it nor is touched."""
    b = _store(tmp_path)
    before = fingerprint(b.root)
    seen_lock: list[bool] = []

    def progress(phase: str, done: int, total: int) -> None:
        seen_lock.append((b.root / ".regfs").exists())

    out = collect(
        str(b.root),
        GcOptions(min_age=0),
        dry_run=False,
        check_safety=False,
        progress=progress,
        now=NOW,
    )
    assert seen_lock and not any(seen_lock) and not (b.root / ".regfs").exists()
    assert out.plan.actions and not out.dry_run and out.executed is None
    assert out.would_refuse is None and out.guard == []
    with Lock(state_dir(str(b.v2)), "regfs gc (elsewhere)"):
        again = collect(
            str(b.root), GcOptions(min_age=0), dry_run=False, check_safety=False, now=NOW
        )
        holder = read_holder(state_dir(str(b.v2)))
        assert holder is not None and holder.command == "regfs gc (elsewhere)"
    assert again.would_refuse is None and again.executed is None
    assert [a.path for a in again.plan.actions] == [a.path for a in out.plan.actions]
    assert fingerprint(b.root) == before


def test_rm_looks_again_for_gc_after_the_lock_is_released(tmp_path: Path) -> None:
    """A real rm without --gc scans twice: its own scan under the lock, then (the lock
    released) the fresh look at what gc would now reclaim."""
    b = _store(tmp_path)
    lock = _lock_file(b)
    held: list[bool] = []

    def progress(phase: str, done: int, total: int) -> None:
        held.append(lock.exists())

    out = remove(
        str(b.root), ["app:v1"], dry_run=False, skip_live_check=True, progress=progress, now=NOW
    )
    assert out.run is not None and out.run.executed is not None
    assert out.gc is not None and out.gc.dry_run and out.gc.plan.actions
    first_free = held.index(False)
    assert first_free > 0 and not any(held[first_free:])
