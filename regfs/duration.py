"""Durations as admins write them: ``90s``, ``30m``, ``1h``, ``7d``, ``2w``, ``0``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; units may be combined (``1h30m``). ``0`` means no limit.

    Raises:
        ValueError: with a message naming the text, when it is not a duration.
    """
    t = text.strip().lower()
    if t in ("0", "0s"):
        return 0.0
    pos, total = 0, 0.0
    for m in _RE.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 1h, 7d, or 0)")
    return total


def format_duration(seconds: float) -> str:
    """``seconds`` as a duration text that :func:`parse_duration` reads back to the same value.

    The largest unit that divides it exactly (``7d``, ``90m``), else seconds with no trailing
    zeros (``1.5s``); ``"0"`` for zero or less (no limit).
    """
    if seconds <= 0:
        return "0"
    for unit, n in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{int(seconds // n)}{unit}"
    # Not ``:g``, which turns 1234567 into "1.23457e+06", a text parse_duration rejects.
    return f"{seconds:f}".rstrip("0").rstrip(".") + "s"


# The one rule for every age limit (--min-age, --older-than, --uploads-older-than): a limit of
# 0 (or less) means "no limit", so everything counts as old enough. Every command decides
# through these two functions, so the rule cannot differ between them.


def is_older(age: float, limit: float) -> bool:
    """True when something ``age`` seconds old is past a limit of ``limit`` seconds.

    ``limit <= 0`` is no limit: everything is past it (``--min-age 0`` keeps nothing for its
    youth, ``trash purge --older-than 0`` purges every run, ``--uploads-older-than 0`` makes
    every unfinished upload stale).
    """
    return limit <= 0 or age > limit


def cutoff(now: float, limit: float) -> float:
    """The newest timestamp still past ``limit`` (``+inf`` when there is no limit).

    ``t < cutoff(now, limit)`` is :func:`is_older` for a timestamp ``t``.
    """
    return now - limit if limit > 0 else float("inf")
