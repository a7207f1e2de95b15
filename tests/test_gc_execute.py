"""Execution safety: crash at every step, kill -9, push during gc, re-checks, failures, lock,
interrupt, trash and restore."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import procs
import pytest
from builder import StoreBuilder
from gc_helpers import age_tree, assert_whole, fingerprint, rescan

from regfs.errors import RefusedError
from regfs.gc import trash
from regfs.gc.execute import Ops
from regfs.gc.lock import Lock
from regfs.gc.plan import GcOptions, state_dir
from regfs.gc.run import collect
from regfs.gc.steps import Step
from regfs.storage.base import Storage

REPO_ROOT = Path(__file__).resolve().parent.parent


class Crash(BaseException):
    """A simulated power cut: nothing after it runs, not even exception handlers."""


class FailingOps(Ops):
    """Counts primitive operations; raises ``exc`` at operation number ``at``."""

    def __init__(self, at: int, exc: BaseException) -> None:
        self.n = 0
        self.at = at
        self.exc = exc

    def _tick(self) -> None:
        self.n += 1
        if self.n == self.at:
            raise self.exc

    def unlink(self, storage: Storage, path: str) -> None:
        self._tick()
        super().unlink(storage, path)

    def rmdir(self, storage: Storage, path: str) -> None:
        self._tick()
        super().rmdir(storage, path)

    def move_to_trash(self, storage: Storage, path: str, run_id: str) -> None:
        self._tick()
        super().move_to_trash(storage, path, run_id)


def build_tree(b: StoreBuilder) -> dict[str, Any]:
    base = b.layer("base")
    old = b.image("app", tags=["v1"], layers=[base, b.layer("old")])
    new = b.image("app", tags=["v1"], layers=[base, b.layer("new")])
    a = b.image("multi", layers=[b.layer("amd")])
    r = b.image("multi", layers=[b.layer("arm")], platform="linux/arm64")
    b.index("multi", children=[a, r], tags=["latest"], platforms=["linux/amd64", "linux/arm64"])
    b.referrer("app", subject=new)
    b.referrer("app", subject=old)
    for i in range(3):
        b.orphan_blob(f"orphan {i}".encode(), repo="app")
    gone = b.image("gone/repo", tags=["t"], layers=[b.layer("gone")])
    b.delete_manifest("gone/repo", gone.digest)
    b.upload("app", started_at="2020-01-02T03:04:05Z")
    age_tree(b.root)
    return {"new": new, "old": old}


OPTS = GcOptions(min_age=0, delete_untagged=True)


def run(b: StoreBuilder, ops: Ops | None = None, options: GcOptions = OPTS, **kw: Any) -> Any:
    return collect(str(b.root), options, dry_run=False, skip_live_check=True, ops=ops, **kw)


def clean_result(tmp_path: Path) -> dict[str, object]:
    ref = StoreBuilder(tmp_path / "reference")
    build_tree(ref)
    run(ref)
    return fingerprint(ref.root)


def count_ops(b_factory: Any) -> int:
    b = b_factory()
    ops = FailingOps(at=10**9, exc=Crash())
    run(b, ops)
    return ops.n


def test_crash_at_every_step_then_rerun_converges(tmp_path: Path) -> None:
    expected = clean_result(tmp_path)
    counter = [0]

    def fresh() -> StoreBuilder:
        counter[0] += 1
        b = StoreBuilder(tmp_path / f"t{counter[0]}")
        build_tree(b)
        return b

    total = count_ops(fresh)
    assert total > 20
    for k in range(1, total + 1):
        b = fresh()
        with pytest.raises(Crash):
            run(b, FailingOps(at=k, exc=Crash()))
        # (In-process the lock is released while the crash unwinds; a lock left by a killed
        # process is covered by the SIGKILL test.)
        snap = rescan(b)
        assert_whole(snap)  # a crash never leaves a link to missing data
        run(b)
        assert fingerprint(b.root) == expected, f"did not converge after a crash at op {k}"
        assert_whole(rescan(b))


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "EACCES"),
        (OSError(errno.ENOSPC, "No space left on device"), "ENOSPC"),
    ],
)
def test_failure_during_deletion_stops_and_reports(tmp_path: Path, exc: OSError, name: str) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    out = run(
        b,
        FailingOps(at=5, exc=exc),
        options=GcOptions(min_age=0, delete_untagged=True, trash=name == "ENOSPC"),
    )
    assert out.executed.failed is not None
    assert exc.strerror in out.executed.failed.detail
    done = [r for r in out.executed.results if r.status == "done"]
    # Nothing after the failing step ran: the failing step is the last result.
    assert out.executed.results[-1].status == "failed"
    assert len(done) == len(out.executed.results) - 1
    assert_whole(rescan(b))
    journal = Path(state_dir(str(b.v2)), "runs", out.plan.run_id)
    assert (journal / "plan.json").is_file()
    assert "failed" in (journal / "done").read_text()


def test_failure_exit_code_is_4_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from regfs import api, cli

    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    real = collect

    def failing(*args: Any, **kw: Any) -> Any:  # the CLI's one run, failing at its 3rd step
        kw["ops"] = FailingOps(at=3, exc=PermissionError(errno.EACCES, "Permission denied"))
        return real(*args, **kw)

    monkeypatch.setattr(api, "collect", failing)
    res = CliRunner().invoke(
        cli.app, ["gc", str(b.root), "--yes", "--min-age", "0", "--skip-live-check", "--json"]
    )
    assert res.exit_code == 4
    assert json.loads(res.stdout)["status"] == "failed"


def test_push_during_gc_keeps_the_blob(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    orphan = b.orphan_blob(b"about to be pushed again")
    age_tree(b.root)

    def push_after_plan(plan: Any) -> bool:
        assert orphan.digest in {a.digest for a in plan.by_step(Step.BLOB)}
        b.link_layer("newcomer", orphan.digest)  # a push into another repository
        return True

    out = run(b, options=GcOptions(min_age=0), confirm=push_after_plan)
    skipped = {r.action.digest: r.detail for r in out.executed.results if r.status == "skipped"}
    assert skipped[orphan.digest] == "linked again since the scan"
    assert b.path(f"blobs/sha256/{orphan.digest[7:9]}/{orphan.digest[7:]}/data").is_file()


def test_changed_and_vanished_targets_are_skipped_or_warned(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"])
    changed = b.orphan_blob(b"changed")
    vanished = b.orphan_blob(b"vanished")
    age_tree(b.root)

    def meddle(plan: Any) -> bool:
        p = b.path(f"blobs/sha256/{changed.digest[7:9]}/{changed.digest[7:]}/data")
        os.utime(p, None)
        b.remove_blob(vanished.digest)
        return True

    out = run(b, options=GcOptions(min_age=0), confirm=meddle)
    status = {
        r.action.digest: (r.status, r.detail)
        for r in out.executed.results
        if r.action.step == "blob"
    }
    assert status[changed.digest] == ("skipped", "changed since the scan (mtime)")
    assert status[vanished.digest][0] == "gone"
    assert out.executed.failed is None


def test_unknown_file_in_a_blob_folder_is_never_deleted(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"])
    odd = b.orphan_blob(b"odd")
    stray = b.write(f"blobs/sha256/{odd.digest[7:9]}/{odd.digest[7:]}/notes", b"mine")
    age_tree(b.root)

    def add_later(plan: Any) -> bool:
        return True

    run(b, options=GcOptions(min_age=0), confirm=add_later)
    assert stray.read_bytes() == b"mine"


@pytest.mark.parametrize("what", ["prefix", "repository", "blob_folder"])
def test_a_symlink_swapped_in_after_the_scan_is_never_deleted_through(
    tmp_path: Path, what: str
) -> None:
    """The executor refuses any target with a symbolic link on its path below the root, even
    one that appeared after the plan was made (the planner leaves out those it saw)."""
    import shutil

    b = StoreBuilder(tmp_path / "t")
    b.image("app", tags=["v1"])
    odd = b.orphan_blob(b"odd", repo="app")
    age_tree(b.root)
    folder = {
        "prefix": f"blobs/sha256/{odd.digest[7:9]}",
        "blob_folder": f"blobs/sha256/{odd.digest[7:9]}/{odd.digest[7:]}",
        "repository": "repositories/app",
    }[what]
    outside = tmp_path / "outside"

    def swap(plan: Any) -> bool:
        assert any(a.path.startswith(folder) for a in plan.actions)
        shutil.move(b.path(folder), outside)
        os.symlink(outside, b.path(folder))
        return True

    out = run(b, options=GcOptions(min_age=0), confirm=swap)
    touched = [r for r in out.executed.results if r.action.path.startswith(folder)]
    assert touched and all(r.status == "skipped" for r in touched), touched
    assert all("symbolic link" in r.detail for r in touched)
    assert os.path.islink(b.path(folder))
    if what != "repository":
        assert (outside / ("data" if what == "blob_folder" else f"{odd.digest[7:]}/data")).exists()
    else:
        assert (outside / "_layers" / "sha256" / odd.digest[7:] / "link").exists()


def test_sigint_stops_at_an_item_boundary(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)

    class Interrupting(Ops):
        n = 0

        def unlink(self, storage: Storage, path: str) -> None:
            Interrupting.n += 1
            if Interrupting.n == 2:
                os.kill(os.getpid(), signal.SIGINT)
            super().unlink(storage, path)

    out = run(b, Interrupting())
    assert out.executed.interrupted
    assert 0 < len(out.executed.results) < len(out.plan.actions)
    assert_whole(rescan(b))
    run(b)
    assert fingerprint(b.root) == clean_result(tmp_path)


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    state = state_dir(str(b.v2))
    with Lock(state, "regfs gc (other)"), pytest.raises(RefusedError) as info:
        run(b)
    assert info.value.exit_code == 3
    assert f"pid {os.getpid()}" in str(info.value)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open(os.path.join(state, "lock"), "w") as f:
        json.dump({"host": os.uname().nodename, "pid": dead.pid, "started": 0, "command": "x"}, f)
    out = run(b)
    assert out.executed.failed is None and out.executed.results
    assert not os.path.exists(os.path.join(state, "lock"))


def test_trash_then_restore_is_byte_identical(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    before = fingerprint(b.root)
    out = run(b, options=GcOptions(min_age=0, delete_untagged=True, trash=True))
    assert fingerprint(b.root) != before
    state = state_dir(str(b.v2))
    runs = trash.list_trash(state)
    assert [r.run_id for r in runs] == [out.plan.run_id] and runs[0].bytes > 0
    res = trash.restore(state, str(b.v2), out.plan.run_id)
    assert res.refused == [] and res.missing == []
    assert fingerprint(b.root) == before
    assert trash.list_trash(state) == []


def test_restore_refuses_to_overwrite(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    out = run(b, options=GcOptions(min_age=0, trash=True))
    blob = next(a for a in out.plan.actions if a.step == "blob")
    target = b.v2 / blob.path / "data"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"pushed again meanwhile")
    res = trash.restore(state_dir(str(b.v2)), str(b.v2), out.plan.run_id)
    assert blob.path in res.refused
    assert target.read_bytes() == b"pushed again meanwhile"


def test_trash_purge_by_age(tmp_path: Path) -> None:
    b = StoreBuilder(tmp_path / "t")
    build_tree(b)
    out = run(b, options=GcOptions(min_age=0, trash=True))
    state = state_dir(str(b.v2))
    assert trash.purgeable(state, 3600) == []
    old = trash.purgeable(state, 3600, now=time.time() + 7200)
    assert [r.run_id for r in old] == [out.plan.run_id]
    assert trash.purgeable(state, 0) == old  # 0: no age limit
    gone = trash.purge(state, old)
    assert gone == old
    assert trash.list_trash(state) == []


def gen_tree(root: Path, repos: int, tags: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "gen_tree.py"),
            str(root),
            "--repos",
            str(repos),
            "--tags",
            str(tags),
            "--force",
        ],
        check=True,
        capture_output=True,
    )


def regfs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "regfs", *args], capture_output=True, text=True)


def test_sigkill_at_random_moments_then_rerun_converges(tmp_path: Path) -> None:
    base = tmp_path / "base"
    gen_tree(base, 60, 4)
    expected_root = tmp_path / "expected"
    subprocess.run(["cp", "-a", str(base), str(expected_root)], check=True)
    args = ["--yes", "--min-age", "0", "--skip-live-check", "--delete-untagged", "--json"]
    res = regfs("gc", str(expected_root), *args)
    assert res.returncode == 0, res.stderr
    expected = fingerprint(expected_root)
    rng = random.Random(7)
    for i in range(4):
        root = tmp_path / f"kill{i}"
        subprocess.run(["cp", "-a", str(base), str(root)], check=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "regfs", "gc", str(root), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.2, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Nothing of the killed run may survive it (its scan helpers died with it).
        assert procs.wait_group_gone(proc.pid) == []
        # The killed run's lock names a dead pid on this host: the next run takes it over.
        res = regfs("gc", str(root), *args)
        assert res.returncode == 0, res.stderr
        assert fingerprint(root) == expected
        snap_res = regfs("orphans", str(root), "--json")
        report = json.loads(snap_res.stdout)
        assert report["dangling"] == [] and report["orphaned_blobs"] == []
