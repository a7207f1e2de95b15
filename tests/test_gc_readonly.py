"""gc while the real registry (2.8.2) runs on 127.0.0.1: read-only it proceeds and every image
keeps pulling; writable it is refused however the registry names ROOT; the --registry-url probe
leaves no trace. Every regfs here runs as its own process (``python -m regfs``), so the guard
sees the registry exactly as it would in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from gc_helpers import fingerprint

from regfs.gc.probe import probe

pytestmark = pytest.mark.registry

REPO_ROOT = Path(__file__).resolve().parent.parent


def regfs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "regfs", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def config_text(rootdirectory: str, port: int, *, readonly: bool) -> str:
    """A registry config in YAML (not JSON), naming ``rootdirectory`` verbatim."""
    return (
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f'http:\n  addr: "127.0.0.1:{port}"\n  secret: regfs-test-secret\n'
        "catalog:\n  maxentries: 10000\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {rootdirectory}\n"
        "  delete:\n    enabled: true\n"
        "  maintenance:\n"
        "    uploadpurging:\n      enabled: false\n"
        f"    readonly:\n      enabled: {'true' if readonly else 'false'}\n"
    )


class Served:
    """A running ``docker-registry serve CONFIG`` with the config, environment and working
    directory a test chooses."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, config: Path) -> None:
        self.proc = proc
        self.url = url
        self.config = config
        self.client = rr.Registry.__new__(rr.Registry)  # only for pull()/catalog()
        self.client.url = url


