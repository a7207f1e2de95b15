"""The live-registry guard: young uploads, processes under ROOT, a registry serving ROOT, and
the --registry-url probe (read-only answers 405)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import realreg as rr
from builder import StoreBuilder
from gc_helpers import OLD, age_tree, fingerprint
from typer.testing import CliRunner

from regfs.cli import app
from regfs.errors import RefusedError
from regfs.gc.live import probe_registry, process_holders
from regfs.gc.plan import GcOptions
from regfs.gc.run import collect


def _tree(b: StoreBuilder) -> None:
    b.image("app", tags=["v1"])
    b.orphan_blob(b"orphan")
    age_tree(b.root)


def test_a_young_upload_refuses_and_deletes_nothing(builder: StoreBuilder) -> None:
    _tree(builder)
    builder.upload("app")  # started now: a push is in progress
    before = fingerprint(builder.root)
    with pytest.raises(RefusedError) as info:
        collect(str(builder.root), GcOptions(min_age=3600), dry_run=False)
    assert info.value.exit_code == 3
    assert any("unfinished upload" in r for r in info.value.reasons)
    assert fingerprint(builder.root) == before
    # --skip-live-check overrides it.
    out = collect(str(builder.root), GcOptions(min_age=3600), dry_run=False, skip_live_check=True)
    assert out.executed is not None and out.executed.results


def test_a_process_working_under_root_is_named(builder: StoreBuilder) -> None:
    _tree(builder)
    proc = subprocess.Popen(["sleep", "30"], cwd=builder.v2 / "blobs")
    try:
        time.sleep(0.2)
        holders = process_holders(str(builder.root))
        assert any(f"pid {proc.pid} (sleep)" in h and "working directory" in h for h in holders)
        with pytest.raises(RefusedError) as info:
            collect(str(builder.root), GcOptions(min_age=0), dry_run=False)
        assert any(f"pid {proc.pid}" in r for r in info.value.reasons)
    finally:
        proc.kill()
        proc.wait()
    assert process_holders(str(builder.root)) == []


def test_a_process_holding_a_file_open_is_named(builder: StoreBuilder) -> None:
    _tree(builder)
    target = next((builder.v2 / "blobs").rglob("data"))
    code = f"import time; f = open({str(target)!r}, 'rb'); print('ok', flush=True); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
        holders = process_holders(str(builder.root))
        assert any(f"pid {proc.pid}" in h and "open" in h for h in holders)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.registry
def test_registry_serving_root_and_probe(tmp_path: Path) -> None:
    rr.require_binaries()
    root = rr.extract_fixture("shared", tmp_path / "root")
    before = fingerprint(root)
    with rr.Registry(root) as reg:
        reasons = process_holders(str(root))
        assert any("registry serving" in r for r in reasons), reasons
        why = probe_registry(reg.url, ["base/os"])
        assert why is not None and "writable" in why
        res = CliRunner().invoke(app, ["gc", str(root), "--yes", "--min-age", "0"])
        assert res.exit_code == 3
        assert "registry" in res.stderr
    # Nothing was deleted. (The probe's upload, cancelled with DELETE, leaves its folder behind:
    # 2.8.2 answers 204 but keeps it; a later gc removes it once it is stale.)
    after = {k: v for k, v in fingerprint(root).items() if "/_uploads/" not in k}
    assert after == {k: v for k, v in before.items() if "/_uploads/" not in k}
    with rr.Registry(root, readonly=True) as reg:
        assert probe_registry(reg.url, ["base/os"]) is None
    # Stopped, and the probe target gone: gc proceeds.
    res = CliRunner().invoke(app, ["gc", str(root), "--yes", "--min-age", "0", "--json"])
    assert res.exit_code == 0, res.stderr


def test_a_real_run_without_a_terminal_needs_yes(builder: StoreBuilder) -> None:
    _tree(builder)
    before = fingerprint(builder.root)
    res = CliRunner().invoke(app, ["gc", str(builder.root), "--min-age", "0"])
    assert res.exit_code == 2
    assert "--yes" in res.stderr
    assert fingerprint(builder.root) == before
    assert time.time() > OLD
