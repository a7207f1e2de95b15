"""Retention rules: the command-line rule and the --policy TOML file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfs.errors import UsageError
from regfs.retain.policy import By, Rule, make_rule, parse_policy


def test_defaults_every_repository_every_tag_keep_latest() -> None:
    r = make_rule(keep_last=3)
    assert r.repos == ("**",) and r.tags == ".*" and r.keep_tags == "latest"
    assert r.by is By.PUSHED and r.older_than is None
    assert r.covers("a") and r.covers("team/deep/app")


def test_patterns_are_anchored() -> None:
    r = make_rule(keep_last=1, tags="v1")
    assert r.is_candidate("v1")
    assert not r.is_candidate("v10") and not r.is_candidate("xv1")
    assert r.keeps_by_name("latest") and not r.keeps_by_name("not-latest")
    assert r.is_candidate("v1") and not make_rule(keep_last=1).is_candidate("latest")
    assert make_rule(keep_last=1).is_candidate("not-latest")


def test_keep_wins_over_tags() -> None:
    r = make_rule(keep_last=1, tags="v.*", keep_tags="v1\\..*")
    assert not r.is_candidate("v1.2") and r.is_candidate("v2.0")


def test_repo_globs_are_the_clis() -> None:
    r = make_rule(keep_last=1, repos=["team/*"])
    assert r.covers("team/app") and not r.covers("team/a/b") and not r.covers("other")
    assert make_rule(keep_last=1, repos=["team/**"]).covers("team/a/b")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs --keep-last or --older-than"),
        ({"tags": "v.*"}, "needs --keep-last or --older-than"),
        ({"keep_last": 0}, "--keep-last: must be 1 or more"),
        ({"keep_last": -2}, "--keep-last: must be 1 or more"),
        ({"older_than": "0"}, "--older-than: must be more than 0"),
        ({"older_than": "soon"}, "--older-than: not a duration"),
        ({"keep_last": 1, "tags": "("}, "--tags: not a regular expression"),
        ({"keep_last": 1, "keep_tags": "[a"}, "--keep-tags: not a regular expression"),
        ({"keep_last": 1, "by": "built"}, "--by: must be 'pushed' or 'created'"),
        ({"keep_last": 1, "repos": ["a[b"]}, "--repo:"),
    ],
)
def test_bad_flags_are_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_rule(**kwargs)  # type: ignore[arg-type]
    assert message in str(exc.value)
    assert exc.value.exit_code == 2


POLICY = """\
# nightly cleanup
[[rule]]
repo = "team/*"
tags = "dev-.*"
keep_last = 3

[[rule]]
repo = ["team/*", "ci/**"]
keep_tags = "latest|stable"
older_than = "30d"
keep_last = 10
by = "created"
"""


def test_policy_file() -> None:
    rules = parse_policy(POLICY, "p.toml")
    assert rules == [
        Rule(("team/*",), "dev-.*", "latest", 3, None, By.PUSHED, "p.toml:2"),
        Rule(("team/*", "ci/**"), ".*", "latest|stable", 10, 30 * 86400.0, By.CREATED, "p.toml:7"),
    ]


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (("keep_last = 3", "keep_lats = 3"), "p.toml:5", "rule 1: unknown key 'keep_lats'"),
        (('by = "created"', 'by = "built"'), "p.toml:12", "rule 2: by: must be 'pushed'"),
        (('older_than = "30d"', "older_than = 30"), "p.toml:10", "older_than must be a string"),
        (('older_than = "30d"', 'older_than = "0"'), "p.toml:10", "must be more than 0"),
        (("keep_last = 10", "keep_last = 0"), "p.toml:11", "keep_last: must be 1 or more"),
        (("keep_last = 10", 'keep_last = "10"'), "p.toml:11", "keep_last must be an integer"),
        (("keep_last = 10", "keep_last = true"), "p.toml:11", "keep_last must be an integer"),
        (('tags = "dev-.*"', 'tags = "dev-("'), "p.toml:4", "tags: not a regular expression"),
        (('repo = "team/*"', "repo = 5"), "p.toml:3", "repo must be a glob"),
        (('repo = "team/*"', "repo = []"), "p.toml:3", "repo must be a glob"),
        (("keep_last = 3\n", ""), "p.toml:2", "rule 1: a rule needs keep_last or older_than"),
        (("# nightly cleanup", "owner = 'me'"), "p.toml:1", "unknown key 'owner'"),
        (("# nightly cleanup", "[meta]\nx = 1"), "p.toml:1", "unknown key 'meta'"),
    ],
)
def test_policy_errors_name_the_line(edit: tuple[str, str], where: str, message: str) -> None:
    text = POLICY.replace(*edit, 1)
    assert text != POLICY
    with pytest.raises(UsageError) as exc:
        parse_policy(text, "p.toml")
    assert str(exc.value).startswith(where + ": "), str(exc.value)
    assert message in str(exc.value)


def test_policy_without_rules_or_not_toml() -> None:
    with pytest.raises(UsageError, match="no \\[\\[rule\\]\\] table"):
        parse_policy("# empty\n", "p.toml")
    with pytest.raises(UsageError, match=r"p.toml: not valid TOML: .*line 1"):
        parse_policy("[[rule]\n", "p.toml")


def test_quoted_keys_are_found() -> None:
    with pytest.raises(UsageError) as exc:
        parse_policy('[[rule]]\nkeep_last = 1\n"keep" = 2\n', "p.toml")
    assert str(exc.value).startswith("p.toml:3: ")


@given(st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
def test_any_unknown_key_is_named_with_its_line(key: str) -> None:
    if key in ("repo", "tags", "keep_tags", "keep_last", "older_than", "by"):
        return
    text = f"[[rule]]\nkeep_last = 2\n\n[[rule]]\nolder_than = '1d'\n{key} = 1\n"
    with pytest.raises(UsageError) as exc:
        parse_policy(text, "f.toml")
    assert str(exc.value).startswith(f"f.toml:6: rule 2: unknown key {key!r}")
