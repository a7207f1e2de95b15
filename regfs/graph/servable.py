"""What a pull meets: the one place that decides whether a tag (or a manifest) can be pulled.

``regfs check`` turns it into ``broken_tag`` and ``partial_index`` findings and ``regfs tree``
into its ``broken`` and ``partial`` marks, so the two always agree.

The registry serves a manifest of a repository only through the revision link named by its
digest (``_manifests/revisions/<alg>/<hex>/link``); configs and layers only through their
``_layers`` link. A pull of ``repo@digest`` therefore needs the manifest's revision link, its
data, a parseable manifest and, for an image, every config and layer (foreign layers with
``urls`` excepted) with data and a ``_layers`` link naming it. An index child that has no
revision link is an *absent platform*: deleted by digest through the API, or never pushed (a
registry v3 sparse index, ``validation.manifests.indexes.platforms``). Clients pull the
platforms present, so absent children make an index partial, not broken, unless nothing at all
is left to pull. Anything else that fails is damage and breaks the pull.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from regfs.scan import Repository, Snapshot


@dataclass(frozen=True, slots=True)
class AbsentChild:
    """An index child that is not a manifest of the repository: that platform does not pull."""

    index: str
    digest: str
    platform: str | None

    def describe(self) -> str:
        """``"<platform> (<digest>)"`` (``no platform`` when the index gives none), for messages."""
        return f"{self.platform or 'no platform'} ({self.digest})"


@dataclass(slots=True)
class PullReport:
    """What a pull of one manifest (recursively) meets.

    ``issues`` are damage: with any, the pull fails (``broken``). ``absent`` are index children
    the repository does not hold; ``images`` counts the image manifests a pull reaches.
    """

    issues: list[str] = field(default_factory=list)
    absent: list[AbsentChild] = field(default_factory=list)
    images: int = 0

    @property
    def broken(self) -> bool:
        """Whether the pull fails: there is damage (``issues``)."""
        return bool(self.issues)

    @property
    def partial(self) -> bool:
        """Whether the pull works but some index children (platforms) are absent."""
        return not self.issues and bool(self.absent)


def pull_report(
    snap: Snapshot, repo: Repository, digest: str, corrupt: dict[str, str] | None = None
) -> PullReport:
    """What stops (or limits) a pull of ``repo@digest``. ``corrupt`` maps blob digests known
    to be bad (from a digest verification) to what a pull meets ("is corrupt", ...)."""
    corrupt = corrupt or {}
    report = PullReport()
    issues = report.issues
    seen: set[str] = set()
    # (digest, role, (index, platform) when it is an index child)
    Item = tuple[str, str, tuple[str, str | None] | None]
    queue: deque[Item] = deque([(digest, "manifest", None)])
    while queue:
        d, role, via = queue.popleft()
        if d in seen:
            continue
        seen.add(d)
        rev = repo.revisions.get(d)
        if rev is None:
            if via is not None and not repo.incomplete:
                report.absent.append(AbsentChild(via[0], d, via[1]))
            else:
                # The registry reads the link at revisions/<digest>: nothing else serves it.
                issues.append(f"{role} {d} is not a manifest of the repository")
            continue
        if rev.digest is None:
            issues.append(f"the revision link of {role} {d} cannot be read")
            continue
        if rev.digest != d:
            issues.append(f"the revision link of {role} {d} names {rev.digest}")
            continue
        if d not in snap.blobs:
            issues.append(f"{role} {d} has no blob data")
            continue
        if d in corrupt:
            issues.append(f"{role} {d} {corrupt[d]}")
            continue
        m = snap.manifests.get(d)
        if m is None:
            issues.append(f"{role} {d} cannot be parsed")
            continue
        if not m.is_index:
            report.images += 1
        for desc in m.blob_refs():
            if desc.foreign:
                continue
            what = "config" if desc is m.config else "layer"
            link = repo.layers.get(desc.digest)
            if desc.digest not in snap.blobs:
                issues.append(f"{what} {desc.digest} has no blob data")
            elif link is None:
                issues.append(f"{what} {desc.digest} has no _layers link")
            elif link.digest is None:
                issues.append(f"the _layers link of {what} {desc.digest} cannot be read")
            elif link.digest != desc.digest:
                issues.append(f"the _layers link of {what} {desc.digest} names {link.digest}")
            elif desc.digest in corrupt:
                issues.append(f"{what} {desc.digest} {corrupt[desc.digest]}")
        for child in m.children:
            queue.append((child.digest, "child", (d, child.platform)))
    if report.absent and not report.images and not issues:
        absent = ", ".join(a.describe() for a in report.absent)
        issues.append(f"none of the index's platforms is in the repository: {absent}")
    return report


def tag_report(
    snap: Snapshot, repo: Repository, tag: str, corrupt: dict[str, str] | None = None
) -> PullReport:
    """What a pull of ``repo:tag`` meets (see :func:`pull_report`)."""
    target = repo.tags[tag].target  # a tag known by name only raises LinkNotRead
    if repo.tags[tag].current is None:
        return PullReport(["the tag has no current link"])
    if target is None:
        return PullReport(["its current link cannot be read"])
    return pull_report(snap, repo, target, corrupt)


def absent_children(snap: Snapshot, repo: Repository, digest: str) -> list[AbsentChild]:
    """The direct children of index ``repo@digest`` that the repository does not hold (none
    when part of the repository could not be read: they may be in it)."""
    m = snap.manifests.get(digest)
    if m is None or repo.incomplete:
        return []
    held = repo.revisions
    return [AbsentChild(digest, c.digest, c.platform) for c in m.children if c.digest not in held]
