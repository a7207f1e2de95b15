"""Unfinished and cancelled uploads, written by the real registry: garbage once stale, evidence
of a registry at work while young, aged by the registry's clock rather than by mtimes.

The ``uploads`` fixture holds, next to ``up/app:1.0``: unfinished uploads (POST + PATCH), one
started with POST alone, uploads cancelled through the API (which keep ``hashstates/`` only),
and ``up/probe``, a folder holding nothing but one cancelled upload (what an old
``--registry-url`` probe of a writable 2.8.2 registry left); the stale ones were back-dated to
2020 (see tests/fixtures/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from typer.testing import CliRunner

from regfs.cli import app

pytestmark = pytest.mark.registry
STALE = "2020-01-02T03:04:05Z"
STALE_EPOCH = 1577934245


@pytest.fixture(autouse=True)
def _binaries() -> None:
    rr.require_binaries()


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, res.stdout, res.stderr


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(*args, "--json")
    return code, json.loads(out) if out.strip() else {"stderr": err}


def tree(root: Path) -> list[str]:
    """Every path of the store (regfs's own state left out)."""
    return sorted(p.relative_to(root / "docker").as_posix() for p in (root / "docker").rglob("*"))


def upload_dir(root: Path, up: dict[str, Any]) -> Path:
    return Path(root, "docker/registry/v2/repositories", up["repo"], "_uploads", up["uuid"])


@pytest.fixture
def meta() -> dict[str, Any]:
    return rr.load_fixture_meta("uploads")


def test_orphans_lists_stale_and_cancelled_uploads_check_is_healthy(
    tmp_path: Path, meta: dict[str, Any]
) -> None:
    root = rr.extract_fixture("uploads", tmp_path / "root")
    code, report = run_json("orphans", str(root))
    assert code == 0, report  # a cancelled upload is not a problem
    assert report["problems"] == []
    got = {u["uuid"]: u for u in report["stale_uploads"]}
    stale = {u["uuid"]: u for u in meta["uploads"] if u["stale"]}
    assert set(got) == set(stale)
    for uid, up in stale.items():
        row = got[uid]
        assert (row["repository"], row["size"]) == (up["repo"], up["size"])
        assert row["age_seconds"] >= 6 * 365 * 86400
        if up["kind"] == "cancelled":  # no startedat: aged by its files (UUIDv4 id)
            assert (row["age_from"], row["started_at"]) == ("mtime", None)
        else:
            assert (row["age_from"], row["started_at"]) == ("startedat", STALE)
    code, text, _ = run("orphans", str(root))
    assert code == 0
    assert f"Stale uploads: {len(stale)}" in text
    assert text.count("no startedat (cancelled); last written") == 2
    code, out, _ = run("check", str(root))
    assert code == 0, out
    # 0 is no limit: every unfinished upload, young ones included, is stale.
    code, report = run_json("orphans", str(root), "--uploads-older-than", "0")
    assert code == 0
    assert {u["uuid"] for u in report["stale_uploads"]} == {u["uuid"] for u in meta["uploads"]}


def test_gc_removes_stale_and_cancelled_uploads_and_the_registry_still_serves(
    tmp_path: Path, meta: dict[str, Any]
) -> None:
    root = rr.extract_fixture("uploads", tmp_path / "root")
    code, out = run_json("gc", str(root), "--yes", "--min-age", "0")
    assert code == 0, out
    assert out["status"] == "done"
    removed = {u["path"].rsplit("/", 1)[1] for u in out["uploads"]}
    assert removed == {u["uuid"] for u in meta["uploads"] if u["stale"]}
    for up in meta["uploads"]:
        assert upload_dir(root, up).exists() is not up["stale"], up
    # up/probe held nothing but its cancelled upload: the folder went with it (empty-folder
    # rule); up/app keeps _uploads/, which still holds young uploads.
    repos = root / "docker/registry/v2/repositories/up"
    assert not (repos / "probe").exists()
    assert "repositories/up/probe" in out["folders"]
    assert (repos / "app/_uploads").is_dir()
    assert out["blobs"] == [] and out["layer_links"] == []
    # The registry, restarted over the result, serves every image; the unfinished uploads
    # that stayed are still its own (cancelled ones are unknown to it, before and after).
    with rr.Registry(root) as reg:
        for repo, tags in meta["tags"].items():
            for tag in tags:
                reg.pull(repo, tag)
        assert reg.catalog() == meta["catalog"]
        fresh = [u for u in meta["uploads"] if not u["stale"] and u["kind"] == "unfinished"]
        for up in fresh:
            assert upload_dir(root, up).joinpath("data").stat().st_size == up["size"]
    # A second run has nothing left to do.
    code, again = run_json("gc", str(root), "--yes", "--min-age", "0")
    assert code == 0
    assert again["uploads"] == [] and again["folders"] == []


def test_young_uploads_keep_gc_from_running(tmp_path: Path, meta: dict[str, Any]) -> None:
    """Within --min-age, an upload (by its startedat; a cancelled one by its files) is a
    registry at work: the real run refuses and deletes nothing."""
    root = rr.extract_fixture("uploads", tmp_path / "root")
    before = tree(root)
    code, out, err = run("gc", str(root), "--yes")
    assert code == 3, out + err
    said = out + err
    for up in meta["uploads"]:
        assert (up["uuid"] in said) is not up["stale"], up
    assert tree(root) == before


def _only_uploads_started_in_2020(root: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    kept = []
    for up in meta["uploads"]:
        if up["startedat"] == STALE:
            kept.append(up)
        else:
            shutil.rmtree(upload_dir(root, up))
    return kept


def test_a_copied_tree_is_aged_by_startedat_not_by_its_fresh_mtimes(
    tmp_path: Path, meta: dict[str, Any]
) -> None:
    """`cp -r` (like a git checkout) gives every file a new mtime; the uploads' startedat still
    says 2020. They are no evidence of a live registry; written "recently", they are kept."""
    src = rr.extract_fixture("uploads", tmp_path / "src")
    old = _only_uploads_started_in_2020(src, meta)
    assert len(old) == 2
    root = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(src), str(root)], check=True)
    assert upload_dir(root, old[0]).joinpath("startedat").stat().st_mtime > STALE_EPOCH + 1e8
    code, out = run_json("gc", str(root), "--yes")  # default --min-age 1h: a real run
    assert code == 0, out
    assert out["status"] == "done"
    assert out["uploads"] == []
    kept = {k["path"].rsplit("/", 1)[1]: k["reason"] for k in out["kept"] if k["kind"] == "upload"}
    assert kept == {up["uuid"]: "written to within --min-age" for up in old}
    for up in old:
        assert upload_dir(root, up).is_dir()


