"""Which tags a set of retention rules removes: pure, per repository, per rule.

The semantics (the README's "Retention" section says the same, sentence by sentence):

* A rule applies to the repositories its globs match. Its candidates are the tags whose whole
  name matches ``tags`` and not ``keep_tags`` (keep always wins).
* ``keep_last N``: the N candidates with the newest timestamp survive. ``older_than D``: only
  candidates whose timestamp is before ``now - D`` may go. Both: a tag goes only when it is
  outside the newest N **and** older than D.
* The timestamp is the pushed-at time (``by = pushed``: the mtime of the tag's current link)
  or the image config's ``created`` (``by = created``; an index: its newest child). Order is
  newest first; equal timestamps break by tag name (``a`` before ``b``), so the result never
  depends on listing order. A tag whose ``created`` is unknown is kept.
* When every candidate of a rule in a repository carries the same pushed-at second (a copy
  that lost its mtimes), age and order mean nothing: the repository is refused, nothing of it
  is removed (``by = created`` is not affected).
* A tag survives if any rule covering its repository keeps it (its ``keep_tags``, its newest
  N, its age limit); it goes when some rule removes it and none keeps it. Tags no rule selects
  and repositories no rule covers are untouched.
* Tags pushed within ``min_age`` are never removed, whatever the order.
* A repository that cannot be fully read (a tag link unreadable, a folder unlistable) is
  refused: its tags' order is not known.
* A tag whose folder is at, below or containing a symbolic link (or a link's target inside
  the store) is kept, whatever the rules say: the registry serves through the link and regfs
  never deletes through or beyond one, so the tag survives, and with it its manifest and all
  it reaches (the plan is made with the tag in place).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from regfs.duration import cutoff as age_cutoff
from regfs.duration import format_duration
from regfs.graph.unread import unknowns
from regfs.layout import tag_dir
from regfs.model.snapshot import Repository, Snapshot
from regfs.retain.policy import By, Rule


@dataclass(frozen=True, slots=True)
class TagInfo:
    """What the rules look at for one tag. ``created`` is None when unknown or not read."""

    tag: str
    digest: str | None
    pushed_at: float
    created: float | None = None


@dataclass(frozen=True, slots=True)
class TagDecision:
    """One tag's fate and why (``reason`` names the rule's limit that decided it)."""

    tag: str
    digest: str | None
    pushed_at: float
    created: float | None
    removed: bool
    reason: str


@dataclass(slots=True)
class RepoSelection:
    """One covered repository: its tags kept and removed, or why it is refused."""

    name: str
    kept: list[TagDecision] = field(default_factory=list)
    removed: list[TagDecision] = field(default_factory=list)
    # Why nothing of it is removed for safety (exit 3), or None.
    refused: str | None = None
    # Origins of the rules covering it.
    rules: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Selection:
    """Every covered repository, by name, with the rules that were applied."""

    rules: list[Rule]
    repositories: list[RepoSelection] = field(default_factory=list)

    @property
    def refused(self) -> list[RepoSelection]:
        """The covered repositories left untouched for safety (the exit status is then 3)."""
        return [r for r in self.repositories if r.refused is not None]

    def removed_tags(self) -> list[tuple[str, str]]:
        """(repository, tag) of every tag the rules remove, sorted."""
        return [(r.name, t.tag) for r in self.repositories for t in r.removed]


def stamp(ts: float) -> str:
    """A timestamp as RFC 3339 UTC to the second (what the output shows)."""
    return datetime.fromtimestamp(math.floor(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _order_key(ts: float, tag: str) -> tuple[float, str]:
    return (-ts, tag)


def _rule_verdicts(
    rule: Rule, tags: list[TagInfo], now: float
) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(kept tag -> reason, removed tag -> reason, refusal) of one rule in one repository."""
    keeps: dict[str, str] = {}
    removes: dict[str, str] = {}
    candidates: list[tuple[float, TagInfo]] = []
    kept_by_name = f"matches keep_tags {rule.keep_tags!r} ({rule.origin})"
    pushed = rule.by is By.PUSHED
    for t in tags:
        if rule.keeps_by_name(t.tag):
            keeps[t.tag] = kept_by_name
            continue
        if not rule.selects(t.tag):
            continue
        ts = t.pushed_at if pushed else t.created
        if ts is None:
            keeps[t.tag] = f"no `created` time in its image config ({rule.origin})"
            continue
        candidates.append((ts, t))
    if pushed and len(candidates) > 1:
        seconds = {math.floor(ts) for ts, _ in candidates}
        if len(seconds) == 1:
            return (
                {},
                {},
                f"all {len(candidates)} candidates of the rule {rule.origin} were pushed at "
                f"the same second ({stamp(candidates[0][0])}), as after a copy that lost "
                "mtimes: their age and order mean nothing (use --by created)",
            )
    candidates.sort(key=lambda c: _order_key(c[0], c[1].tag))
    limit = age_cutoff(now, rule.older_than) if rule.older_than is not None else None
    what = "pushed" if pushed else "created"
    # The reasons are the same for every tag of the rule: worded once.
    newest = f"among the newest {rule.keep_last} ({rule.origin})"
    within = ""
    if rule.older_than is not None:
        within = f"{what} within {format_duration(rule.older_than)} ({rule.origin})"
    parts = []
    if rule.keep_last is not None:
        parts.append(f"not among the newest {rule.keep_last}")
    if rule.older_than is not None:
        parts.append(f"{what} over {format_duration(rule.older_than)} ago")
    goes = f"{' and '.join(parts)} ({rule.origin})"
    for rank, (ts, t) in enumerate(candidates):
        if rule.keep_last is not None and rank < rule.keep_last:
            keeps[t.tag] = newest
        elif limit is not None and not ts < limit:
            keeps[t.tag] = within
        else:
            removes[t.tag] = goes
    return keeps, removes, None


