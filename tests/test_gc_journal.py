"""The run journal read back: ``plan.json`` and ``done`` are checked through the layout before
``regfs restore`` (the real path, through the CLI) uses anything they name; a tampered journal
is one line naming the file, exit 2, and nothing moves."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from gc_helpers import fingerprint
from typer.testing import CliRunner

from regfs.cli import app
from regfs.errors import EXIT_USAGE
from regfs.gc.journal import Journal, JournalError, load_run
from regfs.gc.steps import Status, Step
from regfs.storage.localstate import LocalStateStore

runner = CliRunner()


def _trash_run(tmp_path: Path) -> tuple[Path, str]:
    root = rr.extract_fixture("demo", tmp_path / "r")
    r = runner.invoke(
        app,
        ["gc", str(root), "--delete-untagged", "--min-age", "0", "--trash", "--yes", "--json"],
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["blobs"] and doc["folders"], "the fixture must give gc something to move"
    return root, str(doc["run_id"])


def _everything(root: Path) -> dict[str, object]:
    """The tree and regfs's state (trash and journals) alike."""
    out = fingerprint(root)
    for cur, _dirs, files in os.walk(root / ".regfs"):
        for f in files:
            p = os.path.join(cur, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def _edit_plan(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], str]:
    def apply(run: Path) -> str:
        doc = json.loads((run / "plan.json").read_text())
        edit(doc)
        (run / "plan.json").write_text(json.dumps(doc))
        return "plan.json"

    return apply


def _first(step: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda doc: next(a for a in doc["actions"] if a["step"] == step)


def _set(step: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda doc: _first(step)(doc).__setitem__(key, value)


def _write(name: str, data: str) -> Callable[[Path], str]:
    def apply(run: Path) -> str:
        (run / name).write_text(data)
        return name

    return apply


def _append_done(line: str) -> Callable[[Path], str]:
    def apply(run: Path) -> str:
        with open(run / "done", "a") as f:
            f.write(line)
        return "done"

    return apply


TAMPERINGS = {
    "path outside the store": _edit_plan(_set("blob", "path", "../../../outside")),
    "absolute path": _edit_plan(_set("blob", "path", "/etc")),
    "unknown step": _edit_plan(_set("blob", "step", "rmtree")),
    "path of another level": _edit_plan(_set("blob", "path", "repositories/demo")),
    "folder step on a non-layout path": _edit_plan(_set("folder", "path", "tmp/x")),
    "another run's plan": _edit_plan(lambda doc: doc.__setitem__("run_id", "x")),
    "no actions": _edit_plan(lambda doc: doc.pop("actions")),
    "not JSON": _write("plan.json", "{not json"),
    "not UTF-8": lambda run: (run / "plan.json").write_bytes(b"\xff\xfe") and "plan.json",
    "done: index past the plan": _append_done("100000\tdone\t\n"),
    "done: unknown status": _append_done("0\tdeleted\t\n"),
    "done: not a line of the journal": _append_done("rm -rf /\n"),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_restore_of_a_tampered_journal_refuses(tmp_path: Path, name: str) -> None:
    root, run_id = _trash_run(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    run = root / ".regfs" / "runs" / run_id
    bad = TAMPERINGS[name](run)
    before = _everything(root)
    r = runner.invoke(app, ["restore", str(root), run_id])
    assert r.exit_code == EXIT_USAGE, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"regfs: error: {run / bad}: run {run_id}: not a "), lines
    assert "nothing used" in lines[0]
    assert _everything(root) == before
    assert list(outside.iterdir()) == []


def test_restore_of_an_untouched_journal_works(tmp_path: Path) -> None:
    root, run_id = _trash_run(tmp_path)
    r = runner.invoke(app, ["restore", str(root), run_id, "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["restored"]


def test_a_last_line_cut_short_is_ignored(tmp_path: Path) -> None:
    """A run killed while writing ``done`` leaves a last line without its line break: what
    the finished lines say still counts, and restore brings them back."""
    root, run_id = _trash_run(tmp_path)
    done = root / ".regfs" / "runs" / run_id / "done"
    done.write_text(done.read_text() + "3\tdo")
    _doc, actions, finished = load_run(str(root / ".regfs"), run_id)
    assert finished and set(finished.values()) == {Status.DONE} and actions
    r = runner.invoke(app, ["restore", str(root), run_id, "--json"])
    assert r.exit_code == 0, r.stderr


def test_journal_lines_stay_one_line(tmp_path: Path) -> None:
    """A detail holding tabs or line breaks (a file name can) is flattened when written."""
    state = LocalStateStore(str(tmp_path / ".regfs"))
    j = Journal(state, "20260101T000000Z-0123abcd")
    j._done = state.open_append("runs/20260101T000000Z-0123abcd/done")  # write_plan's second half
    j.step(0, Status.SKIPPED, "a\tb\nc")
    j.close()
    assert (tmp_path / ".regfs/runs/20260101T000000Z-0123abcd/done").read_text() == (
        "0\tskipped\ta b c\n"
    )


def test_load_run_names_the_file(tmp_path: Path) -> None:
    root, run_id = _trash_run(tmp_path)
    plan = root / ".regfs" / "runs" / run_id / "plan.json"
    doc = json.loads(plan.read_text())
    doc["actions"][0]["step"] = "nope"
    plan.write_text(json.dumps(doc))
    with pytest.raises(JournalError) as exc:
        load_run(str(root / ".regfs"), run_id)
    assert exc.value.path == str(plan) and "unknown step 'nope'" in exc.value.message
    assert Step.FOLDER in {Step(a["step"]) for a in doc["actions"][1:]}
