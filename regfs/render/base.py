"""The small pieces every renderer shares: sizes, plurals, nouns, timestamps, wrapping, JSON.

Every text renderer goes through these, so the rules of :mod:`regfs.render` (identifiers
never cut, counts through :func:`plural`, sizes through :func:`size`, lines wrapped at spaces
by :func:`wrap_lines`) hold in one place.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import humanize

from regfs.model.digest import short

# The ``schema`` field of every --json document (regfs/schemas/).
SCHEMA_VERSION = 1


def size(n: int | None) -> str:
    """A size in decimal units, one decimal (``1.2 MB``, ``512 B``); ``?`` when unknown."""
    if n is None:
        return "?"
    text = str(humanize.naturalsize(n, binary=False, format="%.1f"))
    return text.replace(" Bytes", " B").replace(" Byte", " B")


# singular, plural: what each plan step, kept kind and count is called in text.
NOUNS: dict[str, tuple[str, str]] = {
    "tag": ("tag", "tags"),
    "tag_index": ("tag history entry", "tag history entries"),
    "revision": ("manifest", "manifests"),
    "layer_link": ("layer link", "layer links"),
    "upload": ("upload", "uploads"),
    "blob": ("blob", "blobs"),
    "folder": ("folder", "folders"),
    "item": ("item", "items"),
    "run": ("run", "runs"),
    "file": ("file", "files"),
    "repository": ("repository", "repositories"),
    "manifest": ("manifest", "manifests"),
    "problem": ("problem", "problems"),
    "entry": ("entry", "entries"),
}


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 tag``, ``2 tags``, ``3 tag history entries``: the one place plurals are made."""
    one, many = NOUNS.get(noun, (noun, plural_form or noun + "s"))
    if plural_form is not None:
        many = plural_form
    return f"{count} {one if count == 1 else many}"


def noun(kind: str, count: int = 2) -> str:
    """What a step/kind is called in text (``layer_link`` -> ``layer links``)."""
    one, many = NOUNS.get(kind, (kind.replace("_", " "), kind.replace("_", " ") + "s"))
    return one if count == 1 else many


def to_json(data: Any) -> str:
    """A --json document as printed: indented by two, keys in the order they were built."""
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def rfc3339(value: datetime | float | None) -> str | None:
    """A UTC RFC 3339 timestamp (``2026-11-29T01:15:00Z``), from a datetime or epoch seconds."""
    if value is None:
        return None
    dt = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wrap_lines(lines: Iterable[str], width: int) -> list[str]:
    """Wrap each line longer than ``width`` at spaces, never inside a word.

    Continuation lines keep the line's indentation plus two columns. A word longer than the
    room left (a full digest, a long path) stands alone on its line, whole.
    """
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        body = line.lstrip(" ")
        indent = " " * (len(line) - len(body))
        out.extend(
            textwrap.wrap(
                body,
                width=width,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [line]
        )
    return out


def quote(text: str) -> str:
    """``text`` as a shell word, for a command line the user may copy."""
    return shlex.quote(text)


def wrapped(lines: Iterable[str], width: int) -> str:
    """``lines`` wrapped to ``width`` (:func:`wrap_lines`) and joined into one text."""
    return "\n".join(wrap_lines(lines, width))


_DIGEST_RE = re.compile(r"\b(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})\b")


def _short_match(m: re.Match[str]) -> str:
    return short(m.group(0))


def shorten_digests(text: str) -> str:
    """``text`` with every full digest in it shortened to 12 hex digits (``--json`` has
    them whole)."""
    return _DIGEST_RE.sub(_short_match, text)


def short_type(media_type: str, limit: int = 28) -> str:
    """``application/vnd.dev.cosign.artifact.sig.v1+json`` -> ``dev.cosign.artifact.sig.v1``.

    A decoration (``--json`` has the media type whole), so it may be shortened.
    """
    text = media_type.rsplit("/", 1)[-1].removeprefix("vnd.").split("+", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
