"""The safety net under the gc paths: behaviours that are right today, each pinned by a test
that goes through the real run path (lazy scan, refresh, plan, executor; the CLI where the
user types it), so that a slip while the code moves makes one of them fail.

Each test names, in its docstring, the plausible slip it exists to catch. Where a real
registry can play the other side (a push caught half-way, a mount in progress, a re-push
between plan and execution), it does: it writes the tree through its API on 127.0.0.1, and
whatever must survive is pulled back, every digest verified.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from builder import StoreBuilder, hexof
from gc_helpers import age_tree, fingerprint

from regfs.errors import RefusedError
from regfs.gc.plan import GcOptions, GcPlan, state_dir
from regfs.gc.run import collect
from regfs.gc.steps import Status, Step

REPO_ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600.0


# --- helpers ---------------------------------------------------------------------------------


def regfs_cli(*args: str) -> tuple[int, dict[str, Any]]:
    """``python -m regfs ARGS --json`` in a subprocess, as a user runs it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    p = subprocess.run(
        [sys.executable, "-m", "regfs", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else {}
    except ValueError:
        pytest.fail(
            f"regfs {' '.join(args)}: not JSON (exit {p.returncode}):\n{p.stdout}{p.stderr}"
        )
    return p.returncode, out


def blob_data(root: Path, digest: str) -> Path:
    return root / "docker/registry/v2/blobs/sha256" / hexof(digest)[:2] / hexof(digest) / "data"


def v2(root: Path) -> Path:
    return root / "docker/registry/v2"


def push_oci_image(reg: rr.Registry, repo: str, label: str, *, ref: str | None = None) -> str:
    """Push a one-layer OCI image (config and layer uploaded, manifest by digest unless
    ``ref``); return the manifest digest."""
    layer = f"layer of {label} {time.time_ns()}".encode()
    config = json.dumps(
        {
            "architecture": label,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [rr.sha256_digest(layer)]},
        },
        sort_keys=True,
    ).encode()
    reg.push_blob(repo, layer)
    reg.push_blob(repo, config)
    body = image_manifest(config, [layer])
    digest = rr.sha256_digest(body)
    pushed = reg.push_manifest(repo, ref or digest, body, rr.MT_OCI_MANIFEST)
    assert pushed == digest
    return digest


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": rr.MT_OCI_MANIFEST,
        "config": {
            "mediaType": rr.MT_OCI_CONFIG,
            "digest": rr.sha256_digest(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": rr.MT_OCI_LAYER, "digest": rr.sha256_digest(ly), "size": len(ly)}
            for ly in layers
        ],
    }
    return json.dumps(doc, sort_keys=True).encode()


def pull_fixture_tags(root: Path, meta: dict[str, Any], reg: rr.Registry) -> None:
    """Every tag the fixture records still pulls (every digest verified)."""
    for repo, tags in meta["tags"].items():
        for tag in tags:
            reg.pull(repo, tag)


# --- 1. young untagged revisions -------------------------------------------------------------


@pytest.mark.registry
def test_untagged_mode_keeps_a_multiarch_push_caught_between_children_and_index(
    tmp_path: Path,
) -> None:
    """``gc --delete-untagged --min-age 1h`` keeps untagged revisions younger than the grace
    period: a multi-arch push whose children were pushed by digest seconds ago and whose index
    is not pushed yet. Catches: the young revisions no longer passed to the marking as extra
    roots (or the cutoff compared the wrong way)."""
    rr.require_binaries()
    meta = rr.load_fixture_meta("demo")
    root = rr.extract_fixture("demo", tmp_path / "root")
    age_tree(root)
    old_untagged = {
        (i["repo"], i["digest"])
        for i in meta["images"]
        if i["state"] == "overwritten"  # untagged by a re-push, long ago: must go
    }
    assert old_untagged
    with rr.Registry(root) as reg:
        children = [push_oci_image(reg, "team/multi", arch) for arch in ("amd64", "arm64")]

    # --skip-live-check: our registry is stopped, but other registries on a shared machine may
    # make the guard refuse; the guard has its own tests, this one is about the plan.
    code, out = regfs_cli(
        "gc", str(root), "--delete-untagged", "--min-age", "1h", "--yes", "--skip-live-check"
    )

    assert code == 0, out
    assert out["status"] == "done"
    deleted = {(m["repository"], m["digest"]) for m in out["manifests"]}
    assert old_untagged <= deleted  # the run did delete untagged manifests...
    assert not deleted & {("team/multi", c) for c in children}  # ...but not the young ones
    for c in children:
        assert (
            v2(root) / f"repositories/team/multi/_manifests/revisions/sha256/{hexof(c)}/link"
        ).is_file()
    # The push completes: the index goes in (the registry checks its children exist), then
    # the whole image pulls, as does everything the fixture keeps.
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": rr.MT_OCI_INDEX,
            "manifests": [
                {
                    "mediaType": rr.MT_OCI_MANIFEST,
                    "digest": c,
                    "size": blob_data(root, c).stat().st_size,
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for c, arch in zip(children, ("amd64", "arm64"), strict=True)
            ],
        },
        sort_keys=True,
    ).encode()
    with rr.Registry(root) as reg:
        reg.push_manifest("team/multi", "v1", index, rr.MT_OCI_INDEX)
        verified = reg.pull("team/multi", "v1")
        assert set(children) <= set(verified)
        pull_fixture_tags(root, meta, reg)
        for repo, d in sorted(old_untagged):
            with pytest.raises(rr.RegistryHTTPError) as info:
                reg.get_manifest(repo, d)
            assert info.value.status == 404


