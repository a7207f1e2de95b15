"""The live-registry guard and the one rule set of dry and real runs.

Real processes (readers, writers, a shell in ROOT) against a built store; registry processes in a
fake ``/proc`` tree (configs, environments, container roots, start times); the configuration
semantics of distribution 2.8.2 as properties. The real registry is in test_gc_readonly.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import realreg
import s3bed
from builder import StoreBuilder
from gc_helpers import age_tree, fingerprint
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from regfs.cli import app
from regfs.errors import RefusedError, UsageError
from regfs.gc import procs
from regfs.gc.live import BucketRoot, Verdict, guard
from regfs.gc.lock import Lock
from regfs.gc.outcome import GcRefused
from regfs.gc.plan import GcOptions, state_dir
from regfs.gc.probe import check_url
from regfs.gc.regconfig import ConfigError, resolve
from regfs.gc.run import collect

runner = CliRunner()


def _tree(b: StoreBuilder) -> None:
    b.image("app", tags=["v1"])
    b.orphan_blob(b"orphan")
    age_tree(b.root)


def gc_json(*args: str) -> tuple[int, dict[str, Any]]:
    res = runner.invoke(app, ["gc", *args, "--json"])
    return res.exit_code, json.loads(res.stdout)


def both_refuse(root: Path, *args: str) -> list[dict[str, Any]]:
    """gc --dry-run and the real gc exit 3 with the same reasons; nothing changes."""
    before = fingerprint(root)
    code_d, dry = gc_json(str(root), "--dry-run", *args)
    code_r, real = gc_json(str(root), "--yes", *args)
    assert (code_d, code_r) == (3, 3)
    assert dry["status"] == real["status"] == "refused"
    assert dry["refused"] == real["refused"] != []
    assert fingerprint(root) == before
    return list(dry["refused"])


# --- one rule set ---------------------------------------------------------------------------


def test_a_young_upload_refuses_dry_and_real(builder: StoreBuilder) -> None:
    _tree(builder)
    builder.upload("app")  # started now: a push is in progress
    reasons = both_refuse(builder.root, "--min-age", "1h")
    assert [r["kind"] for r in reasons] == ["young_upload"]
    assert reasons[0]["message"].startswith("unfinished upload started within --min-age: ")
    with pytest.raises(GcRefused) as info:
        collect(str(builder.root), GcOptions(min_age=3600), dry_run=False)
    assert info.value.exit_code == 3
    assert any("unfinished upload" in r for r in info.value.reasons)
    # --skip-live-check skips the guard (loudly), nothing else.
    res = runner.invoke(app, ["gc", str(builder.root), "--dry-run", "--skip-live-check"])
    assert res.exit_code == 0
    assert "warning: --skip-live-check" in res.stderr
    out = collect(str(builder.root), GcOptions(min_age=3600), dry_run=False, skip_live_check=True)
    assert out.executed is not None and out.executed.results


def test_a_held_lock_refuses_dry_and_real_even_with_skip_live_check(
    builder: StoreBuilder,
) -> None:
    _tree(builder)
    with Lock(state_dir(str(builder.v2)), "regfs gc (elsewhere)"):
        for extra in ((), ("--skip-live-check",)):
            reasons = both_refuse(builder.root, "--min-age", "0", *extra)
            assert [r["kind"] for r in reasons] == ["lock"]
            assert f"pid {os.getpid()}" in reasons[0]["message"]
            assert reasons[0]["path"].endswith("/.regfs/lock")
    # A lock whose process is dead is taken over by a real run: the dry run does not refuse.
    lock = Path(state_dir(str(builder.v2))) / "lock"
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(
        json.dumps(
            {"host": os.uname().nodename, "pid": dead.pid, "started": 0, "command": "regfs gc"}
        )
    )
    code, doc = gc_json(str(builder.root), "--dry-run", "--min-age", "0")
    assert code == 0 and doc["refused"] == []
    code, doc = gc_json(str(builder.root), "--yes", "--min-age", "0")
    assert code == 0 and doc["status"] == "done"


def test_blocking_problems_refuse_dry_and_real_the_same_way(builder: StoreBuilder) -> None:
    b = builder
    b.image("bad", tags=["v1"])
    b.push_manifest("bad", b"not json at all", tags=["v2"])
    age_tree(b.root)
    reasons = both_refuse(b.root, "--min-age", "0", "--skip-live-check")
    assert {r["kind"] for r in reasons} == {"scan_problem"}
    assert all("unparseable" in r["message"] for r in reasons)
    code, doc = gc_json(str(b.root), "--dry-run", "--min-age", "0", "--force")
    assert code == 0 and doc["refused"] == []


def test_rm_dry_run_refuses_when_the_real_run_would(builder: StoreBuilder) -> None:
    _tree(builder)
    before = fingerprint(builder.root)
    with Lock(state_dir(str(builder.v2)), "regfs gc (elsewhere)"):
        for flag in ("--dry-run", "--yes"):
            res = runner.invoke(app, ["rm", str(builder.root), "app:v1", flag, "--json"])
            assert res.exit_code == 3, res.stdout
            doc = json.loads(res.stdout)
            assert doc["status"] == "refused"
            assert [r["kind"] for r in doc["refused"]] == ["lock"]
    assert fingerprint(builder.root) == before


# --- other processes ------------------------------------------------------------------------


def _hold(path: Path, mode: str) -> subprocess.Popen[str]:
    code = (
        f"import time; f = open({str(path)!r}, {mode!r}); print('ok', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
    return proc


def test_readers_and_a_shell_in_root_are_noted_not_refused(builder: StoreBuilder) -> None:
    _tree(builder)
    data = next((builder.v2 / "blobs").rglob("data"))
    reader = _hold(data, "rb")
    shell = subprocess.Popen(["sh", "-c", "sleep 60"], cwd=builder.v2 / "repositories")
    try:
        time.sleep(0.2)
        code, doc = gc_json(str(builder.root), "--yes", "--min-age", "0")
        assert code == 0, doc
        assert doc["status"] == "done" and doc["refused"] == []
        notes = {(g["kind"], g.get("pid")): g for g in doc["guard"]}
        assert ("reader", reader.pid) in notes
        assert notes[("reader", reader.pid)]["message"].startswith(f"pid {reader.pid} (python")
        assert ("cwd", shell.pid) in notes
        assert "working directory" in notes[("cwd", shell.pid)]["message"]
    finally:
        for p in (reader, shell):
            p.kill()
            p.wait()


@pytest.mark.parametrize("mode", ["ab", "r+b", "wb"])
def test_a_process_writing_under_root_refuses(builder: StoreBuilder, mode: str) -> None:
    _tree(builder)
    target = builder.v2 / "repositories" / "app" / "scratch"
    target.write_bytes(b"x")
    writer = _hold(target, mode)
    try:
        reasons = both_refuse(builder.root, "--min-age", "0")
        assert [(r["kind"], r["pid"]) for r in reasons] == [("writer", writer.pid)]
        assert reasons[0]["message"].endswith(f"{target} open for writing")
    finally:
        writer.kill()
        writer.wait()


# --- --registry-url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["notaurl", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:99999", "http://h/?x=1"]
)
def test_a_malformed_registry_url_is_one_line_exit_2_before_anything(
    tmp_path: Path, url: str
) -> None:
    missing = tmp_path / "no-such-root"  # the URL is checked before ROOT is even looked at
    b = StoreBuilder(tmp_path / "store")
    _tree(b)
    for cmd in (["gc", str(missing), "--dry-run"], ["rm", str(b.root), "app:v1", "--yes"]):
        res = runner.invoke(app, [*cmd, "--registry-url", url])
        assert res.exit_code == 2, res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("regfs: error: --registry-url"), lines
        assert "Traceback" not in res.output


def test_check_url() -> None:
    assert check_url("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert check_url(" https://reg.example:443/prefix/ ") == "https://reg.example:443/prefix"
    with pytest.raises(UsageError):
        check_url("127.0.0.1:5000")


def test_an_unreachable_url_refuses_with_the_way_out(builder: StoreBuilder) -> None:
    _tree(builder)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        reasons = both_refuse(builder.root, "--min-age", "0", "--registry-url", url)
    assert [r["kind"] for r in reasons] == ["probe_unreachable"]
    assert reasons[0]["message"].endswith("if the registry is stopped, drop --registry-url")


# --- registry processes in a fake /proc -----------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def fake_proc(
    procdir: Path,
    pid: int,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path,
    root: Path = Path("/"),
    started_ago: float = 0.0,
) -> None:
    """A process entry the guard reads like a real one (stat, cmdline, environ, root, cwd)."""
    d = procdir / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "fdinfo").mkdir()
    start = int((time.clock_gettime(time.CLOCK_BOOTTIME) - started_ago) * TICKS)
    fields = ["S", "1"] + ["0"] * 17 + [str(start)] + ["0"] * 10
    (d / "stat").write_text(f"{pid} ({Path(argv[0]).name[:15]}) " + " ".join(fields))
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    if env is None:
        (d / "environ").mkdir()  # unreadable
    else:
        (d / "environ").write_bytes(b"".join(f"{k}={v}\0".encode() for k, v in env.items()))
    (d / "root").symlink_to(root)
    (d / "cwd").symlink_to(cwd)


def run_guard(v2: Path, procdir: Path, url: str | None = None) -> Verdict:
    return guard(str(v2), young_uploads=[], registry_url=url, proc=str(procdir), linux=True)


YAML_RO = """\
version: 0.1
common: &fs
  rootdirectory: {root}
