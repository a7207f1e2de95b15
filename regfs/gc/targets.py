"""The targets of ``regfs rm`` and what they select in a snapshot (pure).

Targets: ``REPO:TAG`` (one tag), ``REPO@DIGEST`` (a manifest), ``REPO`` (a whole repository),
with glob patterns in REPO and TAG (:mod:`regfs.pattern`: ``*`` within one path segment,
``**`` across). ``DIGEST`` may be the short form regfs prints: a unique prefix of at least
:data:`MIN_PREFIX` hex digits, with or without ``sha256:``; an ambiguous one is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from regfs.errors import UsageError
from regfs.layout import REPO_NAME_RE, TAG_RE
from regfs.model.digest import ALGORITHMS, DigestError, parse_digest
from regfs.model.snapshot import Snapshot
from regfs.pattern import is_glob, matcher

# The shortest digest prefix `rm` accepts: what regfs prints (render.short).
MIN_PREFIX = 12
_PREFIX_RE = re.compile(r"(?:(?P<alg>[a-z0-9]+):)?(?P<hex>[0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class Target:
    """One ``rm`` target, as :func:`parse_target` read it.

    Attributes:
        text: the target as given, for messages.
        repo: the repository name or glob.
        tag: the tag name or glob, for ``REPO:TAG``.
        digest: the full digest, for ``REPO@DIGEST``.
        prefix: a short digest instead: (algorithm, or None for any; hex prefix).
    """

    text: str
    repo: str
    tag: str | None = None
    digest: str | None = None
    prefix: tuple[str | None, str] | None = None

    @property
    def is_glob(self) -> bool:
        """Whether the repository or tag part holds a glob character."""
        return is_glob(self.repo + (self.tag or ""))

    def matches(self, digest: str) -> bool:
        """Whether ``digest`` is the one this manifest target names (full or short)."""
        if self.digest is not None:
            return digest == self.digest
        if self.prefix is None:
            return False
        alg, hexpart = self.prefix
        d_alg, _, d_hex = digest.partition(":")
        return (alg is None or alg == d_alg) and d_hex.startswith(hexpart)


@dataclass(slots=True)
class Selection:
    """What the targets matched: whole repositories, tags, manifests.

    ``tags`` and ``manifests`` are (repository, tag) and (repository, digest) pairs;
    ``globbed`` is whether any target was a glob.
    """

    repositories: list[str] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)
    globbed: bool = False

    def describe(self) -> list[str]:
        """One line per selected item: ``repository R``, ``tag R:T``, ``manifest R@D``."""
        return (
            [f"repository {r}" for r in self.repositories]
            + [f"tag {r}:{t}" for r, t in self.tags]
            + [f"manifest {r}@{d}" for r, d in self.manifests]
        )


def parse_target(text: str) -> Target:
    """``REPO``, ``REPO:TAG`` or ``REPO@DIGEST``, globs allowed in REPO and TAG."""
    if not text:
        raise UsageError("empty target")
    if "@" in text:
        repo, _, ref = text.partition("@")
        _check_repo(repo, text)
        try:
            return Target(text, repo, digest=parse_digest(ref))
        except DigestError as exc:
            m = _PREFIX_RE.fullmatch(ref)
            alg = m.group("alg") if m else None
            full = ALGORITHMS.get(alg or "sha256", 0)
            if m is None or (alg is not None and alg not in ALGORITHMS):
                raise UsageError(f"malformed target {text!r}: {exc}") from None
            if not MIN_PREFIX <= len(m.group("hex")) < max(ALGORITHMS.values()) or (
                alg is not None and len(m.group("hex")) >= full
            ):
                raise UsageError(
                    f"malformed target {text!r}: a digest is either full or a prefix of at "
                    f"least {MIN_PREFIX} hex digits ({exc})"
                ) from None
            return Target(text, repo, prefix=(alg, m.group("hex")))
    repo, sep, tag = text.partition(":")
    _check_repo(repo, text)
    if sep:
        if not tag or not (TAG_RE.fullmatch(tag) or is_glob(tag)):
            raise UsageError(f"malformed target {text!r}: bad tag {tag!r}")
        return Target(text, repo, tag=tag)
    return Target(text, repo)


def _check_repo(repo: str, text: str) -> None:
    if not repo:
        raise UsageError(f"malformed target {text!r}: no repository")
    if is_glob(repo):
        matcher(repo)  # a malformed glob is an error now, before anything is scanned
        return
    if not REPO_NAME_RE.fullmatch(repo):
        raise UsageError(f"malformed target {text!r}: {repo!r} is not a repository name")


def select(snap: Snapshot, targets: list[Target]) -> Selection:
    """Resolve targets against the snapshot; any that matches nothing is an error."""
    sel = Selection(globbed=any(t.is_glob for t in targets))
    names = list(snap.repositories)
    seen_repo: set[str] = set()
    seen_tag: set[tuple[str, str]] = set()
    seen_man: set[tuple[str, str]] = set()
    for t in targets:
        repos = [n for n in names if matcher(t.repo)(n)]
        if not repos:
            raise UsageError(f"no repository matches {t.text!r}")
        hit = False
        for name in repos:
            repo = snap.repositories[name]
            if t.digest is not None or t.prefix is not None:
                found = sorted(d for d in repo.revision_digests() if t.matches(d))
                if len(found) > 1:
                    raise UsageError(
                        f"{t.text!r} is ambiguous: {len(found)} manifests of {name} start with "
                        f"it: {', '.join(found)}"
                    )
                if found:
                    hit = True
                    if (name, found[0]) not in seen_man:
                        seen_man.add((name, found[0]))
                        sel.manifests.append((name, found[0]))
            elif t.tag is not None:
                tag_matches = matcher(t.tag)
                for tag in sorted(repo.tags):
                    if tag_matches(tag):
                        hit = True
                        if (name, tag) not in seen_tag:
                            seen_tag.add((name, tag))
                            sel.tags.append((name, tag))
            else:
                hit = True
                if name not in seen_repo:
                    seen_repo.add(name)
                    sel.repositories.append(name)
        if not hit:
            what = "manifest" if t.digest or t.prefix else "tag"
            raise UsageError(f"no {what} matches {t.text!r}")
    return sel