# --- 2. a young layer link (a cross-repository mount in progress) ---------------------------


@pytest.mark.registry
def test_a_mount_in_progress_keeps_its_young_layer_link(tmp_path: Path) -> None:
    """A layer link written seconds ago, for a blob another repository keeps, survives a real
    run: a cross-repository mount whose manifest is not pushed yet. Catches: the layer-link
    age check skipped (only blobs looked at for age)."""
    rr.require_binaries()
    meta = rr.load_fixture_meta("demo")
    root = rr.extract_fixture("demo", tmp_path / "root")
    age_tree(root)
    donor = next(
        i for i in meta["images"] if i["state"] == "tagged" and i["kind"] == "image" and i["layers"]
    )
    layer = donor["layers"][0]
    with rr.Registry(root) as reg:
        reg.mount_blob("team/incoming", layer, donor["repo"])
    link = v2(root) / f"repositories/team/incoming/_layers/sha256/{hexof(layer)}/link"
    assert link.is_file()
    before = link.stat().st_mtime

    code, out = regfs_cli("gc", str(root), "--min-age", "1h", "--yes", "--skip-live-check")

    assert code == 0, out
    assert out["status"] == "done"
    assert out["blobs"], "the run should have deleted the fixture's orphans"
    assert link.is_file() and link.stat().st_mtime == before
    assert ("team/incoming", layer) not in {
        (x["repository"], x["digest"]) for x in out["layer_links"]
    }
    # The push completes: config uploaded, manifest accepted (the registry checks the mounted
    # layer is linked into the repository), and the image pulls.
    layer_bytes = blob_data(root, layer).read_bytes()
    config = json.dumps({"architecture": "amd64", "os": "linux", "mounted": True}).encode()
    with rr.Registry(root) as reg:
        reg.push_blob("team/incoming", config)
        reg.push_manifest(
            "team/incoming", "v1", image_manifest(config, [layer_bytes]), rr.MT_OCI_MANIFEST
        )
        assert layer in reg.pull("team/incoming", "v1")
        pull_fixture_tags(root, meta, reg)


# --- 3. deleted and pushed again between plan and execution ---------------------------------

SHARED_DELETED = "sha256:30347b54178aac17c5603dfcbb135e45125335f29d81aa88e7dc6bfd3a1d24af"


def _repush_between_plan_and_execution(root: Path) -> tuple[Any, str]:
    """``org/team/app:old`` of the shared fixture was deleted through the API long ago: its
    manifest, config and layer are orphans the plan deletes. Between plan and execution it is
    pushed again through the real registry; the run goes on."""
    meta = rr.load_fixture_meta("shared")
    image = next(i for i in meta["images"] if i["digest"] == SHARED_DELETED)
    assert image["state"] == "deleted"
    body = blob_data(root, SHARED_DELETED).read_bytes()
    seen: dict[str, set[str]] = {}

    def push_again(plan: GcPlan) -> bool:
        seen["blobs"] = {a.digest for a in plan.by_step(Step.BLOB) if a.digest}
        with rr.Registry(root) as reg:
            assert reg.push_manifest("org/team/app", "old", body, image["media_type"]) == (
                SHARED_DELETED
            )
        return True

    out = collect(
        str(root), GcOptions(min_age=0), dry_run=False, skip_live_check=True, confirm=push_again
    )
    assert SHARED_DELETED in seen["blobs"], "the plan should have held the deleted manifest"
    return out, image["config"]


