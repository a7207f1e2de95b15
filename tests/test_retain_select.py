"""The tag selection of retention rules: examples for each sentence, and properties."""

from __future__ import annotations

import random

from builder import StoreBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from regfs.retain.policy import Rule, make_rule
from regfs.retain.select import RepoSelection, TagInfo, select, select_repository
from regfs.scan import ScanMode

NOW = 1_800_000_000.0
H = 3600.0
D = 86400.0


def run(tags: list[TagInfo], *rules: Rule, min_age: float = H, name: str = "app") -> RepoSelection:
    out = select_repository(name, tags, list(rules), now=NOW, min_age=min_age)
    assert out is not None
    return out


def removed(sel: RepoSelection) -> list[str]:
    return sorted(t.tag for t in sel.removed)


def aged(**days: float) -> list[TagInfo]:
    return [TagInfo(t, f"sha256:{i:064x}", NOW - d * D) for i, (t, d) in enumerate(days.items())]


def test_keep_last_alone_keeps_the_newest() -> None:
    tags = aged(v1=5, v2=4, v3=3, v4=2, latest=9)
    sel = run(tags, make_rule(keep_last=2))
    assert removed(sel) == ["v1", "v2"]
    assert [t.tag for t in sel.kept] == ["v4", "v3", "latest"]  # newest first


def test_older_than_alone() -> None:
    sel = run(aged(a=10, b=6, c=1), make_rule(older_than="5d"))
    assert removed(sel) == ["a", "b"]


def test_both_means_outside_newest_n_and_older() -> None:
    tags = aged(a=10, b=9, c=8, d=2, e=1)
    sel = run(tags, make_rule(keep_last=1, older_than="5d"))
    assert removed(sel) == ["a", "b", "c"]  # d is outside the newest 1 but young
    sel = run(tags, make_rule(keep_last=4, older_than="5d"))
    assert removed(sel) == ["a"]


def test_regex_with_keep_regex_and_latest() -> None:
    tags = aged(**{"v1.0": 9, "v1.1": 8, "v2.0": 7, "dev-1": 9, "latest": 9, "not-latest": 9})
    sel = run(tags, make_rule(tags="v.*", keep_tags="v1\\.0", older_than="1d"))
    assert removed(sel) == ["v1.1", "v2.0"]
    sel = run(tags, make_rule(older_than="1d"))
    assert "latest" not in removed(sel) and "not-latest" in removed(sel)


def test_ties_break_by_name_whatever_the_listing_order() -> None:
    tags = [TagInfo(t, None, NOW - 2 * D) for t in "dcba"] + [TagInfo("z", None, NOW - 3 * D)]
    for _ in range(5):
        random.shuffle(tags)
        assert removed(run(tags, make_rule(keep_last=2))) == ["c", "d", "z"]


def test_equal_seconds_refuse_the_repository() -> None:
    tags = [TagInfo(t, None, NOW - 9 * D + 0.1 * i) for i, t in enumerate("abc")]
    sel = run(tags, make_rule(keep_last=1))
    assert sel.refused is not None and "same second" in sel.refused
    assert sel.removed == [] and len(sel.kept) == 3
    created = [TagInfo(t.tag, None, t.pushed_at, NOW - i * D) for i, t in enumerate(tags)]
    sel = run(created, make_rule(keep_last=1, by="created"))
    assert sel.refused is None and removed(sel) == ["b", "c"]


def test_by_created_and_unknown_created_is_kept() -> None:
    tags = [
        TagInfo("old-build", None, NOW - 1 * D, NOW - 400 * D),
        TagInfo("new-build", None, NOW - 9 * D, NOW - 2 * D),
        TagInfo("unknown", None, NOW - 30 * D, None),
    ]
    sel = run(tags, make_rule(older_than="7d", by="created"))
    assert removed(sel) == ["old-build"]
    assert "no `created`" in next(t.reason for t in sel.kept if t.tag == "unknown")


def test_min_age_protects_whatever_the_rule() -> None:
    tags = aged(a=10, b=0.01)
    sel = run(tags, make_rule(keep_last=1, by="created"), min_age=H)
    assert removed(sel) == []  # created unknown: kept
    tags = [TagInfo("a", None, NOW - 60, NOW - 100 * D), TagInfo("b", None, NOW - 60, NOW - D)]
    sel = run(tags, make_rule(older_than="7d", by="created"), min_age=H)
    assert removed(sel) == []
    assert "--min-age 1h" in next(t.reason for t in sel.kept if t.tag == "a")
    assert removed(run(tags, make_rule(older_than="7d", by="created"), min_age=0)) == ["a"]


def test_overlapping_rules_any_keep_wins() -> None:
    tags = aged(**{"dev-1": 30, "dev-2": 20, "dev-3": 1, "v1": 40, "v2": 35, "stable": 50})
    rules = [
        make_rule(tags="dev-.*", keep_last=1),
        make_rule(older_than="25d", keep_tags="stable|v2"),
    ]
    sel = run(tags, *rules)
    # dev-1, dev-2 outside rule 1's newest 1; rule 2 keeps dev-2 (younger than 25d).
    assert removed(sel) == ["dev-1", "v1"]


def test_uncovered_repositories_are_untouched() -> None:
    assert (
        select_repository(
            "other", aged(a=9), [make_rule(repos=["team/*"], keep_last=1)], now=NOW, min_age=0
        )
        is None
    )


def test_unreadable_repository_refused() -> None:
    out = select_repository(
        "a", aged(a=9, b=1), [make_rule(keep_last=1)], now=NOW, min_age=0, unreadable="cannot read"
    )
    assert out is not None and out.refused == "cannot read" and out.removed == []


