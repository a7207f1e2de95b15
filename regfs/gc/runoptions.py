"""The options every deleting run shares (gc, rm, retain), passed through the library as one
set of keywords: :class:`Look` while planning, :class:`RunOptions` while running."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def check_options(given: Mapping[str, object], function: str) -> None:
    """Refuse a keyword that is not one of :class:`RunOptions`, as Python refuses a function's
    unknown keyword (a ``**kw`` of them would otherwise take a misspelt one silently).

    Raises:
        TypeError: ``given`` has a key :class:`RunOptions` does not.
    """
    for name in given:
        if name not in RunOptions.__optional_keys__:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
