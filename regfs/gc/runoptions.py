"""The options every deleting run shares (gc, rm, retain), passed through the library as one
set of keywords: :class:`Look` while planning, :class:`RunOptions` while running."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from regfs.gc.execute import Ops
from regfs.gc.plan import GcPlan
from regfs.scan import Progress


class Look(TypedDict, total=False):
    """What a deleting command's plan looks at: the live-registry guard, progress."""

    registry_url: str | None
    skip_live_check: bool
    progress: Progress | None


class RunOptions(Look, total=False):
    """The options every deleting run shares: its :class:`Look`, the confirmation, the seam
    for injected failures, the command line its journal and lock record."""

    confirm: Callable[[GcPlan], bool] | None
    ops: Ops | None
    command: str