storage:
  filesystem: *fs
  maintenance:
    readonly: {{enabled: {ro}}}
http: {{addr: ":5000"}}
"""


def _registry(tmp_path: Path, config: str, *, env: dict[str, str] | None = None, **kw: Any) -> Path:
    procdir = tmp_path / "proc"
    cfg = tmp_path / "etc" / "config.yml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(config)
    kw.setdefault("started_ago", -1.0)  # started (just) after the config was written
    fake_proc(
        procdir,
        4242,
        ["/usr/bin/docker-registry", "serve", str(cfg)],
        env={} if env is None else env,
        cwd=kw.pop("cwd", tmp_path),
        **kw,
    )
    return procdir


def kinds(v: Verdict) -> tuple[list[str], list[str]]:
    return [r.kind for r in v.refusals], [n.kind for n in v.notes]


@pytest.mark.parametrize("ro", ["true", "yes", "Y", "on", "TRUE"])
def test_a_read_only_registry_serving_root_passes(builder: StoreBuilder, ro: str) -> None:
    _tree(builder)
    procdir = _registry(builder.root.parent, YAML_RO.format(root=builder.root, ro=ro))
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == ([], ["registry_readonly"])
    assert v.notes[0].message.startswith("pid 4242 (docker-registry) serves ROOT read-only")


@pytest.mark.parametrize("ro", ["false", "no", "n", "off"])
def test_a_writable_registry_serving_root_refuses(builder: StoreBuilder, ro: str) -> None:
    _tree(builder)
    procdir = _registry(builder.root.parent, YAML_RO.format(root=builder.root, ro=ro))
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == (["registry_writable"], [])
    assert v.refusals[0].pid == 4242


def test_the_environment_names_root_and_cannot_switch_read_only_on(
    builder: StoreBuilder, tmp_path: Path
) -> None:
    _tree(builder)
    other = tmp_path / "other"
    other.mkdir()
    env = {
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(builder.root),
        # 2.8.2 ignores this one below a readonly map written in the file (measured).
        "REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED": "true",
    }
    procdir = _registry(tmp_path, YAML_RO.format(root=other, ro="false"), env=env)
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == (["registry_writable"], [])
    assert "environment REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY" in v.refusals[0].message


def test_a_registry_in_a_container_is_resolved_inside_its_root(tmp_path: Path) -> None:
    croot = tmp_path / "container"
    b = StoreBuilder(croot / "srv" / "store")
    _tree(b)
    (croot / "var" / "lib").mkdir(parents=True)
    # An absolute symlink: it resolves inside the container, not on the host.
    (croot / "var" / "lib" / "registry").symlink_to("/srv/store")
    (croot / "etc").mkdir()
    (croot / "etc" / "config.yml").write_text("version: 0.1\nstorage:\n  filesystem: {}\n")
    procdir = tmp_path / "proc"
    fake_proc(
        procdir,
        7,
        ["registry", "serve", "config.yml"],
        env={},
        cwd=croot / "etc",
        root=croot,
        started_ago=-1.0,
    )
    v = run_guard(b.v2, procdir)
    assert kinds(v) == (["registry_writable"], [])  # the default /var/lib/registry is ROOT
    # The same process read-only through REGISTRY_STORAGE (a whole YAML value).
    procdir2 = tmp_path / "proc2"
    env = {"REGISTRY_STORAGE": "{filesystem: {}, maintenance: {readonly: {enabled: true}}}"}
    fake_proc(
        procdir2,
        7,
        ["registry", "serve", "/etc/config.yml"],
        env=env,
        cwd=tmp_path,
        root=croot,
        started_ago=-1.0,
    )
    v = run_guard(b.v2, procdir2)
    assert kinds(v) == ([], ["registry_readonly"])
    assert "environment REGISTRY_STORAGE" in v.notes[0].message


@pytest.mark.parametrize(
    ("config", "env", "why"),
    [
        ("storage: [unclosed", {}, "not valid YAML"),
        (
            "storage:\n  filesystem: {}\n  maintenance:\n    readonly: {enabled: 1}\n",
            {},
            "not a boolean",
        ),
        ("storage:\n  filesystem: {}\n  s3: {}\n", {}, "more than one storage driver"),
        ("storage:\n  filesystem: {}\n", None, "environment is unreadable"),
    ],
)
def test_a_config_that_cannot_vouch_refuses_unless_the_url_proves_read_only(
    builder: StoreBuilder, config: str, env: dict[str, str] | None, why: str
) -> None:
    _tree(builder)
    procdir = _registry(builder.root.parent, config, env=env)
    if env is None:
        (procdir / "4242" / "environ").unlink()
        (procdir / "4242" / "environ").mkdir()  # reading it fails, as for another user's
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == (["registry_unverified"], [])
    assert why in v.refusals[0].message
    assert "give --registry-url" in v.refusals[0].message


def test_a_config_changed_after_start_cannot_vouch(builder: StoreBuilder) -> None:
    _tree(builder)
    procdir = _registry(
        builder.root.parent, YAML_RO.format(root=builder.root, ro="true"), started_ago=60
    )
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == (["registry_unverified"], [])
    assert "changed after the process started" in v.refusals[0].message


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("storage:\n  s3: {bucket: b}\n", "serves s3 storage, not ROOT"),
        ("storage:\n  inmemory:\n", "serves inmemory storage, not ROOT"),
        ("storage:\n  filesystem:\n    rootdirectory: elsewhere\n", "serves elsewhere, not ROOT"),
    ],
)
def test_a_registry_serving_other_storage_is_noted(
    builder: StoreBuilder, config: str, says: str
) -> None:
    _tree(builder)
    v = run_guard(builder.v2, _registry(builder.root.parent, config))
    assert kinds(v) == ([], ["registry_other", "no_registry"])
    assert v.notes[0].message == f"pid 4242 (docker-registry) {says}"


def test_a_pull_through_cache_writes_even_read_only(builder: StoreBuilder) -> None:
    _tree(builder)
    cfg = YAML_RO.format(root=builder.root, ro="true") + "proxy:\n  remoteurl: https://r.example\n"
    v = run_guard(builder.v2, _registry(builder.root.parent, cfg))
    assert kinds(v) == (["registry_writable"], [])
    assert "pull-through cache" in v.refusals[0].message


def test_config_from_registry_configuration_path_and_relative_root(
    builder: StoreBuilder, tmp_path: Path
) -> None:
    _tree(builder)
    procdir = tmp_path / "proc"
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"storage:\n  filesystem:\n    rootdirectory: ./{builder.root.name}\n")
    fake_proc(
        procdir,
        9,
        ["/bin/registry", "serve"],
        env={"REGISTRY_CONFIGURATION_PATH": str(cfg)},
        cwd=builder.root.parent,
        started_ago=-1.0,
    )
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == (["registry_writable"], [])


def test_no_registry_says_what_it_cannot_see(builder: StoreBuilder, tmp_path: Path) -> None:
    _tree(builder)
    procdir = tmp_path / "proc"
    fake_proc(procdir, 5, ["/usr/bin/registry-frontend", "--serve"], env={}, cwd=tmp_path)
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == ([], ["no_registry"])
    assert "another host" in v.notes[0].message and "--registry-url" in v.notes[0].message


# --- configuration semantics (measured on 2.8.2) --------------------------------------------

SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)


@given(
    file_root=st.lists(SEGMENT, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    env_root=st.lists(SEGMENT, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    spelling=st.sampled_from(["FILESYSTEM", "filesystem", "FileSystem"]),
)
def test_env_rootdirectory_wins_over_the_file(file_root: str, env_root: str, spelling: str) -> None:
    cfg = f"storage:\n  filesystem:\n    rootdirectory: {file_root}\n"
    s = resolve(cfg, {f"REGISTRY_STORAGE_{spelling}_ROOTDIRECTORY": env_root})
    assert s.rootdirectory == env_root
    assert s.root_source.startswith("environment REGISTRY_STORAGE_")
    # The struct level matches in capitals only: the registry ignores this one.
    s = resolve(cfg, {"REGISTRY_storage_filesystem_rootdirectory": env_root})
    assert s.rootdirectory == file_root and s.root_source == "config"


@given(
    word=st.sampled_from(
        [
            *("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"),
            *("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"),
        ]
    )
)
def test_read_only_booleans_are_yaml_1_1(word: str) -> None:
    cfg = f"storage:\n  filesystem: {{}}\n  maintenance:\n    readonly:\n      enabled: {word}\n"
    assert resolve(cfg, {}).readonly is (word.lower() in ("y", "yes", "true", "on"))


@given(word=st.sampled_from(["1", "0", "'true'", '"yes"', "enabled", "[true]"]))
def test_a_read_only_value_the_registry_does_not_start_with(word: str) -> None:
    cfg = f"storage:\n  filesystem: {{}}\n  maintenance:\n    readonly:\n      enabled: {word}\n"
    with pytest.raises(ConfigError):
        resolve(cfg, {})


def test_overrides_as_measured() -> None:
    base = "storage:\n  filesystem:\n    rootdirectory: /a\n"
    # No readonly map in the file: the override makes one the registry panics on.
    with pytest.raises(ConfigError):
        resolve(base, {"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED": "true"})
    # A whole readonly map as YAML, below a maintenance the file has: honoured.
    s = resolve(
        base + "  maintenance:\n    uploadpurging: {enabled: false}\n",
        {"REGISTRY_STORAGE_MAINTENANCE_READONLY": "{enabled: true}"},
    )
    assert s.readonly and s.readonly_source == "environment REGISTRY_STORAGE_MAINTENANCE_READONLY"
    assert resolve("storage:\n  filesystem:\n", {}).rootdirectory == "/var/lib/registry"
    assert resolve("storage:\n  filesystem:\n    rootdirectory:\n", {}).rootdirectory == "<nil>"
    with pytest.raises(ConfigError):  # two drivers: the registry does not start
        resolve(base, {"REGISTRY_STORAGE_S3_BUCKET": "b"})
    assert resolve(base, {"REGISTRY_PROXY_REMOTEURL": "https://x"}).proxy == "https://x"
    assert issubclass(GcRefused, RefusedError)


def test_a_writer_that_appears_while_the_prompt_waits_refuses(
    builder: StoreBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(builder)
    monkeypatch.setattr("regfs.gc.finish.RECHECK_AFTER", -1.0)  # as if the prompt took long
    target = builder.v2 / "repositories" / "app" / "scratch"
    target.write_bytes(b"x")
    before = fingerprint(builder.root)
    started: list[subprocess.Popen[str]] = []

    def confirm(plan: object) -> bool:
        started.append(_hold(target, "ab"))  # a push starts while the admin reads the plan
        return True

    try:
        with pytest.raises(GcRefused) as info:
            collect(str(builder.root), GcOptions(min_age=0), dry_run=False, confirm=confirm)
        assert [r.kind for r in info.value.details] == ["writer"]
        assert info.value.details[0].pid == started[0].pid
    finally:
        for p in started:
            p.kill()
            p.wait()
    assert fingerprint(builder.root) == before


def test_a_registry_that_exits_while_being_looked_at_is_not_a_reason(
    builder: StoreBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(builder)
    procdir = _registry(tmp_path, YAML_RO.format(root=builder.root, ro="false"))
    real_environ = procs.environ

    def gone(pid: int, proc: str = "/proc") -> dict[str, str]:
        import shutil

        shutil.rmtree(procdir / str(pid))  # the process exits right now
        return real_environ(pid, proc)

    monkeypatch.setattr(procs, "environ", gone)
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == ([], ["no_registry"])


def test_a_registry_that_has_exited_unreaped_is_not_a_reason(
    builder: StoreBuilder, tmp_path: Path
) -> None:
    _tree(builder)
    procdir = _registry(tmp_path, YAML_RO.format(root=builder.root, ro="false"))
    stat_file = procdir / "4242" / "stat"
    stat_file.write_text(stat_file.read_text().replace(") S ", ") Z "))  # a zombie
    (procdir / "4242" / "environ").unlink()
    (procdir / "4242" / "environ").mkdir()  # its environment is gone with it
    v = run_guard(builder.v2, procdir)
    assert kinds(v) == ([], ["no_registry"])


# --- ROOT in a bucket ------------------------------------------------------------------------

YAML_S3 = """\
version: 0.1
storage:
  s3:
    bucket: {bucket}
    region: us-east-1
    regionendpoint: http://127.0.0.1:9
    rootdirectory: {root}
  maintenance:
    readonly: {{enabled: {ro}}}
