"""The run journal: ``<state>/runs/<run-id>/plan.json`` (fsynced before the first deletion)
and ``done`` (one line per finished step: ``<index>\\t<status>\\t<detail>``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import IO, Any

from regfs.gc.plan import Action, GcPlan


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    def __init__(self, state: str, run_id: str) -> None:
        self.dir = os.path.join(state, "runs", run_id)
        self._done: IO[str] | None = None

    def write_plan(self, plan: GcPlan, command: str) -> None:
        os.makedirs(self.dir, exist_ok=True)
        doc: dict[str, Any] = {
            "run_id": plan.run_id,
            "command": command,
            "v2": plan.v2,
            "created": plan.created,
            "options": asdict(plan.options),
            "actions": [a.as_dict() for a in plan.actions],
        }
        tmp = os.path.join(self.dir, "plan.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.dir, "plan.json"))
        _fsync_dir(self.dir)
        self._done = open(os.path.join(self.dir, "done"), "a", encoding="utf-8")  # noqa: SIM115

    def step(self, index: int, status: str, detail: str = "") -> None:
        if self._done is not None:
            self._done.write(f"{index}\t{status}\t{detail}\n")
            self._done.flush()

    def finish(self, result: dict[str, Any]) -> None:
        if self._done is not None:
            os.fsync(self._done.fileno())
            self._done.close()
            self._done = None
        with open(os.path.join(self.dir, "result.json"), "w", encoding="utf-8") as f:
            json.dump(result, f)

    def close(self) -> None:
        if self._done is not None:
            self._done.close()
            self._done = None


def load_run(state: str, run_id: str) -> tuple[dict[str, Any], list[Action], dict[int, str]]:
    """(plan document, actions, status of each finished step by index)."""
    d = os.path.join(state, "runs", run_id)
    with open(os.path.join(d, "plan.json"), encoding="utf-8") as f:
        doc = json.load(f)
    actions = [Action.from_dict(a) for a in doc["actions"]]
    done: dict[int, str] = {}
    try:
        with open(os.path.join(d, "done"), encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2 and parts[0].isdigit():
                    done[int(parts[0])] = parts[1]
    except FileNotFoundError:
        pass
    return doc, actions, done
