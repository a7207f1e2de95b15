"""regfs.rootargs: which argument is ROOT, from the arguments alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfs.errors import UsageError
from regfs.rootargs import path_like, split_root


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (".", True),
        ("..", True),
        ("/srv/reg", True),
        ("./reg", True),
        ("../reg", True),
        ("~/reg", True),
        ("reg/", True),
        ("s3://bucket/prefix", True),
        ("app", False),
        ("app:v1", False),
        ("team/app@sha256:" + "0" * 64, False),
        ("20261205T120000Z-1234", False),
    ],
)
def test_path_like(arg: str, expected: bool) -> None:
    assert path_like(arg) is expected


# A repository name as the distribution spec allows it (lowercase components).
_component = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", fullmatch=True)
_names = st.lists(_component, min_size=1, max_size=4).map("/".join)


@given(
    _names, st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
)
def test_no_repository_or_tag_reference_looks_like_a_path(name: str, tag: str | None) -> None:
    ref = name if tag is None else f"{name}:{tag}"
    assert not path_like(ref)
    assert split_root([ref], "target") == (None, [ref])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["app:v1"], (None, ["app:v1"])),
        (["/srv/reg", "app:v1", "b"], ("/srv/reg", ["app:v1", "b"])),
        (["s3://b/p", "app"], ("s3://b/p", ["app"])),
    ],
)
def test_split_root(args: list[str], expected: tuple[str | None, list[str]]) -> None:
    assert split_root(args, "target") == expected


@pytest.mark.parametrize(
    ("args", "single", "message"),
    [
        ([], False, "no target given"),
        (["."], False, "ROOT is '.'"),
        (["./x/"], False, "no target given"),
        (["s3://b/p"], False, "ROOT is 's3://b/p'"),
        (["/r", "a", "b"], True, "one target expected after ROOT, got 2: a b"),
    ],
)
def test_split_root_refuses(args: list[str], single: bool, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        split_root(args, "target", single=single)