"""


def test_bucket_root_parse() -> None:
    assert BucketRoot.parse("s3://b/p/q/docker/registry/v2") == BucketRoot("b", "p/q")
    assert BucketRoot.parse("s3://b/docker/registry/v2") == BucketRoot("b", "")
    assert BucketRoot.parse("/var/lib/registry/docker/registry/v2") is None
    assert BucketRoot("b", "p").describe() == "s3://b/p"


def _s3_guard(tmp_path: Path, config: str, env: dict[str, str] | None = None) -> Verdict:
    procdir = _registry(tmp_path, config, env=env)
    return guard(
        "s3://regs/team/docker/registry/v2",
        young_uploads=[],
        registry_url=None,
        proc=str(procdir),
        linux=True,
    )


@pytest.mark.parametrize("root", ["/team", "team", "/team/", "team/"])
def test_a_writable_registry_on_the_same_bucket_and_root_refuses(tmp_path: Path, root: str) -> None:
    v = _s3_guard(tmp_path, YAML_S3.format(bucket="regs", root=root, ro="false"))
    assert kinds(v) == (["registry_writable"], [])
    assert "s3://regs/team at http://127.0.0.1:9" in v.refusals[0].message


def test_a_read_only_registry_on_the_bucket_passes(tmp_path: Path) -> None:
    v = _s3_guard(tmp_path, YAML_S3.format(bucket="regs", root="/team", ro="true"))
    assert kinds(v) == ([], ["registry_readonly"])


@pytest.mark.parametrize(
    ("bucket", "root", "env"),
    [
        ("regs", "/other", {}),
        ("other", "/team", {}),
        ("regs", "/", {}),
        # the environment moves it elsewhere, as the registry reads it
        ("regs", "/team", {"REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/elsewhere"}),
    ],
)
def test_a_registry_on_another_bucket_or_root_is_noted(
    tmp_path: Path, bucket: str, root: str, env: dict[str, str]
) -> None:
    v = _s3_guard(tmp_path, YAML_S3.format(bucket=bucket, root=root, ro="false"), env)
    assert kinds(v) == ([], ["registry_other", "no_registry"])


def test_the_environment_can_point_a_registry_at_the_bucket(tmp_path: Path) -> None:
    env = {"REGISTRY_STORAGE_S3_BUCKET": "regs", "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/team"}
    v = _s3_guard(tmp_path, YAML_S3.format(bucket="x", root="/y", ro="false"), env)
    assert kinds(v) == (["registry_writable"], [])


def test_a_filesystem_registry_is_not_the_bucket(tmp_path: Path) -> None:
    v = _s3_guard(tmp_path, YAML_RO.format(root=tmp_path, ro="false"))
    assert kinds(v) == ([], ["registry_other", "no_registry"])


@pytest.mark.registry
def test_a_real_registry_serving_the_bucket_refuses(weed: s3bed.Weed, s3_root: str) -> None:
    """The real registry, writing the bucket through its own S3 driver: refused while it
    serves ROOT writable, noted when it serves another root, passed when read-only."""
    v2 = f"s3://{weed.bucket}/{s3_root}/docker/registry/v2"

    def ours(v: Verdict, pid: int) -> tuple[list[str], list[str]]:
        return (
            [r.kind for r in v.refusals if r.pid == pid],
            [n.kind for n in v.notes if n.pid == pid],
        )

    with realreg.Registry(None, s3=weed.registry_storage(s3_root)) as reg:
        assert reg.proc is not None
        v = guard(v2, young_uploads=[], registry_url=None)
        assert ours(v, reg.proc.pid) == (["registry_writable"], [])
        other = f"s3://{weed.bucket}/{s3_root}-other/docker/registry/v2"
        v = guard(other, young_uploads=[], registry_url=None)
        assert ours(v, reg.proc.pid) == ([], ["registry_other"])
        # its own answer through --registry-url: writable
        v = guard(v2, young_uploads=[], registry_url=reg.url)
        assert "probe" in [r.kind for r in v.refusals]
    with realreg.Registry(None, s3=weed.registry_storage(s3_root), readonly=True) as reg:
        assert reg.proc is not None
        v = guard(v2, young_uploads=[], registry_url=None)
        assert ours(v, reg.proc.pid) == ([], ["registry_readonly"])
