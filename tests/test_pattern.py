"""regfs.pattern: the one glob matcher every --repo and rm target goes through."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfs.errors import UsageError
from regfs.pattern import is_glob, matches, select

NAMES = [
    "library/alpine",
    "library/alpine/slim",
    "library/python",
    "team/web",
    "team/web/frontend",
    "team/api",
    "web",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("library/*", ["library/alpine", "library/python"]),  # not library/alpine/slim
        ("library/**", ["library/alpine", "library/alpine/slim", "library/python"]),
        ("team/*", ["team/web", "team/api"]),  # not team/web/frontend
        ("team/**", ["team/web", "team/web/frontend", "team/api"]),
        ("**/web", ["team/web", "web"]),  # `**/` may match no segment at all
        ("**", NAMES),
        ("*", ["web"]),
        ("team/?pi", ["team/api"]),
        ("team/[a-v]*", ["team/api"]),
        ("team/[!a]*", ["team/web"]),
        ("library/alpine", ["library/alpine"]),  # no glob: the exact name
        ("*/*/*", ["library/alpine/slim", "team/web/frontend"]),
        ("**/slim", ["library/alpine/slim"]),
        ("library/**/slim", ["library/alpine/slim"]),
    ],
)
def test_globs_follow_the_shell_and_git_conventions(pattern: str, expected: list[str]) -> None:
    assert [n for n in NAMES if matches(n, pattern)] == expected


def test_question_mark_and_classes_never_match_a_slash() -> None:
    assert not matches("a/b", "a?b")
    assert not matches("a/b", "a[/]b")
    assert not matches("a/b", "a[!x]b")


def test_select_raises_when_nothing_matches() -> None:
    with pytest.raises(UsageError, match="no repository matches 'nope/\\*'"):
        select(NAMES, "nope/*")
    assert select(NAMES, "web") == ["web"]


def test_malformed_class_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="without a closing"):
        matches("a", "[abc")


def test_is_glob() -> None:
    assert is_glob("a*") and is_glob("a?") and is_glob("a[bc]")
    assert not is_glob("library/alpine") and not is_glob("v1.0")


segment = st.text(alphabet="abc.-_", min_size=1, max_size=4)
name = st.lists(segment, min_size=1, max_size=4).map("/".join)
simple_glob = st.text(alphabet="abc.*?", min_size=1, max_size=6).filter(lambda g: "**" not in g)


@given(name, simple_glob)
def test_star_is_fnmatch_within_one_segment(n: str, g: str) -> None:
    """Within one segment the glob agrees with fnmatch; across segments `*` never crosses."""
    if "/" not in n:
        assert matches(n, g) == fnmatch.fnmatchcase(n, g)
    else:
        assert not matches(n, g)  # a slash-free pattern without ** never spans segments


@given(name)
def test_double_star_matches_everything(n: str) -> None:
    assert matches(n, "**")
    first = n.split("/", 1)[0]
    assert matches(n, f"{first}/**") == ("/" in n)
