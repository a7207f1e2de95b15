"""Retention rules: the model, the command-line rule and the ``--policy`` TOML file.

One :class:`Rule` is what the command line says in one go (``--repo``, ``--tags``,
``--keep-tags``, ``--keep-last``, ``--older-than``, ``--by``), or one ``[[rule]]`` table of a
policy file. Patterns are Python regular expressions matched against the whole tag name
(:func:`re.fullmatch`: ``latest`` never matches ``not-latest``); repositories are matched
with the globs of the rest of the CLI (:mod:`regfs.pattern`).

A rule with neither ``keep_last`` nor ``older_than`` is refused: it would mean "remove every
candidate", the classic retention accident.
"""

from __future__ import annotations

import functools
import re
import shlex
import tomllib
from dataclasses import dataclass
from enum import StrEnum

from regfs.duration import format_duration, parse_duration
from regfs.errors import UsageError
from regfs.pattern import matcher

DEFAULT_KEEP_TAGS = "latest"
EVERY_TAG = ".*"
EVERY_REPOSITORY = "**"
RULE_KEYS = ("repo", "tags", "keep_tags", "keep_last", "older_than", "by")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """A rule's tag pattern, compiled once (patterns are checked when a rule is made)."""
    return re.compile(pattern)


class By(StrEnum):
    """What orders tags and gives their age."""

    PUSHED = "pushed"  # mtime of _manifests/tags/<tag>/current/link
    CREATED = "created"  # the image config's `created` (an index: its newest child's)


@dataclass(frozen=True, slots=True)
class Rule:
    """One retention rule. ``older_than`` is in seconds (None: no age limit)."""

    repos: tuple[str, ...] = (EVERY_REPOSITORY,)
    tags: str = EVERY_TAG
    keep_tags: str = DEFAULT_KEEP_TAGS
    keep_last: int | None = None
    older_than: float | None = None
    by: By = By.PUSHED
    # Where it was written: "command line" or "FILE:LINE" of its [[rule]] table.
    origin: str = "command line"

    def covers(self, repository: str) -> bool:
        """Whether the rule applies to ``repository`` (any of its globs matches)."""
        return any(matcher(g)(repository) for g in self.repos)

    def is_candidate(self, tag: str) -> bool:
        """The whole tag matches ``tags`` and not ``keep_tags`` (keep always wins)."""
        return self.selects(tag) and not self.keeps_by_name(tag)

    def selects(self, tag: str) -> bool:
        """The whole tag matches ``tags`` (``keep_tags`` not looked at)."""
        return _compiled(self.tags).fullmatch(tag) is not None

    def keeps_by_name(self, tag: str) -> bool:
        """The whole tag matches ``keep_tags``."""
        return _compiled(self.keep_tags).fullmatch(tag) is not None

    def describe(self) -> str:
        """The rule as flags, e.g. ``--repo 'team/*' --keep-last 5 --by pushed``."""
        q = shlex.quote
        parts = [f"--repo {q(g)}" for g in self.repos]
        if self.tags != EVERY_TAG:
            parts.append(f"--tags {q(self.tags)}")
        parts.append(f"--keep-tags {q(self.keep_tags)}")
        if self.keep_last is not None:
            parts.append(f"--keep-last {self.keep_last}")
        if self.older_than is not None:
            parts.append(f"--older-than {format_duration(self.older_than)}")
        parts.append(f"--by {self.by.value}")
        return " ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The rule as one entry of ``rules`` in ``regfs retain --json``.

        ``older_than_seconds`` and ``keep_last`` are null when not set.
        """
        return {
            "origin": self.origin,
            "repo": list(self.repos),
            "tags": self.tags,
            "keep_tags": self.keep_tags,
            "keep_last": self.keep_last,
            "older_than_seconds": self.older_than,
            "by": self.by.value,
        }


def make_rule(
    *,
    repos: list[str] | tuple[str, ...] | None = None,
    tags: str | None = None,
    keep_tags: str | None = None,
    keep_last: int | None = None,
    older_than: str | None = None,
    by: str | None = None,
    origin: str = "command line",
) -> Rule:
    """A validated rule from the command line's values (None: not given).

    Raises:
        UsageError: a malformed value, or neither ``keep_last`` nor ``older_than``.
    """
    where = "" if origin == "command line" else f"{origin}: "
    flag = (lambda k: f"--{k.replace('_', '-')}") if not where else (lambda k: k)
    globs = tuple(repos) if repos else (EVERY_REPOSITORY,)
    for g in globs:
        if not g:
            raise UsageError(f"{where}{flag('repo')}: empty repository glob")
        try:
            matcher(g)
        except UsageError as exc:
            raise UsageError(f"{where}{flag('repo')}: {exc}") from None
    for key, value in (("tags", tags), ("keep_tags", keep_tags)):
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise UsageError(
                    f"{where}{flag(key)}: not a regular expression: {value!r} ({exc})"
                ) from None
    if keep_last is not None and keep_last < 1:
        raise UsageError(
            f"{where}{flag('keep_last')}: must be 1 or more (got {keep_last}); "
            f"to remove every old candidate use {flag('older_than')} alone"
        )
    seconds: float | None = None
    if older_than is not None:
        try:
            seconds = parse_duration(older_than)
        except ValueError as exc:
            raise UsageError(f"{where}{flag('older_than')}: {exc}") from None
        if seconds <= 0:
            raise UsageError(
                f"{where}{flag('older_than')}: must be more than 0 (got {older_than!r}): "
                "0 would make every candidate old enough"
            )
    if keep_last is None and seconds is None:
        raise UsageError(
            f"{where}a rule needs {flag('keep_last')} or {flag('older_than')} (or both); "
            "refusing to remove every candidate"
        )
    try:
        order = By(by) if by is not None else By.PUSHED
    except ValueError:
        raise UsageError(
            f"{where}{flag('by')}: must be 'pushed' or 'created' (got {by!r})"
        ) from None
    return Rule(
        repos=globs,
        tags=EVERY_TAG if tags is None else tags,
        keep_tags=DEFAULT_KEEP_TAGS if keep_tags is None else keep_tags,
        keep_last=keep_last,
        older_than=seconds,
        by=order,
        origin=origin,
    )


# --- the policy file ---------------------------------------------------------------------------

_TABLE_RE = re.compile(r"\s*\[\[\s*(?P<name>[A-Za-z0-9_\-\"']+)\s*\]\]\s*(?:#.*)?$")
_HEADER_RE = re.compile(r"\s*\[")


def _key_re(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf"\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*=")


def _rule_lines(text: str) -> list[tuple[int, list[str]]]:
    """(line number of the header, its lines) for every ``[[rule]]`` table, in order."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for no, line in enumerate(text.splitlines(), 1):
        m = _TABLE_RE.match(line)
        if m is not None and m.group("name").strip("\"'") == "rule":
            current = []
            out.append((no, current))
            continue
        if _HEADER_RE.match(line):
            current = None  # another table: not part of a rule
        if current is not None:
            current.append(line)
    return out