@contextlib.contextmanager
def serve(
    tmp: Path,
    rootdirectory: str,
    *,
    readonly: bool,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Served]:
    bins = rr.require_binaries()
    port = rr.free_port()
    cfg = tmp / f"config-{port}.yml"
    cfg.write_text(config_text(rootdirectory, port, readonly=readonly), encoding="utf-8")
    full_env = rr._clean_env()
    full_env.update(env or {})
    log = open(tmp / f"registry-{port}.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [bins[0], "serve", str(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=cwd or tmp,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"registry exited: {log.read().decode(errors='replace')}")
            try:
                if rr.http_request("GET", url + "/v2/", timeout=2).status == 200:
                    break
            except (OSError, rr.RegistryHTTPError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("registry did not start")
            time.sleep(0.05)
        yield Served(proc, url, cfg)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def relative(doc: dict[str, Any], root: Path) -> dict[str, list[str]]:
    """What a gc document deleted, as paths relative to ROOT."""

    def rel(p: str) -> str:
        return os.path.relpath(p, root / "docker/registry/v2")

    return {
        "blobs": sorted(rel(b["path"]) for b in doc["blobs"]),
        "manifests": sorted(rel(m["path"]) for m in doc["manifests"]),
        "tag_index_entries": sorted(rel(m["path"]) for m in doc["tag_index_entries"]),
        "layer_links": sorted(rel(m["path"]) for m in doc["layer_links"]),
        "uploads": sorted(rel(m["path"]) for m in doc["uploads"]),
        "folders": sorted(rel(p) for p in doc["folders"]),
    }


class Puller(threading.Thread):
    """Pulls every tag of the registry, digests verified, again and again until stopped."""

    def __init__(self, client: rr.Registry) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()
        self.rounds = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.client.pull_all()
                self.rounds += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.parametrize(("untagged", "with_url"), [(False, False), (True, True), (False, True)])
def test_gc_under_a_read_only_registry_reclaims_what_a_stopped_one_would(
    tmp_path: Path, untagged: bool, with_url: bool
) -> None:
    live = rr.extract_fixture("demo", tmp_path / "live")
    stopped = rr.copy_tree(live, tmp_path / "stopped")
    mode = ["--delete-untagged"] if untagged else []
    with serve(tmp_path, str(live), readonly=True) as reg:
        tags_before = {r: reg.client.tags(r) for r in reg.client.catalog()}
        pulled_before = reg.client.pull_all()
        puller = Puller(reg.client)
        puller.start()
        while puller.rounds == 0 and puller.error is None:  # pulling while gc runs
            time.sleep(0.01)
        url = ["--registry-url", reg.url] if with_url else []
        res = regfs("gc", str(live), "--yes", "--min-age", "0", "--json", *mode, *url)
        puller.stop.set()
        puller.join(60)
        assert puller.error is None, puller.error
        assert res.returncode == 0, res.stderr + res.stdout
        doc = json.loads(res.stdout)
        assert doc["status"] == "done" and doc["refused"] == []
        kinds = {g["kind"]: g for g in doc["guard"]}
        assert kinds["registry_readonly"]["pid"] == reg.proc.pid
        assert "serves ROOT read-only" in kinds["registry_readonly"]["message"]
        assert str(reg.config) in kinds["registry_readonly"]["message"]
        if with_url:
            assert kinds["probe"]["message"] == f"--registry-url {reg.url}: read-only (405)"
        # After: the same running registry still serves every tag, whole.
        assert {r: reg.client.tags(r) for r in reg.client.catalog()} == tags_before
        assert reg.client.pull_all() == pulled_before
    ref = regfs("gc", str(stopped), "--yes", "--min-age", "0", "--json", *mode)
    assert ref.returncode == 0, ref.stderr
    ref_doc = json.loads(ref.stdout)
    assert relative(doc, live) == relative(ref_doc, stopped)
    assert doc["reclaimed_bytes"] == ref_doc["reclaimed_bytes"] > 0
    assert fingerprint(live) == fingerprint(stopped)


def _refused_both_ways(root: Path, *extra: str, cwd: Path | None = None) -> list[dict[str, Any]]:
    """Dry run and real run both exit 3 with the same reasons; nothing changes. The reasons."""
    before = fingerprint(root)
    dry = regfs("gc", str(root), "--dry-run", "--min-age", "0", "--json", *extra, cwd=cwd)
    real = regfs("gc", str(root), "--yes", "--min-age", "0", "--json", *extra, cwd=cwd)
    assert dry.returncode == 3, dry.stderr + dry.stdout
    assert real.returncode == 3, real.stderr + real.stdout
    d, r = json.loads(dry.stdout), json.loads(real.stdout)
    assert d["status"] == r["status"] == "refused"
    assert d["refused"] == r["refused"] != []
    assert "regfs: refused:" in real.stderr
    assert fingerprint(root) == before
    text = regfs("gc", str(root), "--dry-run", "--min-age", "0", *extra, cwd=cwd)
    assert text.returncode == 3
    assert "A real run would refuse (exit 3) because of:" in text.stdout
    assert all(len(line) <= 80 for line in text.stdout.splitlines() if "refuse" in line)
    return list(d["refused"])


WAYS = ["config", "environment", "relative", "symlink-given", "symlink-config"]


@pytest.mark.parametrize("way", WAYS)
def test_a_writable_registry_serving_root_is_refused_however_it_names_it(
    tmp_path: Path, way: str
) -> None:
    root = rr.extract_fixture("demo", tmp_path / "store")
    other = tmp_path / "other"
    other.mkdir()
    link = tmp_path / "link"
    link.symlink_to(root)
    given = root
    env: dict[str, str] = {}
    cwd: Path | None = None
    named = str(root)
    if way == "environment":
        named = str(other)
        env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root)}
    elif way == "relative":
        named, cwd = "store", tmp_path
    elif way == "symlink-given":
        given = link
    elif way == "symlink-config":
        named = str(link)
    with serve(tmp_path, named, readonly=False, env=env, cwd=cwd) as reg:
        reasons = _refused_both_ways(given)
        mine = [r for r in reasons if r.get("pid") == reg.proc.pid]
        assert [r["kind"] for r in mine] == ["registry_writable"], reasons
        msg = mine[0]["message"]
        assert f"pid {reg.proc.pid} (docker-registry) serves ROOT writable" in msg
        if way == "environment":
            assert "environment REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY" in msg
        else:
            assert f"config {reg.config}" in msg
        assert "storage.maintenance.readonly.enabled: true" in msg  # the fix
        # rm refuses too, dry or real.
        before = fingerprint(root)
        for flag in ("--dry-run", "--yes"):
            res = regfs("rm", str(given), "library/alpine:3.19", flag, "--json")
            assert res.returncode == 3, res.stdout + res.stderr
            assert any(r["kind"] == "registry_writable" for r in json.loads(res.stdout)["refused"])
        assert fingerprint(root) == before
        # The registry is still writable and still serves ROOT (nothing was wrong with it).
        assert reg.client.catalog()