@pytest.mark.registry
def test_a_manifest_pushed_again_after_the_plan_keeps_its_blob(tmp_path: Path) -> None:
    """A manifest deleted through the API and pushed again between plan and execution keeps
    its blob: only its revision link and tag are new, the blob is unchanged. Catches: the
    executor's last look for links created since the scan dropped (or no longer looking at
    revision links)."""
    rr.require_binaries()
    root = rr.extract_fixture("shared", tmp_path / "root")
    out, _config = _repush_between_plan_and_execution(root)
    status = {
        r.action.digest: (r.status, r.detail)
        for r in out.executed.results
        if r.action.step == "blob"
    }
    # Two looks protect it: for manifests pushed since the scan (before the first layer link
    # goes) and for links naming a doomed blob (just before the first blob goes).
    assert status[SHARED_DELETED] in {
        ("skipped", "referenced by a manifest pushed since the scan"),
        ("skipped", "linked again since the scan"),
    }
    assert blob_data(root, SHARED_DELETED).is_file()
    assert out.executed is not None and out.executed.failed is None
    with rr.Registry(root) as reg:
        body, _mt, dcd = reg.get_manifest("org/team/app", "old")
        assert dcd == SHARED_DELETED and rr.sha256_digest(body) == SHARED_DELETED


@pytest.mark.registry
def test_a_manifest_pushed_again_after_the_plan_still_pulls(tmp_path: Path) -> None:
    """Same run as above: what the re-pushed manifest references must stay too, with its layer
    links, so that the tag pulls after gc (the registry accepted the push because those links
    were there). Catches: the executor's look for manifests pushed since the scan dropped, or
    taken only after the layer links are gone."""
    rr.require_binaries()
    meta = rr.load_fixture_meta("shared")
    root = rr.extract_fixture("shared", tmp_path / "root")
    _repush_between_plan_and_execution(root)
    with rr.Registry(root) as reg:
        reg.pull("org/team/app", "old")
        pull_fixture_tags(root, meta, reg)


@pytest.mark.registry
def test_a_new_manifest_pushed_after_the_plan_keeps_what_it_references(tmp_path: Path) -> None:
    """A new manifest pushed between plan and execution that references blobs the plan
    deletes (the registry accepts it: their layer links are still there) keeps them and their
    links, and pulls; the orphans nothing new references still go. Catches: only re-pushes
    of a doomed manifest looked for, not manifests the scan never saw."""
    rr.require_binaries()
    meta = rr.load_fixture_meta("shared")
    root = rr.extract_fixture("shared", tmp_path / "root")
    old = next(i for i in meta["images"] if i["digest"] == SHARED_DELETED)
    doc = json.loads(blob_data(root, SHARED_DELETED).read_bytes())
    doc["annotations"] = {"org.example.pushed": "after the plan"}
    body = json.dumps(doc).encode()
    new = rr.sha256_digest(body)

    def push_new(plan: GcPlan) -> bool:
        assert {old["config"], *old["layers"]} & {a.digest for a in plan.by_step(Step.BLOB)}
        with rr.Registry(root) as reg:
            assert reg.push_manifest("org/team/app", "new", body, old["media_type"]) == new
        return True

    out = collect(
        str(root), GcOptions(min_age=0), dry_run=False, skip_live_check=True, confirm=push_new
    )
    assert out.executed is not None and out.executed.failed is None
    assert not blob_data(root, SHARED_DELETED).exists()  # nothing new references it
    with rr.Registry(root) as reg:
        verified = reg.pull("org/team/app", "new")
        assert old["config"] in verified
        pull_fixture_tags(root, meta, reg)