def _line_of(text: str, table: int | None, key: str) -> int | None:
    """The line where ``key`` is set: in the ``table``-th ``[[rule]]`` table (0-based), or at
    the top level (``table`` None). None when it cannot be found (e.g. an inline table)."""
    pattern = _key_re(key)
    if table is None:
        for no, line in enumerate(text.splitlines(), 1):
            if _HEADER_RE.match(line):
                return None
            if pattern.match(line):
                return no
        return None
    tables = _rule_lines(text)
    if table >= len(tables):
        return None
    header, lines = tables[table]
    for i, line in enumerate(lines, 1):
        if pattern.match(line):
            return header + i
    return None


def _where(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path


def parse_policy(text: str, path: str) -> list[Rule]:
    """Every ``[[rule]]`` of a policy file, validated.

    Raises:
        UsageError: not TOML, no rule, an unknown key, or an invalid value; the message names
            the file and the line.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    for key in doc:
        if key != "rule":
            line = _line_of(text, None, key)
            if line is None:
                m = re.search(rf"^\s*\[+\s*\"?{re.escape(key)}\b", text, re.M)
                line = text.count("\n", 0, m.start()) + 1 if m else None
            raise UsageError(
                f"{_where(path, line)}: unknown key {key!r} (a policy holds [[rule]] tables)"
            )
    rules_doc = doc.get("rule")
    if not isinstance(rules_doc, list) or not rules_doc:
        raise UsageError(f"{path}: no [[rule]] table: nothing to apply")
    headers = [no for no, _ in _rule_lines(text)]
    rules = []
    for i, table in enumerate(rules_doc):
        header = headers[i] if i < len(headers) else None
        name = f"rule {i + 1}"
        if not isinstance(table, dict):
            raise UsageError(f"{_where(path, header)}: {name} is not a table")
        for key in table:
            if key not in RULE_KEYS:
                line = _line_of(text, i, key) or header
                raise UsageError(
                    f"{_where(path, line)}: {name}: unknown key {key!r} "
                    f"(known: {', '.join(RULE_KEYS)})"
                )

        def line_of(key: str, i: int = i, header: int | None = header) -> str:
            return _where(path, _line_of(text, i, key) or header)

        repos = table.get("repo")
        if isinstance(repos, str):
            repos = [repos]
        if repos is not None and (
            not isinstance(repos, list) or not all(isinstance(g, str) for g in repos) or not repos
        ):
            raise UsageError(f"{line_of('repo')}: {name}: repo must be a glob or a list of globs")
        values: dict[str, object] = {}
        for key in ("tags", "keep_tags", "older_than", "by"):
            if key in table:
                if not isinstance(table[key], str):
                    hint = ' (a duration such as "30d")' if key == "older_than" else ""
                    raise UsageError(
                        f"{line_of(key)}: {name}: {key} must be a string{hint}, got {table[key]!r}"
                    )
                values[key] = table[key]
        keep_last = table.get("keep_last")
        if keep_last is not None and (
            not isinstance(keep_last, int) or isinstance(keep_last, bool)
        ):
            raise UsageError(
                f"{line_of('keep_last')}: {name}: keep_last must be an integer, got {keep_last!r}"
            )
        try:
            rules.append(
                make_rule(
                    repos=repos,
                    tags=_str(values.get("tags")),
                    keep_tags=_str(values.get("keep_tags")),
                    keep_last=keep_last,
                    older_than=_str(values.get("older_than")),
                    by=_str(values.get("by")),
                    origin=_where(path, header),
                )
            )
        except UsageError as exc:
            # make_rule names the key first ("older_than: ..."): point at its line.
            rest = exc.message.removeprefix(f"{_where(path, header)}: ")
            key = rest.split(":", 1)[0]
            line = (_line_of(text, i, key) if key in RULE_KEYS else None) or header
            raise UsageError(f"{_where(path, line)}: {name}: {rest}") from None
    return rules


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def read_policy(path: str) -> list[Rule]:
    """:func:`parse_policy` of the file at ``path``.

    Raises:
        UsageError: the file cannot be read or is not UTF-8, or what :func:`parse_policy` raises.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_policy(text, path)
