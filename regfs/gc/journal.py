"""The run journal: ``<state>/runs/<run-id>/plan.json`` (fsynced before the first deletion)
and ``done`` (one line per finished step: ``<index>\\t<status>\\t<detail>``).

Written and read through a :class:`~regfs.storage.base.StateStore` (a state folder path is
accepted too: the local one).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from regfs.errors import RefusedError
from regfs.gc.plan import GcPlan
from regfs.gc.steps import Action, Status, parse_status
from regfs.layout.folders import LayoutError
from regfs.layout.state import DONE, PLAN_JSON, RESULT_JSON, run_dir, run_file
from regfs.storage.base import Appender, StateStore
from regfs.storage.localstate import LocalStateStore


def state_store(state: StateStore | str) -> StateStore:
    """``state`` itself, or the local state store in the folder ``state``."""
    return LocalStateStore(state) if isinstance(state, str) else state


class Journal:
    """The journal of one run: the plan first, then one line per finished step."""

    def __init__(self, state: StateStore | str, run_id: str) -> None:
        self.store = state_store(state)
        self.run_id = run_id
        self.dir = self.store.path(run_dir(run_id))
        self._done: Appender | None = None

    def write_plan(self, plan: GcPlan, command: str) -> None:
        """``plan.json``, durable before anything is deleted; then opens ``done``."""
        doc: dict[str, Any] = {
            "run_id": plan.run_id,
            "command": command,
            "v2": plan.v2,
            "created": plan.created,
            "options": asdict(plan.options),
            "actions": [a.as_dict() for a in plan.actions],
        }
        try:
            self.store.write_atomic(run_file(self.run_id, PLAN_JSON), json.dumps(doc).encode())
            self._done = self.store.open_append(run_file(self.run_id, DONE))
        except OSError as exc:
            raise RefusedError(
                f"cannot write the run journal: {exc.strerror or exc}; nothing deleted",
                path=self.dir,
            ) from None

    def step(self, index: int, status: Status, detail: str = "") -> None:
        """Record a finished step (one line: tabs and line breaks in ``detail`` become
        spaces)."""
        if self._done is not None:
            flat = detail.replace("\t", " ").replace("\n", " ").replace("\r", " ")
            self._done.write(f"{index}\t{status}\t{flat}\n")

    def sync(self) -> None:
        """Make the steps recorded so far durable (on S3: rewrite ``done``)."""
        if self._done is not None:
            self._done.sync()

    def finish(self, result: dict[str, Any]) -> None:
        """Make ``done`` durable and write ``result.json``."""
        if self._done is not None:
            self._done.sync()
            self._done.close()
            self._done = None
        self.store.write_atomic(run_file(self.run_id, RESULT_JSON), json.dumps(result).encode())

    def close(self) -> None:
        """Close ``done`` (idempotent)."""
        if self._done is not None:
            self._done.close()
            self._done = None


class JournalError(LayoutError):
    """A run's journal that regfs did not write as it stands (tampered, truncated, foreign):
    nothing it names is used. ``path`` is the offending file."""


def load_run(
    state: StateStore | str, run_id: str
) -> tuple[dict[str, Any], list[Action], dict[int, Status]]:
    """(plan document, actions, status of each finished step by index), every action checked
    through the layout (:meth:`Action.from_dict`) and every finished step against the plan.

    A last line of ``done`` without its line break (a run killed mid-write) is ignored.

    Raises:
        FileNotFoundError: no such run (a ``NotFound`` storage error).
        LayoutError: ``run_id`` is not a run id.
        JournalError: ``plan.json`` or ``done`` is not as regfs writes them.
    """
    store = state_store(state)
    plan_file = run_file(run_id, PLAN_JSON)
    raw = store.read(plan_file)
    try:
        doc = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("actions"), list):
            raise LayoutError("not a plan: no list of actions")
        if doc.get("run_id", run_id) != run_id:
            raise LayoutError(f"the plan of run {doc.get('run_id')!r}")
        actions = [Action.from_dict(a) for a in doc["actions"]]
    except (UnicodeDecodeError, ValueError, LayoutError) as exc:
        raise JournalError(
            f"run {run_id}: not a plan regfs wrote ({_why(exc)}); nothing used",
            path=store.path(plan_file),
        ) from None
    done_file = run_file(run_id, DONE)
    try:
        text = store.read(done_file).decode("utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    done: dict[int, Status] = {}
    lines = text.split("\n")
    for n, line in enumerate(lines[:-1], 1):  # the last piece has no line break
        parts = line.split("\t")
        try:
            if len(parts) < 3 or not parts[0].isdigit() or int(parts[0]) >= len(actions):
                raise LayoutError(f"line {n} is not <step>\\t<status>\\t<detail>: {line!r}")
            done[int(parts[0])] = parse_status(parts[1])
        except LayoutError as exc:
            raise JournalError(
                f"run {run_id}: not a journal regfs wrote ({_why(exc)}); nothing used",
                path=store.path(done_file),
            ) from None
    return doc, actions, done


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, LayoutError) else str(exc).splitlines()[0]
