"""regfs's own state layout, relative to its state folder (``<rootdirectory>/.regfs``).

``runs/<run-id>/{plan.json,done,result.json}`` is a run's journal, ``trash/<run-id>/`` what a
``--trash`` run moved away, ``lock`` the lock. Every run id goes through
:func:`~regfs.layout.folders.check_run_id` before it names a path.
"""

from __future__ import annotations

from regfs.layout import join
from regfs.layout.folders import check_run_id

RUNS = "runs"
TRASH = "trash"
PLAN_JSON = "plan.json"
DONE = "done"
RESULT_JSON = "result.json"


def run_dir(run_id: str) -> str:
    """``runs/<run-id>``: a run's journal folder."""
    return join(RUNS, check_run_id(run_id))


def run_file(run_id: str, name: str) -> str:
    """``runs/<run-id>/<name>`` (:data:`PLAN_JSON`, :data:`DONE`, :data:`RESULT_JSON`)."""
    return join(run_dir(run_id), name)


def trash_dir(run_id: str) -> str:
    """``trash/<run-id>``: what a ``--trash`` run moved away."""
    return join(TRASH, check_run_id(run_id))
