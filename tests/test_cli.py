"""regfs.cli through typer's CliRunner: output, JSON values, exit codes, bad roots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder
from gc_helpers import fingerprint
from typer.testing import CliRunner

from regfs import __version__
from regfs.cli import app
from regfs.errors import EXIT_USAGE

runner = CliRunner()

ORPHANS_KEYS = {
    "schema",
    "orphaned_blobs",
    "untagged_manifests",
    "dangling",
    "stale_uploads",
    "problems",
    "undecidable_blobs",
    "unread",
    "totals",
}
TOTALS_KEYS = {
    "orphaned_blobs",
    "orphaned_bytes",
    "untagged_manifests",
    "untagged_bytes",
    "dangling",
    "stale_uploads",
    "stale_upload_bytes",
    "problems",
    "protected_blobs",
    "undecidable_blobs",
    "undecidable_bytes",
}


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def test_version() -> None:
    r = invoke("--version")
    assert r.exit_code == 0
    assert r.stdout == f"regfs {__version__}\n"


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "regfs", "--version"], capture_output=True, text=True, check=False
    )
    assert (out.returncode, out.stdout) == (0, f"regfs {__version__}\n")


def _run_main(*args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "regfs", *args], capture_output=True, check=False, **kw
    )


def test_main_keeps_exit_codes_and_flushes_everything(builder: StoreBuilder) -> None:
    """main() leaves through os._exit: codes and complete output must survive that."""
    for i in range(300):  # enough output to need more than one buffer flush
        builder.image(f"team/app{i:03d}", tags=["v1"])
    out = _run_main("tree", str(builder.root), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # complete, parseable JSON
    assert len(json.dumps(doc)) > 64 * 1024
    assert _run_main("tree", str(builder.root / "nope")).returncode == EXIT_USAGE
    builder.write("repositories/team/app000/_layers/stray", b"")
    assert _run_main("check", str(builder.root)).returncode == 1
    assert _run_main("no-such-command").returncode == EXIT_USAGE


def test_main_exits_quietly_when_the_reader_goes_away(builder: StoreBuilder) -> None:
    for i in range(300):
        builder.image(f"team/app{i:03d}", tags=["v1"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "regfs", "tree", str(builder.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `regfs tree | head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert b"Traceback" not in err


def test_exit_status_mirrors_sys_exit() -> None:
    from regfs.cli import _exit_status

    assert _exit_status(None) == 0
    assert _exit_status(3) == 3
    assert _exit_status(256 + 4) == 4
    assert _exit_status(True) == 1


def test_help_lists_the_commands_and_exit_codes() -> None:
    r = invoke("--help")
    assert r.exit_code == 0
    assert "tree" in r.stdout and "orphans" in r.stdout
    assert "Exit codes" in r.stdout


# --- tree -----------------------------------------------------------------------------------


@pytest.fixture
def store(builder: StoreBuilder) -> StoreBuilder:
    base = builder.layer("base")
    builder.img = builder.image("app", tags=["v1"], layers=[base])  # type: ignore[attr-defined]
    builder.dead = builder.image("app", layers=[base, builder.layer("x")])  # type: ignore[attr-defined]
    builder.web = builder.image("org/web", tags=["latest"])  # type: ignore[attr-defined]
    return builder


def test_tree_text(store: StoreBuilder) -> None:
    r = invoke("tree", str(store.root))
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == str(store.v2)
    assert "├── app" in lines
    assert "└── org/web" in lines
    assert any(line.endswith(":v1") for line in lines)
    assert any(store.img.digest[7:19] in line for line in lines)  # type: ignore[attr-defined]
    assert "(untagged: 1)" in r.stdout
    assert r.stderr == ""


def test_tree_json(store: StoreBuilder) -> None:
    r = invoke("tree", str(store.root), "--json")
    assert r.exit_code == 0
    data = as_json(r)
    assert set(data) == {"schema", "type", "path", "children"}
    assert (data["schema"], data["type"], data["path"]) == (1, "registry", str(store.v2))
    assert [c["name"] for c in data["children"]] == ["app", "org/web"]
    app_node = data["children"][0]
    assert set(app_node) == {"type", "name", "children"}
    tag = app_node["children"][0]
    assert set(tag) == {"type", "name", "broken", "issues", "absent_platforms", "children"}
    assert (tag["type"], tag["name"], tag["broken"]) == ("tag", "v1", False)
    manifest = tag["children"][0]
    assert set(manifest) == {
        "type",
        "digest",
        "size",
        "kind",
        "platform",
        "artifact_type",
        "missing",
        "absent",
        "unparseable",
        "cycle",
        "children",
    }
    assert (manifest["platform"], manifest["missing"], manifest["cycle"]) == (None, False, False)
    assert manifest["digest"] == store.img.digest  # type: ignore[attr-defined]
    assert manifest["size"] == store.img.size  # type: ignore[attr-defined]
    assert [c["type"] for c in manifest["children"]] == ["config", "layer"]
    untagged = app_node["children"][1]
    assert untagged["type"] == "untagged"
    assert untagged["count"] == 1
    assert untagged["children"][0]["digest"] == store.dead.digest  # type: ignore[attr-defined]


def test_tree_repo_glob(store: StoreBuilder) -> None:
    data = as_json(invoke("tree", str(store.root), "--repo", "org/*", "--json"))
    assert [c["name"] for c in data["children"]] == ["org/web"]
    r = invoke("tree", str(store.root), "--repo", "none*")
    assert r.exit_code == 2  # one rule for a --repo matching nothing: see test_repo_no_match
    assert r.stderr == "regfs: error: no repository matches 'none*'\n"


def test_root_as_rootdirectory_or_v2_folder(store: StoreBuilder) -> None:
    a = invoke("tree", str(store.root), "--json")
    b = invoke("tree", str(store.v2), "--json")
    assert a.exit_code == b.exit_code == 0
    assert as_json(a) == as_json(b)


def test_regfs_root_env_used_when_root_omitted(store: StoreBuilder) -> None:
    r = invoke("tree", "--json", env={"REGFS_ROOT": str(store.root)})
    assert r.exit_code == 0, r.stderr
    assert as_json(r)["path"] == str(store.v2)
    r = invoke("orphans", "--json", env={"REGFS_ROOT": str(store.v2)})
    assert r.exit_code == 0
    assert as_json(r)["untagged_manifests"][0]["digest"] == store.dead.digest  # type: ignore[attr-defined]


def test_argument_wins_over_env(store: StoreBuilder, tmp_path: Path) -> None:
    r = invoke("tree", str(store.root), "--json", env={"REGFS_ROOT": str(tmp_path / "nope")})
    assert r.exit_code == 0
    assert as_json(r)["path"] == str(store.v2)


# --- orphans ----------------------------------------------------------------------------------


def test_orphans_json_healthy(store: StoreBuilder) -> None:
    loose = store.orphan_blob(b"loose")
    r = invoke("orphans", str(store.root), "--json")
    assert r.exit_code == 0, r.stderr
    data = as_json(r)
    assert set(data) == ORPHANS_KEYS
    assert set(data["totals"]) == TOTALS_KEYS
    assert data["schema"] == 1
    assert data["orphaned_blobs"] == [{"digest": loose.digest, "size": 5}]
    dead = store.dead  # type: ignore[attr-defined]
    [row] = data["untagged_manifests"]
    assert set(row) == {"repository", "digest", "kind", "size", "exclusive_bytes", "history_tags"}
    assert (row["repository"], row["digest"], row["kind"], row["size"]) == (
        "app",
        dead.digest,
        "image",
        dead.size,
    )
    assert row["history_tags"] == []
    assert data["dangling"] == [] and data["problems"] == [] and data["stale_uploads"] == []
    assert data["totals"]["orphaned_blobs"] == 1
    assert data["totals"]["orphaned_bytes"] == 5
    assert data["totals"]["untagged_manifests"] == 1
    assert data["totals"]["untagged_bytes"] == row["exclusive_bytes"] > dead.size


def test_orphans_text_healthy(store: StoreBuilder) -> None:
    r = invoke("orphans", str(store.root))
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "Orphaned blobs: 0 (0 B), deleted by `regfs gc`"
    assert lines[1].startswith("Untagged manifests: 1; ")
    assert "Dangling references: 0" in lines
    assert "Problems: 0" in lines


def test_orphans_exit_1_on_dangling(store: StoreBuilder) -> None:
    img = store.img  # type: ignore[attr-defined]
    store.remove_blob(img.config.digest)
    r = invoke("orphans", str(store.root), "--json")
    assert r.exit_code == 1
    data = as_json(r)
    assert data["dangling"] == [
        {
            "repository": "app",
            "kind": "config",
            "digest": img.config.digest,
            "path": f"blobs/sha256/{img.config.digest[7:9]}/{img.config.digest[7:]}/data",
            "referrer": img.digest,
        }
    ]
    assert data["totals"]["dangling"] == 1
    text = invoke("orphans", str(store.root))
    assert text.exit_code == 1
    assert "Dangling references: 1" in text.stdout


def test_orphans_exit_1_on_problems(store: StoreBuilder) -> None:
    dead = store.dead  # type: ignore[attr-defined]
    rel = store.revision_link("app", dead.digest)
    store.write(rel, b"")
    r = invoke("orphans", str(store.root), "--json")
    assert r.exit_code == 1
    data = as_json(r)
    assert data["problems"] == [
        {
            "kind": "empty_link",
            "path": rel,
            "message": "empty link file (a crash during a write leaves these)",
            "digest": dead.digest,
            "repository": "app",
            "blocks_gc": True,
        }
    ]
    assert data["totals"]["problems"] == 1


def test_orphans_uploads_older_than(builder: StoreBuilder) -> None:
    builder.image("app", tags=["v1"])
    uid = builder.upload("app", started_at="2000-01-01T00:00:00Z", data=b"abc")
    fresh = builder.upload("app")
    data = as_json(invoke("orphans", str(builder.root), "--json"))
    (got,) = data["stale_uploads"]
    assert got.pop("age_seconds") > 20 * 365 * 86400
    assert got == {
        "repository": "app",
        "uuid": uid,
        "path": f"repositories/app/_uploads/{uid}",
        "started_at": "2000-01-01T00:00:00Z",
        "size": 3,
        "age_from": "startedat",
    }
    assert data["totals"]["stale_upload_bytes"] == 3
    future = builder.upload("app", started_at="2100-01-01T00:00:00Z", data=b"d")
    assert [
        u["uuid"] for u in as_json(invoke("orphans", str(builder.root), "--json"))["stale_uploads"]
    ] == [uid]
    # 0 is "no age limit", as for --min-age and trash purge --older-than: every upload.
    nolimit = invoke("orphans", str(builder.root), "--json", "--uploads-older-than", "0")
    assert nolimit.exit_code == 0
    assert {u["uuid"] for u in as_json(nolimit)["stale_uploads"]} == {uid, fresh, future}
    long = invoke("orphans", str(builder.root), "--json", "--uploads-older-than", "2000w")
    assert as_json(long)["stale_uploads"] == []


def test_orphans_bad_duration(store: StoreBuilder) -> None:
    r = invoke("orphans", str(store.root), "--uploads-older-than", "soon")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("regfs: error: --uploads-older-than: not a duration: 'soon'")
    assert "Traceback" not in r.stderr


# --- bad roots --------------------------------------------------------------------------------


def _assert_root_error(r: Any, path: Path, why: str) -> None:
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"regfs: error: {path}: ")
    assert why in lines[0]


@pytest.mark.parametrize("command", ["tree", "orphans"])
def test_missing_root(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "a-rather-long-folder-name-that-would-wrap-a-narrow-terminal" / "nope"
    _assert_root_error(invoke(command, str(missing)), missing, "no such folder")


@pytest.mark.parametrize("command", ["tree", "orphans"])
def test_root_is_a_file(tmp_path: Path, command: str) -> None:
    f = tmp_path / "config.yml"
    f.write_text("version: 0.1\n")
    _assert_root_error(invoke(command, str(f)), f, "not a folder")


@pytest.mark.parametrize("command", ["tree", "orphans"])
def test_empty_folder_is_not_a_registry(tmp_path: Path, command: str) -> None:
    _assert_root_error(invoke(command, str(tmp_path)), tmp_path, "not a registry storage root")


@pytest.mark.parametrize("command", ["tree", "orphans"])
def test_unreadable_root(builder: StoreBuilder, deny: Callable[[Path], None], command: str) -> None:
    deny(builder.root)
    _assert_root_error(invoke(command, str(builder.root)), builder.root, "not readable")


def test_missing_env_root(tmp_path: Path) -> None:
    missing = tmp_path / "from-env"
    r = invoke("tree", env={"REGFS_ROOT": str(missing)})
    _assert_root_error(r, missing, "no such folder")


def test_unknown_option_is_a_usage_error(store: StoreBuilder) -> None:
    r = invoke("tree", str(store.root), "--bogus")
    assert r.exit_code == 2
    assert "--bogus" in r.stderr


# --- prompts on a real terminal ------------------------------------------------------------

PROGRESS_MARKS = ("━", "╸", "╺", "scan ", "manifests ", "delete ")


def _pty(args: list[str], cwd: Path) -> Any:
    from terminal import PtySession

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="80", LINES="24")
    return PtySession([sys.executable, "-m", "regfs", *args], env=env, cwd=str(cwd))


def _assert_prompt_is_last(screen: list[str], prompt: str) -> None:
    assert screen, "empty screen"
    assert screen[-1].startswith(prompt) and screen[-1].rstrip().endswith("[y/N]:"), screen
    for line in screen:
        assert not any(m in line for m in PROGRESS_MARKS[:3]), f"progress left on screen: {line}"


@pytest.mark.parametrize("answer", ["n", "y"])
def test_gc_shows_its_plan_then_a_visible_prompt_on_a_terminal(
    store: StoreBuilder, tmp_path: Path, answer: str
) -> None:
    store.orphan_blob(b"loose")
    before = fingerprint(store.root)
    session = _pty(["gc", str(store.root), "--min-age", "0"], tmp_path)
    try:
        session.read_until("[y/N]: ")
        session.settle(1.0)  # four redraws of a live display, were one still running
        screen = session.screen()
        _assert_prompt_is_last(screen, "Delete ")
        summary = screen.index(next(s for s in screen if "will delete:" in s))
        assert summary < len(screen) - 1  # the plan summary comes first
        assert any(s.strip().startswith("blobs") for s in screen[summary:])
        session.send(answer + "\n")
        code = session.wait()
    finally:
        session.close()
    if answer == "n":
        assert code == EXIT_USAGE
        assert "not confirmed; nothing deleted" in session.output
        assert fingerprint(store.root) == before
    else:
        assert code == 0, session.output
        final = session.screen()
        assert any(line.startswith("Deleted:") for line in final)
        assert fingerprint(store.root) != before


def test_rm_preview_then_visible_prompt_on_a_terminal(store: StoreBuilder, tmp_path: Path) -> None:
    before = fingerprint(store.root)
    session = _pty(["rm", str(store.root), "app:v*"], tmp_path)
    try:
        session.read_until("[y/N]: ")
        session.settle(1.0)
        screen = session.screen()
        _assert_prompt_is_last(screen, "Remove these?")
        assert "  tag       app:v1" in screen
        session.send("\n")  # the default is no
        assert session.wait() == EXIT_USAGE
    finally:
        session.close()
    assert fingerprint(store.root) == before


def test_answering_a_prompt_leaves_json_on_stdout_clean(
    store: StoreBuilder, tmp_path: Path
) -> None:
    """`regfs gc --json > file` on a terminal: the answer's echo never reaches stdout."""
    out = tmp_path / "out.json"
    store.orphan_blob(b"loose")
    from terminal import PtySession

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color")
    cmd = f'exec "{sys.executable}" -m regfs gc "{store.root}" --min-age 0 --json > "{out}"'
    session = PtySession(["/bin/sh", "-c", cmd], env=env, cwd=str(tmp_path))
    try:
        session.read_until("[y/N]: ")
        session.send("y\n")
        assert session.wait() == 0, session.output
    finally:
        session.close()
    text = out.read_text()
    assert text.startswith("{"), repr(text[:20])
    assert json.loads(text)["status"] == "done"


