"""Globs over repository names and tags, with the conventions admins know from shells and git.

* ``*`` matches any run of characters within one path segment (never ``/``);
* ``**`` matches across segments: ``team/**`` is every repository under ``team/``, and
  ``**/web`` is ``web`` at any depth (``**/`` may also match nothing);
* ``?`` matches one character other than ``/``;
* ``[abc]``, ``[a-z]``, ``[!abc]`` match one character of (or not of) a class, never ``/``.

Every command that takes ``--repo`` or glob targets matches through :func:`matcher`, so
``regfs tree --repo 'team/*'`` shows exactly what ``regfs rm 'team/*'`` would remove.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from regfs.errors import UsageError

GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    """Whether ``text`` holds a glob character (``*``, ``?`` or ``[``)."""
    return bool(GLOB_CHARS & set(text))


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression for ``pattern``.

    Raises:
        UsageError: an unterminated ``[`` class.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                j = i + 2
                while j < n and pattern[j] == "*":
                    j += 1
                at_start = i == 0 or pattern[i - 1] == "/"
                if at_start and j < n and pattern[j] == "/":
                    out.append("(?:.*/)?")  # `**/`: zero or more whole segments
                    j += 1
                else:
                    out.append(".*")
                i = j
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise UsageError(f"malformed glob {pattern!r}: '[' without a closing ']'")
            body = pattern[i + 1 : j]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            out.append(f"(?!/)[^{body}]" if negate else f"(?!/)[{body}]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate: does a name match ``pattern`` (a glob, or an exact name)?"""
    if not is_glob(pattern):
        return pattern.__eq__
    rx = compile_glob(pattern)
    return lambda name: rx.fullmatch(name) is not None


def matches(name: str, pattern: str) -> bool:
    """Whether ``name`` matches ``pattern`` (a glob, or an exact name), as :func:`matcher`.

    Raises:
        UsageError: ``pattern`` is a malformed glob.
    """
    return matcher(pattern)(name)


def select(names: Iterable[str], pattern: str, *, what: str = "repository") -> list[str]:
    """The names matching ``pattern``, in their order.

    Raises:
        UsageError: nothing matches (exit 2 in every command: a filter that matches nothing
            is almost always a typo, and a script must not mistake it for an empty store).
    """
    test = matcher(pattern)
    found = [n for n in names if test(n)]
    if not found:
        raise UsageError(f"no {what} matches {pattern!r}")
    return found