@pytest.mark.registry
def test_an_untagged_manifest_tagged_again_after_the_plan_still_pulls(tmp_path: Path) -> None:
    """``--delete-untagged``: an untagged manifest the plan removes is pushed again with its
    tag between plan and execution. Its revision is skipped (its link is new), and its config
    and layers stay with their links: the tag pulls. Catches: a revision the plan meant to
    remove counted as known when looking for manifests pushed since the scan."""
    rr.require_binaries()
    meta = rr.load_fixture_meta("demo")
    root = rr.extract_fixture("demo", tmp_path / "root")
    age_tree(root)
    old = next(i for i in meta["images"] if i["state"] == "overwritten")
    body = blob_data(root, old["digest"]).read_bytes()

    def tag_again(plan: GcPlan) -> bool:
        assert (old["repo"], old["digest"]) in plan.manifests
        with rr.Registry(root) as reg:
            reg.push_manifest(old["repo"], "again", body, old["media_type"])
        return True

    out = collect(
        str(root),
        GcOptions(min_age=0, delete_untagged=True),
        dry_run=False,
        skip_live_check=True,
        confirm=tag_again,
    )
    assert out.executed is not None and out.executed.failed is None
    revision = [r for r in out.executed.results if r.action.step == "revision"]
    assert [r.status for r in revision if r.action.digest == old["digest"]] == ["skipped"]
    with rr.Registry(root) as reg:
        verified = reg.pull(old["repo"], "again")
        assert old["config"] in verified
        pull_fixture_tags(root, meta, reg)


@pytest.mark.registry
def test_an_index_pushed_after_the_plan_keeps_its_untagged_children(tmp_path: Path) -> None:
    """``--delete-untagged``: children pushed by digest long ago (past the grace period, so
    doomed) and their index pushed between plan and execution. The children's revisions,
    configs and layers stay, and the index pulls. Catches: the look for manifests pushed since
    the scan taken only once revisions are already gone, or not following index children."""
    rr.require_binaries()
    meta = rr.load_fixture_meta("demo")
    root = rr.extract_fixture("demo", tmp_path / "root")
    with rr.Registry(root) as reg:
        children = [push_oci_image(reg, "team/late", arch) for arch in ("amd64", "arm64")]
    age_tree(root)  # the push stalled for a long time before its index
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": rr.MT_OCI_INDEX,
            "manifests": [
                {
                    "mediaType": rr.MT_OCI_MANIFEST,
                    "digest": c,
                    "size": blob_data(root, c).stat().st_size,
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for c, arch in zip(children, ("amd64", "arm64"), strict=True)
            ],
        },
        sort_keys=True,
    ).encode()

    def push_index(plan: GcPlan) -> bool:
        assert {("team/late", c) for c in children} <= set(plan.manifests)
        with rr.Registry(root) as reg:
            reg.push_manifest("team/late", "v1", index, rr.MT_OCI_INDEX)
        return True

    out = collect(
        str(root),
        GcOptions(min_age=HOUR, delete_untagged=True),
        dry_run=False,
        skip_live_check=True,
        confirm=push_index,
    )
    assert out.executed is not None and out.executed.failed is None
    skipped = {
        r.action.digest
        for r in out.executed.results
        if r.action.step == "revision" and r.status == "skipped"
    }
    assert set(children) <= skipped
    with rr.Registry(root) as reg:
        verified = reg.pull("team/late", "v1")
        assert set(children) <= set(verified)
        pull_fixture_tags(root, meta, reg)


# --- 4. a lock held by a live process of another user ---------------------------------------


def _ci_fail_or_skip(why: str) -> None:
    if rr.in_ci():
        pytest.fail(f"CI=true but {why}", pytrace=False)
    pytest.skip(why)


