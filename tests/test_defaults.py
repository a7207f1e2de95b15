"""Every default in one module: ``regfs/defaults.py``. No other module spells the grace
period or the upload age (as option text or in seconds), so they cannot disagree again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from regfs import defaults
from regfs.duration import parse_duration
from regfs.gc.plan import GcOptions

PKG = Path(__file__).resolve().parent.parent / "regfs"
# Whose job is units, not defaults: "h" is 3600 seconds there.
UNITS = {"duration.py", "defaults.py"}


TEXTS = {"1h", "60m", "3600s", "168h", "7d", "1w"}
SECONDS = {3600.0, 604800.0}  # as floats: ``int`` 3600 is a unit (seconds per hour)
NUMBERS = {168, 604800}


def _is_default(v: object) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in TEXTS
    if isinstance(v, float):
        return v in SECONDS
    return isinstance(v, int) and not isinstance(v, bool) and v in NUMBERS


def _spelled_defaults(tree: ast.AST) -> list[str]:
    found = [
        (node.lineno, node.col_offset, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and _is_default(node.value)
    ]
    return [f"line {line}: {v!r}" for line, _col, v in sorted(found)]


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PKG.rglob("*.py")) if p.name not in UNITS],
    ids=lambda p: str(p.relative_to(PKG)),
)
def test_no_other_module_spells_a_default(path: Path) -> None:
    assert _spelled_defaults(ast.parse(path.read_text())) == []


def test_the_probe_finds_what_it_looks_for() -> None:
    src = 'a = "1h"\nb: float = 3600.0\nc = 168 * 3600.0\nd = "168h"\ne = 3600\n'
    assert _spelled_defaults(ast.parse(src)) == [
        "line 1: '1h'",
        "line 2: 3600.0",
        "line 3: 168",
        "line 3: 3600.0",
        "line 4: '168h'",
    ]


def test_texts_and_seconds_agree() -> None:
    assert defaults.MIN_AGE == parse_duration(defaults.MIN_AGE_TEXT) == 3600.0
    assert parse_duration(defaults.UPLOADS_OLDER_THAN_TEXT) == defaults.UPLOADS_OLDER_THAN
    assert defaults.UPLOADS_OLDER_THAN == 7 * 24 * 60 * 60
    assert parse_duration(defaults.TRASH_OLDER_THAN_TEXT) == defaults.TRASH_OLDER_THAN
    opts = GcOptions()
    assert (opts.min_age, opts.uploads_older_than) == (
        defaults.MIN_AGE,
        defaults.UPLOADS_OLDER_THAN,
    )
