"""Digest strings, parsed as strictly as distribution's go-digest does.

A digest is kept as its canonical ``"<alg>:<hex>"`` string, interned so that the many
references to one blob share a single object.
"""

from __future__ import annotations

import re
import sys

# Algorithms distribution accepts, with the length of their lowercase hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALG_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*")
_ENC_RE = re.compile(r"[a-zA-Z0-9=_-]+")
_HEX_RE = {alg: re.compile(f"[a-f0-9]{{{n}}}") for alg, n in ALGORITHMS.items()}
_SHA256_HEX = _HEX_RE["sha256"]
# Digests already validated, so a blob referenced many times is checked once.
VALIDATED: dict[str, str] = {}
_VALID_MAX = 4_000_000


class DigestError(ValueError):
    """The text is not a digest distribution would accept; the message says why."""

    def __init__(self, message: str, kind: str = "garbage") -> None:
        super().__init__(message)
        self.kind = kind


def parse_digest(text: str) -> str:
    """Return the canonical, interned digest for ``text`` or raise :class:`DigestError`.

    Mirrors ``digest.Parse`` + ``Validate``: ``alg:encoded`` with a known algorithm and an
    encoded part of exactly the right length in lowercase hex. Nothing is stripped: a trailing
    newline is an error, as it is for the registry.
    """
    known = VALIDATED.get(text)
    if known is not None:
        return known
    if len(text) == 71 and text.startswith("sha256:") and _SHA256_HEX.fullmatch(text, 7):
        return _remember(text)
    alg, sep, enc = text.partition(":")
    if not sep:
        raise DigestError(f"not a digest (no ':'): {_show(text)}")
    if not _ALG_RE.fullmatch(alg) or not _ENC_RE.fullmatch(enc):
        raise DigestError(f"not a digest: {_show(text)}")
    if alg not in ALGORITHMS:
        raise DigestError(f"unknown digest algorithm {alg!r}", kind="unknown_algorithm")
    if not _HEX_RE[alg].fullmatch(enc):
        raise DigestError(
            f"{alg} digest must be {ALGORITHMS[alg]} lowercase hex characters: {_show(text)}"
        )
    return _remember(text)


def _remember(text: str) -> str:
    canon = sys.intern(text)
    if len(VALIDATED) < _VALID_MAX:
        VALIDATED[canon] = canon
    return canon


def is_hex_for(alg: str, name: str) -> bool:
    """True when ``name`` is a valid encoded part for algorithm ``alg``."""
    pattern = _HEX_RE.get(alg)
    return pattern is not None and pattern.fullmatch(name) is not None


def make_digest(alg: str, hexpart: str) -> str:
    """Build the interned digest from parts already validated with :func:`is_hex_for`."""
    return sys.intern(f"{alg}:{hexpart}")


def split_digest(digest: str) -> tuple[str, str]:
    """Split a canonical digest into (algorithm, hex)."""
    alg, _, hexpart = digest.partition(":")
    return alg, hexpart


def short(digest: str, n: int = 12) -> str:
    """The ``sha256:0123456789ab`` form used in tables and trees."""
    alg, hexpart = split_digest(digest)
    return f"{alg}:{hexpart[:n]}"


def _show(text: str, limit: int = 80) -> str:
    shown = repr(text[:limit])
    return shown + ("..." if len(text) > limit else "")