def test_a_registry_serving_another_folder_is_noted_not_refused(tmp_path: Path) -> None:
    root = rr.extract_fixture("demo", tmp_path / "store")
    other = tmp_path / "other"
    other.mkdir()
    with serve(tmp_path, str(other), readonly=False) as reg:
        res = regfs("gc", str(root), "--dry-run", "--min-age", "0", "--json")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        mine = [g for g in doc["guard"] if g.get("pid") == reg.proc.pid]
        assert mine == [
            {
                "kind": "registry_other",
                "message": f"pid {reg.proc.pid} (docker-registry) serves {other}, not ROOT",
                "pid": reg.proc.pid,
                "path": str(reg.config),
                "url": None,
                "source": None,
            }
        ]
        notes = {g["kind"]: g["message"] for g in doc["guard"]}
        assert notes["no_registry"].startswith("no registry process on this host serves ROOT")


def test_a_config_edited_after_start_cannot_vouch(tmp_path: Path) -> None:
    root = rr.extract_fixture("demo", tmp_path / "store")
    with serve(tmp_path, str(root), readonly=False) as reg:
        # Someone "fixes" the config but does not restart the registry: it is still writable.
        time.sleep(0.1)
        text = reg.config.read_text().replace("enabled: false\n", "enabled: true\n")
        reg.config.write_text(text)
        reasons = _refused_both_ways(root)
        mine = [r for r in reasons if r.get("pid") == reg.proc.pid]
        assert [r["kind"] for r in mine] == ["registry_unverified"]
        assert "changed after the process started" in mine[0]["message"]
        assert "--registry-url" in mine[0]["message"]
        # --registry-url does not help: the registry really is writable.
        reasons = _refused_both_ways(root, "--registry-url", reg.url)
        kinds = sorted(r["kind"] for r in reasons)
        assert kinds == ["probe", "registry_unverified"], reasons
    with serve(tmp_path, str(root), readonly=True) as reg:
        time.sleep(0.1)
        reg.config.write_text(reg.config.read_text())  # touched after start
        assert [r["kind"] for r in _refused_both_ways(root)] == ["registry_unverified"]
        res = regfs("gc", str(root), "--yes", "--min-age", "0", "--json", "--registry-url", reg.url)
        assert res.returncode == 0, res.stdout + res.stderr
        notes = [g["message"] for g in json.loads(res.stdout)["guard"]]
        assert any("--registry-url proved read-only" in n for n in notes), notes


def test_the_probe_leaves_no_trace(tmp_path: Path) -> None:
    root = rr.extract_fixture("demo", tmp_path / "store")
    before = fingerprint(root)
    stamps = {p: os.lstat(p).st_mtime_ns for p in root.rglob("*")}
    with serve(tmp_path, str(root), readonly=False) as reg:
        for _ in range(3):
            got = probe(reg.url)
            assert not got.readonly and got.reachable and got.status == 400, got
            assert "writable" in got.message
        res = regfs(
            "gc", str(root), "--dry-run", "--min-age", "0", "--json", "--registry-url", reg.url
        )
        assert res.returncode == 3
        probed = [r for r in json.loads(res.stdout)["refused"] if r["kind"] == "probe"]
        assert probed == [
            {
                "kind": "probe",
                "message": f"--registry-url {reg.url}: writable (a PUT answered 400 "
                "MANIFEST_INVALID, not 405); put it in read-only mode or stop it",
                "pid": None,
                "path": None,
                "url": reg.url,
                "source": None,
            }
        ]
    assert fingerprint(root) == before  # contents, names, and no new (empty) folder
    assert {p: os.lstat(p).st_mtime_ns for p in root.rglob("*")} == stamps
    with serve(tmp_path, str(root), readonly=True) as reg:
        got = probe(reg.url)
        assert got.readonly and got.status == 405
    assert fingerprint(root) == before


def test_an_unreachable_registry_url_is_refused(tmp_path: Path) -> None:
    root = rr.extract_fixture("demo", tmp_path / "store")
    url = f"http://127.0.0.1:{rr.free_port()}"  # nothing listens there
    reasons = _refused_both_ways(root, "--registry-url", url)
    assert [r["kind"] for r in reasons] == ["probe_unreachable"]
    assert reasons[0]["message"].startswith(f"cannot reach {url} (")
    assert reasons[0]["message"].endswith("; if the registry is stopped, drop --registry-url")