@contextlib.contextmanager
def _process_of_user(user: str) -> Iterator[int]:
    """A ``sleep`` running as ``user``; yields its pid (the pid that execs ``sleep``)."""
    setpriv = shutil.which("setpriv")
    runuser = shutil.which("runuser")
    if setpriv:
        cmd = [setpriv, f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}"]
        cmd += ["--clear-groups", "sleep", "120"]
    elif runuser:
        cmd = [runuser, "-u", user, "--", "sleep", "120"]
    else:
        _ci_fail_or_skip("neither setpriv nor runuser is installed (util-linux)")
        raise AssertionError("unreachable")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        pid = proc.pid
        if not setpriv:  # runuser forks: the sleep is its child
            pid = _child_of(proc.pid)
        deadline = time.monotonic() + 10
        while os.stat(f"/proc/{pid}").st_uid != pwd.getpwnam(user).pw_uid:
            assert time.monotonic() < deadline, "the holder never became " + user
            time.sleep(0.01)
        yield pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _child_of(ppid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{ppid}/task/{ppid}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("runuser started no child")


def _as_user(uid: int, gid: int, fn: Any) -> tuple[int, str]:
    """Run ``fn()`` in a forked child that dropped to ``uid``/``gid`` (root's modules already
    loaded: python itself, under /root, would not start as that user). Returns (exit, text):
    0 and ``fn``'s string, or 1 and the error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code, text = 1, ""
        try:
            os.close(r)
            signal.setitimer(signal.ITIMER_REAL, 0)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            text = str(fn())
            code = 0
        except BaseException as exc:
            text = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(BaseException):
                os.write(w, text.encode())
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


def test_a_lock_held_by_another_users_live_process_is_not_taken_over() -> None:
    """A lock whose pid is alive but belongs to another user (``kill(pid, 0)`` answers EPERM)
    is not taken over: a gc run by an unprivileged user refuses, naming the holder. The same
    run takes over the lock once that process is dead (so the refusal was the liveness
    check, not a permission problem). Catches: EPERM from ``kill(pid, 0)`` read as "dead"."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root: the holder and the contender run as two other users")
    try:
        holder_user = pwd.getpwnam("nobody")
    except KeyError:
        _ci_fail_or_skip("there is no user 'nobody' to hold the lock")
        raise
    # The contender: an unprivileged uid other than the holder's (no account needed).
    uid = gid = holder_user.pw_uid - 1
    # Not under tmp_path: pytest's base folder is private to root.
    base = Path(tempfile.mkdtemp(prefix="regfs-safety-lock-"))
    try:
        b = StoreBuilder(base / "registry")
        b.image("app", tags=["v1"], layers=[b.layer("kept")])
        orphan = b.orphan_blob(b"orphan", repo="app")
        age_tree(b.root)
        for cur, dirs, files in os.walk(base):
            for name in [cur, *(os.path.join(cur, n) for n in dirs + files)]:
                os.chown(name, uid, gid, follow_symlinks=False)
        state = state_dir(str(b.v2))
        os.makedirs(state)
        os.chown(state, uid, gid)
        lock = os.path.join(state, "lock")
        before = fingerprint(b.root)

        def contend() -> str:
            try:
                out = collect(
                    str(b.root), GcOptions(min_age=0), dry_run=False, skip_live_check=True
                )
            except RefusedError as exc:
                return f"refused: {exc}"
            assert out.executed is not None
            return f"ran: {len(out.executed.with_status(Status.DONE))} done"

        with _process_of_user("nobody") as pid:
            with open(lock, "w", encoding="utf-8") as f:
                json.dump(
                    {
                        "host": os.uname().nodename,
                        "pid": pid,
                        "started": time.time(),
                        "command": "regfs gc (another admin)",
                    },
                    f,
                )
            code, text = _as_user(uid, gid, contend)
            assert code == 0, text
            assert text.startswith("refused: ") and "another regfs holds the lock" in text, text
            assert f"pid {pid} " in text
            assert json.loads(Path(lock).read_text())["pid"] == pid  # still theirs
            assert fingerprint(b.root) == before
        # The holder is gone now: the same unprivileged run takes the lock over and collects.
        code, text = _as_user(uid, gid, contend)
        assert code == 0, text
        assert text.startswith("ran: "), text
        assert not blob_data(b.root, orphan.digest).exists()
        assert not os.path.exists(lock)
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- 5. an old upload written to recently ----------------------------------------------------


