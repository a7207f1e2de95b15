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
from regfs.gc.plan import Action, GcPlan
from regfs.storage.base import Appender, StateStore
from regfs.storage.localstate import LocalStateStore


def state_store(state: StateStore | str) -> StateStore:
    """``state`` itself, or the local state store in the folder ``state``."""
    return LocalStateStore(state) if isinstance(state, str) else state


class Journal:
    """The journal of one run: the plan first, then one line per finished step."""

    def __init__(self, state: StateStore | str, run_id: str) -> None:
        self.store = state_store(state)
        self.rel = f"runs/{run_id}"
        self.dir = self.store.path(self.rel)
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
            self.store.write_atomic(f"{self.rel}/plan.json", json.dumps(doc).encode())
            self._done = self.store.open_append(f"{self.rel}/done")
        except OSError as exc:
            raise RefusedError(
                f"cannot write the run journal: {exc.strerror or exc}; nothing deleted",
                path=self.dir,
            ) from None

    def step(self, index: int, status: str, detail: str = "") -> None:
        """Record a finished step."""
        if self._done is not None:
            self._done.write(f"{index}\t{status}\t{detail}\n")

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
        self.store.write_atomic(f"{self.rel}/result.json", json.dumps(result).encode())

    def close(self) -> None:
        """Close ``done`` (idempotent)."""
        if self._done is not None:
            self._done.close()
            self._done = None


def load_run(
    state: StateStore | str, run_id: str
) -> tuple[dict[str, Any], list[Action], dict[int, str]]:
    """(plan document, actions, status of each finished step by index).

    Raises:
        FileNotFoundError: no such run (a ``NotFound`` storage error).
    """
    store = state_store(state)
    rel = f"runs/{run_id}"
    doc = json.loads(store.read(f"{rel}/plan.json").decode("utf-8"))
    actions = [Action.from_dict(a) for a in doc["actions"]]
    done: dict[int, str] = {}
    try:
        text = store.read(f"{rel}/done").decode("utf-8")
    except FileNotFoundError:
        text = ""
    for line in text.split("\n"):
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isdigit():
            done[int(parts[0])] = parts[1]
    return doc, actions, done