def test_select_reads_pushed_at_from_the_tag_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    b = StoreBuilder(tmp_path)
    img = b.image("app", tags=["v1", "v2", "v3"], layers=[b.layer("x")])
    for i, t in enumerate(["v1", "v2", "v3"]):
        link = b.path(f"repositories/app/_manifests/tags/{t}/current/link")
        os.utime(link, (NOW - (10 - i) * D, NOW - (10 - i) * D))
    snap = b.scan(mode=ScanMode.LAZY)
    sel = select(snap, [make_rule(keep_last=1)], now=NOW, min_age=H)
    assert sel.removed_tags() == [("app", "v2"), ("app", "v1")]  # newest first
    assert sel.repositories[0].removed[0].digest == img.digest
    assert sel.repositories[0].removed[0].pushed_at == NOW - 9 * D


def test_a_tag_a_symbolic_link_protects_is_kept_and_others_decided_as_before() -> None:
    """The rules remove v1 and v2; v1's folder cannot be removed (a symbolic link): it is kept
    with the link as its reason, v2 still goes, and the newest N are counted as without it."""
    links = {"v1": "repositories/app/_manifests/tags/v1/current"}
    sel = select_repository(
        "app",
        aged(v1=9, v2=8, v3=1),
        [make_rule(keep_last=1)],
        now=NOW,
        min_age=H,
        untouchable=links.get,
    )
    assert sel is not None and sel.refused is None
    assert removed(sel) == ["v2"]
    reasons = {t.tag: t.reason for t in sel.kept}
    assert reasons["v3"] == "among the newest 1 (command line)"
    assert "symbolic link repositories/app/_manifests/tags/v1/current" in reasons["v1"]


def test_select_keeps_a_tag_below_a_symbolic_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through a scan: a tag folder that is a symbolic link, and a tag folder that is the
    target of another tag's link (inside the store), are both kept."""
    import os
    import shutil

    b = StoreBuilder(tmp_path / "store")
    names = ["v1", "v2", "v3", "v4", "v5"]
    b.image("app", tags=names, layers=[b.layer("x")])
    tags = b.path("repositories/app/_manifests/tags")
    for i, t in enumerate(names):
        os.utime(tags / t / "current" / "link", (NOW - (10 - i) * D, NOW - (10 - i) * D))
    shutil.move(tags / "v1", tmp_path / "v1")
    os.symlink(tmp_path / "v1", tags / "v1")
    shutil.rmtree(tags / "v3")
    os.symlink("v2", tags / "v3")  # v3 is served through v2's folder
    snap = b.scan(mode=ScanMode.LAZY)
    sel = select(snap, [make_rule(keep_last=1)], now=NOW, min_age=H)
    assert sel.removed_tags() == [("app", "v4")]
    reasons = {t.tag: t.reason for t in sel.repositories[0].kept}
    assert reasons["v5"] == "among the newest 1 (command line)"
    for tag in ("v1", "v2", "v3"):
        assert f"symbolic link repositories/app/_manifests/tags/{tag} (" in reasons[tag], tag


# --- properties ----------------------------------------------------------------------------------

tag_names = st.from_regex(r"[a-c][0-9]?", fullmatch=True)
infos = st.lists(
    st.tuples(tag_names, st.integers(0, 20 * 24)), min_size=0, max_size=12, unique_by=lambda x: x[0]
).map(lambda xs: [TagInfo(t, None, NOW - h * H) for t, h in xs])
limits = st.tuples(
    st.one_of(st.none(), st.integers(1, 4)), st.sampled_from([None, "1d", "3d", "10d"])
).filter(lambda x: x != (None, None))
rules = st.builds(
    lambda tags, keep, limit: make_rule(
        tags=tags, keep_tags=keep, keep_last=limit[0], older_than=limit[1]
    ),
    st.sampled_from([None, "a.*", "b[0-9]", "c"]),
    st.sampled_from([None, "", "a1", "c.*"]),
    limits,
)


@settings(max_examples=300)
@given(infos, st.lists(rules, min_size=1, max_size=3), st.sampled_from([0.0, H, 2 * D]))
def test_properties(tags: list[TagInfo], rs: list[Rule], min_age: float) -> None:
    sel = run(tags, *rs, min_age=min_age)
    gone = {t.tag for t in sel.removed}
    assert gone | {t.tag for t in sel.kept} == {t.tag for t in tags}
    assert not gone & {t.tag for t in sel.kept}
    if sel.refused is not None:
        assert not gone
        return
    by_tag = {t.tag: t for t in tags}
    for tag in gone:
        t = by_tag[tag]
        assert not (min_age and t.pushed_at > NOW - min_age)  # never younger than --min-age
        assert any(r.is_candidate(tag) for r in rs)  # only candidates go
        for r in rs:
            assert not r.keeps_by_name(tag)  # keep wins, in every rule
            if not r.is_candidate(tag):
                continue
            cands = sorted(
                (c for c in tags if r.is_candidate(c.tag)), key=lambda c: (-c.pushed_at, c.tag)
            )
            rank = [c.tag for c in cands].index(tag)
            if r.keep_last is not None:
                assert rank >= r.keep_last  # outside the newest N of every rule
            if r.older_than is not None:
                assert t.pushed_at < NOW - r.older_than  # and older than its limit
    # Nothing removed that every rule would keep, and a tag every covering rule lets go goes.
    for d in sel.kept:
        if d.reason == "selected by no rule":
            assert not any(r.is_candidate(d.tag) for r in rs)
    # The order of the input does not matter.
    again = run(list(reversed(tags)), *rs, min_age=min_age)
    assert again == sel