def test_an_old_upload_written_to_recently_is_not_purged(tmp_path: Path) -> None:
    """An upload that started long ago (``startedat`` beyond ``--uploads-older-than``) but was
    written to within ``--min-age`` is a client still sending: it is not purged, while a stale
    one beside it is. Through the CLI, past the live guard (``--skip-live-check``) so the plan
    itself is what is tested. Catches: uploads aged by ``startedat`` alone."""
    b = StoreBuilder(tmp_path / "registry")
    b.image("app", tags=["v1"])
    long_ago = "2020-01-02T03:04:05Z"
    busy = b.upload("app", started_at=long_ago, data=b"x" * 4096)
    stale = b.upload("app", started_at=long_ago, data=b"y" * 4096)
    age_tree(b.root)
    busy_dir = b.path(f"repositories/app/_uploads/{busy}")
    (busy_dir / "data").write_bytes(b"x" * 8192)  # a PATCH a minute ago
    before = {p: p.read_bytes() for p in busy_dir.rglob("*") if p.is_file()}

    code, out = regfs_cli("gc", str(b.root), "--yes", "--skip-live-check")

    assert code == 0, out
    assert out["status"] == "done"
    purged = {u["path"] for u in out["uploads"]}
    assert f"repositories/app/_uploads/{stale}" in purged
    assert f"repositories/app/_uploads/{busy}" not in purged
    assert not b.path(f"repositories/app/_uploads/{stale}").exists()
    assert {p: p.read_bytes() for p in busy_dir.rglob("*") if p.is_file()} == before


# --- 6. re-checks that only a size or a content change reveals -----------------------------


def _run_and_meddle(b: StoreBuilder, options: GcOptions, meddle: Any) -> Any:
    def confirm(plan: GcPlan) -> bool:
        meddle(plan)
        return True

    return collect(str(b.root), options, dry_run=False, skip_live_check=True, confirm=confirm)


def _rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def test_a_blob_whose_size_changed_but_not_its_mtime_is_skipped(tmp_path: Path) -> None:
    """A blob rewritten after the plan with its mtime put back (a restore from backup, a copy
    tool keeping times) is skipped at the re-check for its size alone. Catches: the re-check's
    size comparison ignored."""
    b = StoreBuilder(tmp_path / "registry")
    b.image("app", tags=["v1"])
    grown = b.orphan_blob(b"will grow", repo="app")
    plain = b.orphan_blob(b"plain orphan", repo="app")
    age_tree(b.root)
    data = blob_data(b.root, grown.digest)

    def meddle(plan: GcPlan) -> None:
        assert grown.digest in {a.digest for a in plan.by_step(Step.BLOB)}
        _rewrite_keeping_mtime(data, b"will grow, and did")

    out = _run_and_meddle(b, GcOptions(min_age=0), meddle)
    status = {
        r.action.digest: (r.status, r.detail)
        for r in out.executed.results
        if r.action.step == "blob"
    }
    assert status[grown.digest] == ("skipped", "changed since the scan (size)")
    assert data.read_bytes() == b"will grow, and did"
    assert status[plain.digest] == ("done", "")
    assert out.executed is not None and out.executed.failed is None


def test_a_tag_history_link_whose_content_changed_is_skipped(tmp_path: Path) -> None:
    """A tag's history entry (``tags/T/index/sha256/H/link``) rewritten after the plan to
    name another manifest, same size, mtime put back, is skipped at the re-check for its
    content alone (the fast scan never stats these entries). Catches: the link-content check
    dropped for tag history entries."""
    b = StoreBuilder(tmp_path / "registry")
    old = b.image("app", tags=["v1"], layers=[b.layer("old")])
    new = b.image("app", tags=["v1"], layers=[b.layer("new")])  # old is untagged now
    other = b.image("app", layers=[b.layer("other")])
    age_tree(b.root)
    entry = b.path(f"repositories/app/_manifests/tags/v1/index/sha256/{hexof(old.digest)}/link")
    assert entry.read_bytes() == old.digest.encode()

    def meddle(plan: GcPlan) -> None:
        assert old.digest in {a.digest for a in plan.by_step(Step.TAG_INDEX)}
        _rewrite_keeping_mtime(entry, other.digest.encode())

    out = _run_and_meddle(b, GcOptions(min_age=0, delete_untagged=True), meddle)
    status = {
        r.action.path: (r.status, r.detail)
        for r in out.executed.results
        if r.action.step == "tag_index"
    }
    path = f"repositories/app/_manifests/tags/v1/index/sha256/{hexof(old.digest)}"
    assert status[path] == ("skipped", "link content changed since the scan")
    assert entry.read_bytes() == other.digest.encode()
    assert out.executed is not None and out.executed.failed is None
    assert b.path("repositories/app/_manifests/tags/v1/current/link").read_bytes() == (
        new.digest.encode()
    )