# --- one set of argument rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["tree", ""],
        ["orphans", ""],
        ["gc", "", "--dry-run"],
        ["check", ""],
        ["du", ""],
        ["trash", "list", ""],
        ["trash", "purge", "", "--dry-run"],
        ["rm", "", "app:v1", "--dry-run"],
        ["restore", "", "20260101T000000Z-00000000"],
    ],
)
def test_empty_root_is_an_error_not_a_fallback(store: StoreBuilder, args: list[str]) -> None:
    r = invoke(*args, env={"REGFS_ROOT": str(store.root)})
    assert r.exit_code == EXIT_USAGE, r.stdout
    assert r.stdout == ""
    assert r.stderr.startswith("regfs: error: ROOT is empty")


def test_rm_root_rules(store: StoreBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # A single path-like argument is ROOT, so there is no target.
    for arg in (".", str(store.root), "./x", "~/r", "reg/"):
        r = invoke("rm", arg, "--dry-run")
        assert r.exit_code == EXIT_USAGE
        assert r.stderr.startswith("regfs: error: no target given"), r.stderr
    # One other argument is a target under $REGFS_ROOT.
    r = invoke("rm", "app:v1", "--dry-run", "--json", env={"REGFS_ROOT": str(store.root)})
    assert r.exit_code == 0, r.stderr
    assert as_json(r)["targets"] == ["tag app:v1"]
    # Two or more: the first is ROOT, whatever it looks like (relative paths included).
    monkeypatch.chdir(store.root.parent)
    r = invoke("rm", store.root.name, "app:v1", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    r = invoke("rm", "app:v1", "org/web", "--dry-run")
    assert r.exit_code == EXIT_USAGE
    assert r.stderr.startswith("regfs: error: app:v1: no such folder")


def test_restore_takes_root_first(store: StoreBuilder) -> None:
    r = invoke("rm", str(store.root), "org/web", "--yes", "--trash", "--json")
    assert r.exit_code == 0, r.stderr
    run_id = as_json(r)["run_id"]
    listed = as_json(invoke("trash", "list", str(store.root), "--json"))["runs"]
    assert [x["run_id"] for x in listed] == [run_id]
    r = invoke("restore", str(store.root), run_id, "--json")
    assert r.exit_code == 0, r.stderr
    doc = as_json(r)
    # trash list and restore count the same unit
    assert doc["items"] == listed[0]["items"] == len(doc["restored"]) + len(doc["already"])
    r = invoke("restore", run_id, env={"REGFS_ROOT": str(store.root)})
    assert r.exit_code == EXIT_USAGE  # the trash run is gone now
    assert "nothing in the trash" in r.stderr or "no run" in r.stderr
    r = invoke("restore", str(store.root))
    assert r.exit_code == EXIT_USAGE
    assert r.stderr.startswith("regfs: error: no RUN-ID given")
    r = invoke("restore", str(store.root), run_id, "extra")
    assert r.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "args",
    [["tree", "--repo", "nomatch"], ["check", "--repo", "nomatch"], ["rm", "nomatch", "-n"]],
)
def test_repo_no_match_is_exit_2_everywhere(store: StoreBuilder, args: list[str]) -> None:
    """One rule: a --repo glob or target that matches no repository is bad input (exit 2)."""
    cmd, rest = args[0], args[1:]
    r = invoke(cmd, str(store.root), *rest)
    assert r.exit_code == EXIT_USAGE
    assert r.stdout == ""
    assert "no repository matches 'nomatch'" in r.stderr


def test_repo_glob_is_the_same_in_every_command(builder: StoreBuilder) -> None:
    for name in ("team/web", "team/web/frontend", "team/api"):
        builder.image(name, tags=["v1"])
    root = str(builder.root)
    for glob, want in (("team/*", ["team/api", "team/web"]), ("team/**", None)):
        tree = as_json(invoke("tree", root, "--repo", glob, "--json"))
        names = [c["name"] for c in tree["children"]]
        check = as_json(invoke("check", root, "--repo", glob, "--json"))
        rm = as_json(invoke("rm", root, glob, "--dry-run", "--json"))
        assert check["checked"]["repositories"] == len(names)
        assert rm["targets"] == [f"repository {n}" for n in names]
        if want is not None:
            assert names == want
        else:
            assert names == ["team/api", "team/web", "team/web/frontend"]


# --- trash purge behaves like every deleting command -----------------------------------------


@pytest.fixture
def trashed(store: StoreBuilder) -> tuple[StoreBuilder, str]:
    r = invoke("rm", str(store.root), "org/web", "--yes", "--trash", "--json")
    assert r.exit_code == 0, r.stderr
    return store, as_json(r)["run_id"]


def test_trash_purge_dry_run_previews_and_writes_nothing(
    trashed: tuple[StoreBuilder, str],
) -> None:
    store, run_id = trashed
    r = invoke("trash", "purge", str(store.root), "--older-than", "0", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("Would purge 1 run (")
    assert run_id in r.stdout
    doc = as_json(invoke("trash", "purge", str(store.root), "--older-than", "0", "-n", "--json"))
    assert (doc["dry_run"], doc["status"], doc["purged"]) == (True, "planned", [run_id])
    assert [
        x["run_id"] for x in as_json(invoke("trash", "list", str(store.root), "--json"))["runs"]
    ] == [run_id]


def test_trash_purge_needs_yes_without_a_terminal(trashed: tuple[StoreBuilder, str]) -> None:
    store, _run_id = trashed
    r = invoke("trash", "purge", str(store.root), "--older-than", "0")
    assert r.exit_code == EXIT_USAGE
    assert "needs --yes" in r.stderr
    assert as_json(invoke("trash", "list", str(store.root), "--json"))["runs"] != []
    r = invoke("trash", "purge", str(store.root), "--older-than", "0", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "regfs trash purge will delete for good:" in r.stderr  # previewed
    assert r.stdout.startswith("Purged 1 run (")
    assert invoke("trash", "list", str(store.root)).stdout == "The trash is empty.\n"


def test_trash_purge_prompt_on_a_terminal(
    trashed: tuple[StoreBuilder, str], tmp_path: Path
) -> None:
    store, run_id = trashed
    session = _pty(["trash", "purge", str(store.root), "--older-than", "0"], tmp_path)
    try:
        session.read_until("[y/N]: ")
        screen = session.screen()
        _assert_prompt_is_last(screen, "Purge 1 run")
        assert any(run_id in line for line in screen)
        session.send("y\n")
        assert session.wait() == 0, session.output
    finally:
        session.close()
    assert as_json(invoke("trash", "list", str(store.root), "--json"))["runs"] == []


# --- output: words, counts, streams ---------------------------------------------------------


def test_rm_estimate_counts_blobs_and_uploads_apart_and_names_the_grace_period(
    builder: StoreBuilder,
) -> None:
    builder.image("app", tags=["v1"], layers=[builder.layer("only-app")])
    builder.image("keep", tags=["v1"])
    builder.upload("app", started_at="2000-01-01T00:00:00Z", data=b"abc")
    root = str(builder.root)
    young = invoke("rm", root, "app", "--dry-run", "--skip-live-check")
    assert young.exit_code == 0, young.stderr
    flat = " ".join(young.stdout.split())
    assert "`regfs gc` would reclaim 0 B now (" in flat
    assert "grace period --min-age 1h" in flat  # the grace period that keeps them is named
    now = invoke("rm", root, "keep", "--dry-run", "--min-age", "0", "--skip-live-check")
    text = " ".join(now.stdout.split())
    assert "`regfs gc` would now reclaim" in text
    assert "3 blobs" in text and "with --min-age 0" in text
    doc = as_json(
        invoke("rm", root, "keep", "--dry-run", "--min-age", "0", "--skip-live-check", "--json")
    )
    blobs = sum(b["size"] for b in doc["gc"]["blobs"])
    uploads = sum(u["size"] for u in doc["gc"]["uploads"])
    assert doc["gc_reclaimable_bytes"] == blobs + uploads


def test_warnings_go_to_stderr(store: StoreBuilder) -> None:
    for cmd in (
        ["gc", str(store.root), "--yes", "--min-age", "0", "--skip-live-check"],
        ["rm", str(store.root), "org/web", "--yes", "--skip-live-check"],
    ):
        r = invoke(*cmd)
        assert r.exit_code == 0, r.stderr
        assert "--skip-live-check" in r.stderr
        assert "WARNING" not in r.stdout and "warning" not in r.stdout


def test_orphans_and_check_render_findings_alike(store: StoreBuilder) -> None:
    rel = store.revision_link("app", store.dead.digest)  # type: ignore[attr-defined]
    store.write(rel, b"")
    orphans = invoke("orphans", str(store.root)).stdout.splitlines()
    check = invoke("check", str(store.root)).stdout.splitlines()
    block = ["empty_link (1): empty link files", f"  {rel}"]
    for lines in (orphans, check):
        i = lines.index(block[0])
        assert lines[i : i + 2] == block
        assert lines[i + 2].startswith("    empty link file")


def test_completion_scripts_and_repository_names(store: StoreBuilder) -> None:
    import subprocess

    env = dict(os.environ, _REGFS_COMPLETE="bash_source")
    out = subprocess.run(
        [sys.executable, "-c", "from regfs.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "complete " in out.stdout and "_REGFS_COMPLETE" in out.stdout
    # As a user runs it, from bash (typer detects the shell from the parent processes).
    shown = subprocess.run(
        [
            "bash",
            "-c",
            '"$0" -c "from regfs.cli import main; main()" --show-completion; exit $?',
            sys.executable,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "_REGFS_COMPLETE" in shown.stdout

    def complete(words: str) -> list[str]:
        env = dict(
            os.environ,
            _REGFS_COMPLETE="bash_complete",
            COMP_WORDS=words,
            COMP_CWORD=str(len(words.split(" ")) - 1),
        )
        res = subprocess.run(
            [sys.executable, "-c", "from regfs.cli import main; main()"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        return res.stdout.split()

    root = str(store.root)
    assert complete(f"regfs tree {root} --repo or") == ["org/web"]
    assert complete(f"regfs rm {root} a") == ["app"]
    assert complete(f"regfs rm {root} app:") == ["app:v1"]