def select_repository(
    name: str,
    tags: Iterable[TagInfo],
    rules: list[Rule],
    *,
    now: float,
    min_age: float,
    unreadable: str | None = None,
    untouchable: Callable[[str], str | None] | None = None,
) -> RepoSelection | None:
    """The decision for one repository (None: no rule covers it, it is untouched).

    ``unreadable`` says why the repository cannot be fully read: it is then refused.
    ``untouchable`` maps a tag to the symbolic link that forbids removing its folder (the
    tag is then kept), or None.
    """
    covering = [r for r in rules if r.covers(name)]
    if not covering:
        return None
    out = RepoSelection(name, rules=[r.origin for r in covering])
    infos = sorted(tags, key=lambda t: t.tag)
    if unreadable is not None:
        out.refused = unreadable
    keeps: dict[str, str] = {}
    removes: dict[str, str] = {}
    for rule in covering:
        if out.refused is not None:
            break
        k, r, refusal = _rule_verdicts(rule, infos, now)
        if refusal is not None:
            out.refused = refusal
            break
        for tag, why in k.items():
            keeps.setdefault(tag, why)
        for tag, why in r.items():
            removes.setdefault(tag, why)
    young = age_cutoff(now, min_age)
    for t in infos:
        if out.refused is not None:
            out.kept.append(_decide(t, False, "repository refused"))
        elif t.tag in keeps:
            out.kept.append(_decide(t, False, keeps[t.tag]))
        elif t.tag not in removes:
            out.kept.append(_decide(t, False, "selected by no rule"))
        elif t.pushed_at > young:
            out.kept.append(
                _decide(t, False, f"pushed within --min-age {format_duration(min_age)}")
            )
        elif untouchable is not None and (link := untouchable(t.tag)) is not None:
            out.kept.append(_decide(t, False, _SYMLINKED.format(link=link)))
        else:
            out.removed.append(_decide(t, True, removes[t.tag]))
    out.kept.sort(key=lambda d: _order_key(d.pushed_at, d.tag))
    out.removed.sort(key=lambda d: _order_key(d.pushed_at, d.tag))
    return out


# Why a tag the rules remove is kept: its folder cannot be removed (the plan then keeps its
# manifest and everything it reaches, as for any tag that stays).
_SYMLINKED = (
    "its folder is at, below or containing the symbolic link {link} (served through it, "
    "never deleted)"
)


def _decide(t: TagInfo, removed: bool, reason: str) -> TagDecision:
    return TagDecision(t.tag, t.digest, t.pushed_at, t.created, removed, reason)


def _unreadable(repo: Repository) -> str | None:
    if repo.incomplete:
        return "part of the repository cannot be read: its tags are not all known"
    for name, tag in sorted(repo.tags.items()):
        if tag.current is None or tag.current.digest is None:
            return f"the current link of tag {name} cannot be read: its order is not known"
    return None


def tag_infos(repo: Repository, created: Callable[[str], float | None] | None) -> list[TagInfo]:
    """Each tag of ``repo`` as the rules see it; ``created`` gives a manifest's build time."""
    out = []
    for name, tag in repo.tags.items():
        cur = tag.current
        digest = cur.digest if cur is not None else None
        pushed = cur.mtime if cur is not None else 0.0
        when = created(digest) if created is not None and digest is not None else None
        out.append(TagInfo(name, digest, pushed, when))
    return out


def select(
    snap: Snapshot,
    rules: list[Rule],
    *,
    now: float,
    min_age: float,
    created: Callable[[str], float | None] | None = None,
) -> Selection:
    """Apply ``rules`` to every repository of ``snap`` (a scan that read the tag links).

    ``created`` (needed when a rule orders ``by = created``) maps a manifest digest to its
    build time.
    """
    sel = Selection(list(rules))
    unknown = unknowns(snap)
    for name in sorted(snap.repositories):
        repo = snap.repositories[name]
        untouchable = None
        if unknown.symlinks:
            untouchable = _untouchable(unknown.untouchable, name)
        decided = select_repository(
            name,
            tag_infos(repo, created),
            rules,
            now=now,
            min_age=min_age,
            unreadable=_unreadable(repo),
            untouchable=untouchable,
        )
        if decided is not None:
            sel.repositories.append(decided)
    return sel


def _untouchable(link_at: Callable[[str], str | None], repo: str) -> Callable[[str], str | None]:
    """``link_at`` (a path to the symbolic link forbidding its removal) for ``repo``'s tags."""
    return lambda tag: link_at(tag_dir(repo, tag))