def test_a_copied_cancelled_upload_is_young_by_its_mtimes(
    tmp_path: Path, meta: dict[str, Any]
) -> None:
    """The documented limit: a cancelled upload of a 2.x registry (UUIDv4 id, no startedat) has
    no age but its files'; fresh from a copy, it keeps gc back for --min-age."""
    src = rr.extract_fixture("uploads", tmp_path / "src")
    for up in meta["uploads"]:
        if not (up["kind"] == "cancelled" and up["stale"]):
            shutil.rmtree(upload_dir(src, up))
    root = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(src), str(root)], check=True)
    code, out, err = run("gc", str(root), "--yes")
    assert code == 3
    assert sum(up["uuid"] in out + err for up in meta["uploads"]) == 2
    # cp -a keeps the mtimes: the same uploads are stale and go.
    kept_times = tmp_path / "copy-a"
    subprocess.run(["cp", "-a", str(src), str(kept_times)], check=True)
    code, done = run_json("gc", str(kept_times), "--yes")
    assert code == 0, done
    assert len(done["uploads"]) == 2


def test_an_upload_started_long_ago_but_written_to_now_is_kept(tmp_path: Path) -> None:
    """The real registry appends to an upload whose startedat says 2020 (a slow push, resumed):
    its data is fresh, its startedat file is not. gc neither deletes it nor takes it for a
    live registry once the registry stopped."""
    root = tmp_path / "root"
    with rr.Registry(root) as reg:
        reg.push_blob("slow/app", b"an unrelated blob")
        r = reg.request("POST", "/v2/slow/app/blobs/uploads/", data=b"", expect=(202,))
        uid = r.header("docker-upload-uuid") or ""
        p = reg.request(
            "PATCH",
            reg._abs(r.header("location") or ""),
            data=b"x" * 4000,
            headers={"Content-Type": "application/octet-stream"},
            expect=(202,),
        )
        d = root / "docker/registry/v2/repositories/slow/app/_uploads" / uid
        (d / "startedat").write_text(STALE)  # as if it had started in 2020
        for f in [*d.rglob("*"), d]:
            os.utime(f, (STALE_EPOCH, STALE_EPOCH))
        reg.request(
            "PATCH",
            reg._abs(p.header("location") or ""),
            data=b"y" * 3000,
            headers={"Content-Type": "application/octet-stream"},
            expect=(202,),
        )
    assert (d / "startedat").read_text() == STALE  # the registry never rewrites it
    assert (d / "startedat").stat().st_mtime == STALE_EPOCH
    assert (d / "data").stat().st_size == 7000
    assert (d / "data").stat().st_mtime > STALE_EPOCH + 1e8
    code, report = run_json("orphans", str(root))
    assert [u["uuid"] for u in report["stale_uploads"]] == [uid]  # stale by its startedat
    code, out = run_json("gc", str(root), "--yes", "--min-age", "1h")
    assert code == 0, out
    assert out["uploads"] == []
    assert [(k["path"], k["reason"]) for k in out["kept"] if k["kind"] == "upload"] == [
        (f"repositories/slow/app/_uploads/{uid}", "written to within --min-age")
    ]
    assert (d / "data").stat().st_size == 7000


def test_uploads_older_than_zero_is_no_limit(tmp_path: Path, meta: dict[str, Any]) -> None:
    root = rr.extract_fixture("uploads", tmp_path / "root")
    every = {u["uuid"] for u in meta["uploads"]}
    code, plan = run_json(
        "gc", str(root), "--dry-run", "--min-age", "0", "--uploads-older-than", "0"
    )
    assert code == 0, plan
    assert {u["path"].rsplit("/", 1)[1] for u in plan["uploads"]} == every
