"""What is kept because of what regfs could not read: the fail-closed marking rule.

A blob may be deleted only when it is proven unreferenced by a complete view of what the
registry can serve. Every part of the storage the scan could not read (and every symbolic link
it read through) is a blocking finding; :func:`unknowns` turns each one into what it forces
gc to keep. This is the one place that decides it; :func:`regfs.graph.mark.mark` applies it.

The rule, level by level (``repositories/<repo>/...`` and ``blobs/...``):

* **Everything is kept** (no blob is deleted at all) when regfs cannot read
  ``repositories/`` or any folder below it where a repository could be (a repository folder
  itself, a folder above one, a symbolic link among them it cannot follow); a repository's
  ``_manifests``, ``_manifests/revisions``, ``revisions/<alg>``, a revision folder or a
  revision ``link`` (the registry serves whatever that link names: it could be any blob); a
  repository's ``_layers`` or anything below it (which blobs the repository serves is
  unknown); ``blobs/`` or ``blobs/<alg>`` (no blob is known, so none can be proven garbage).
  Any blocking finding this module does not recognise falls here too: unknown means keep.
* **A repository's tags are unknown** (``_manifests/tags``, a tag folder, ``current`` or its
  ``link``): a tag is served only through a revision link of the same repository, and those
  are known, so in ``--delete-untagged`` mode every revision of that repository is a root (no
  manifest of it is deleted); in default mode every revision is a root anyway.
* **A manifest's references are unknown** (its data is in a blob prefix folder, blob folder
  or data file regfs cannot read, or it cannot be parsed, or a revision link holds garbage the
  registry cannot parse): every blob each repository holding it links under ``_layers`` is
  kept (the registry serves a manifest's config and layers only through those links), and
  every revision of those repositories is a root in ``--delete-untagged`` mode (its index
  children and referrers are revisions of the same repository).
* **Blob presence is unknown** in an unreadable blob prefix or blob folder: nothing there is
  listed, so nothing there is deleted; a reference into it is "unknown", never "dangling".
* **Symbolic links** are followed for marking (the registry follows them), so what the
  registry serves through one is marked like anything else; nothing at, below or containing
  a symbolic link is ever deleted (:meth:`Unknowns.untouchable`).
* A tag's history (``tags/<tag>/index``) and ``_uploads`` hold no references: an unreadable
  one widens nothing.

The other cleanups of readable repositories (their layer links, stale uploads, untagged
revisions of fully read repositories) go on under ``--force``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from regfs.layout import blob_data, blob_dir, blob_prefix_of, repo_dir
from regfs.model.findings import Finding, Kind
from regfs.model.snapshot import Snapshot

# Garbage in a revision link: the registry cannot parse it, so it serves nothing through it;
# regfs keeps what the manifest it might have named could reference (repository scope).
_GARBAGE_LINK = (Kind.EMPTY_LINK, Kind.BAD_LINK, Kind.UNKNOWN_ALGORITHM)


class Scope(StrEnum):
    """How far one unreadable part widens what is kept (stable JSON strings)."""

    EVERYTHING = "everything"
    MANIFESTS = "manifests"  # a repository's manifests with unknown references
    TAGS = "tags"  # a repository's tags
    BLOBS = "blobs"  # blob presence in part of blobs/
    NONE = "none"  # holds no references (tag history, uploads) or fully read (symlink)


@dataclass(frozen=True, slots=True)
class Unread:
    """One part regfs could not read (or read through a symbolic link) and its scope."""

    path: str
    scope: Scope
    reason: str
    repository: str | None = None
    digest: str | None = None

    def describe(self) -> str:
        """``"<path>: <reason>"`` (naming the manifest for ``MANIFESTS`` scope), for messages."""
        what = self.path
        if self.scope is Scope.MANIFESTS and self.digest:
            what = f"manifest {self.digest} ({self.path})"
        return f"{what}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        """This part as one entry of the ``unread`` list of ``--json`` documents.

        ``repository`` and ``digest`` appear only when set.
        """
        out: dict[str, object] = {"path": self.path, "scope": str(self.scope)}
        out["reason"] = self.reason
        if self.repository is not None:
            out["repository"] = self.repository
        if self.digest is not None:
            out["digest"] = self.digest
        return out


@dataclass(slots=True)
class Unknowns:
    """What the scan could not read, sorted by what each part forces gc to keep."""

    everything: list[Unread] = field(default_factory=list)
    # repository -> unreadable parts that make its manifests' references unknown
    manifests: dict[str, list[Unread]] = field(default_factory=dict)
    # repository -> unreadable parts of its tags
    tags: dict[str, list[Unread]] = field(default_factory=dict)
    # unreadable folders or files below blobs/<alg>/: blobs there are not listed
    blob_areas: dict[str, Unread] = field(default_factory=dict)
    # paths of symbolic links: nothing at, below or containing one is deleted
    symlinks: list[str] = field(default_factory=list)
    blobs_complete: bool = True

    @property
    def all(self) -> list[Unread]:
        """Every unreadable part that widens what is kept, for reports."""
        out = list(self.everything)
        for group in (self.manifests, self.tags):
            for parts in group.values():
                out.extend(parts)
        out.extend(self.blob_areas.values())
        seen: set[tuple[str, str | None]] = set()
        unique = []
        for u in sorted(out, key=lambda u: (u.path, u.digest or "")):
            if (u.path, u.digest) not in seen:
                seen.add((u.path, u.digest))
                unique.append(u)
        return unique

    def __bool__(self) -> bool:
        return bool(self.everything or self.manifests or self.tags or self.blob_areas)

    def roots_all_revisions(self, repo: str) -> bool:
        """In ``--delete-untagged`` mode, is every revision of ``repo`` a root? Yes when any
        part of it that may hold references could not be read."""
        return (
            repo in self.manifests
            or repo in self.tags
            or any(u.repository == repo for u in self.everything)
        )

    def blob_unknown(self, digest: str) -> bool:
        """Whether the digest's blob may be stored although the scan did not list it."""
        if not self.blobs_complete:
            return True
        if not self.blob_areas:
            return False
        areas = self.blob_areas
        return (
            blob_data(digest) in areas
            or blob_dir(digest) in areas
            or blob_prefix_of(digest) in areas
        )

    def untouchable(self, path: str) -> str | None:
        """The symbolic link that forbids deleting ``path`` (at, below or inside it)."""
        for link in self.symlinks:
            if path == link or path.startswith(link + "/") or link.startswith(path + "/"):
                return link
        return None

    def only(self, repo: str) -> Unknowns:
        """What one repository's own unreadable parts force it to keep (for ``du``)."""
        return Unknowns(
            manifests={repo: self.manifests[repo]} if repo in self.manifests else {},
            tags={repo: self.tags[repo]} if repo in self.tags else {},
            blob_areas=self.blob_areas,
            symlinks=self.symlinks,
            blobs_complete=self.blobs_complete,
        )


def unknowns(snap: Snapshot) -> Unknowns:
    """Classify every blocking finding of ``snap`` by what it forces gc to keep.

    This is the rule documented in this module and in the README's safety section.
    """
    out = Unknowns()
    repos = snap.repositories
    for f in snap.findings:
        if f.kind is Kind.SYMLINK:
            out.symlinks.append(f.path)
            continue
        if not f.blocks_gc:
            continue
        u = _classify(f, repos.keys())
        if u.scope is Scope.EVERYTHING:
            out.everything.append(u)
        elif u.scope is Scope.BLOBS:
            out.blob_areas.setdefault(u.path, u)
        elif u.scope is Scope.TAGS and u.repository is not None:
            out.tags.setdefault(u.repository, []).append(u)
        elif u.scope is Scope.MANIFESTS:
            holders = _holders(snap, f)
            if not holders:
                out.everything.append(Unread(u.path, Scope.EVERYTHING, u.reason, None, u.digest))
            for name in holders:
                out.manifests.setdefault(name, []).append(
                    Unread(u.path, u.scope, u.reason, name, u.digest)
                )
    store = [u for u in out.everything if u.path == "blobs" or u.path.startswith("blobs/")]
    if store:
        out.blobs_complete = False  # blobs/ or blobs/<alg>: no blob is known to be absent
    elif not snap.blobs_complete and not out.blob_areas:
        # The scan says blob presence is not fully known, and no finding says where: fail closed.
        out.blobs_complete = False
        out.everything.append(
            Unread("blobs", Scope.EVERYTHING, "the blob store could not be listed completely")
        )
    # A revision whose blob lies where the scan could not list and that was not read: its
    # references are unknown (the scan tries to read such manifests; this holds regardless).
    if out.blob_areas:
        for name, repo in repos.items():
            for d in sorted(repo.revision_digests()):
                if d not in snap.manifests and d not in snap.blobs and out.blob_unknown(d):
                    out.manifests.setdefault(name, []).append(
                        Unread(
                            blob_data(d),
                            Scope.MANIFESTS,
                            "manifest in a part of blobs/ that cannot be read",
                            name,
                            d,
                        )
                    )
    out.symlinks.sort()
    return out


def _holders(snap: Snapshot, f: Finding) -> list[str]:
    """Repositories serving the manifest a finding is about."""
    names = {f.repository} if f.repository in snap.repositories else set()
    if f.digest is not None:
        names.update(n for n, r in snap.repositories.items() if f.digest in r.revision_digests())
    return sorted(n for n in names if n is not None)


def _owner(path: str, repos: Iterable[str], hint: str | None) -> tuple[str | None, str]:
    """(repository, the rest of the path inside it) for a path below ``repositories/``."""
    if hint is not None:
        base = repo_dir(hint)
        if path.startswith(base + "/"):
            return hint, path[len(base) + 1 :]
    best: str | None = None
    for name in repos:
        base = repo_dir(name)
        if path.startswith(base + "/") and (best is None or len(name) > len(best)):
            rest = path[len(base) + 1 :]
            if rest.startswith("_"):
                best = name
    if best is None:
        return None, ""
    return best, path[len(repo_dir(best)) + 1 :]


def _classify(f: Finding, repos: Iterable[str]) -> Unread:
    """The scope of one blocking finding (anything unrecognised: everything)."""
    path = f.path
    everything = Unread(path, Scope.EVERYTHING, f.message, f.repository, f.digest)
    if f.kind is Kind.UNPARSEABLE_MANIFEST:
        return Unread(path, Scope.MANIFESTS, f.message, f.repository, f.digest)
    if path.startswith("blobs/"):
        if f.kind is Kind.UNREADABLE and path.count("/") >= 2:
            return Unread(path, Scope.BLOBS, f.message, None, f.digest)
        return everything
    if not path.startswith("repositories/"):
        return everything
    repo, rest = _owner(path, repos, f.repository)
    if repo is None or not rest:
        return everything  # a folder where repositories could be, or a repository itself
    if rest.startswith("_uploads/") or rest == "_uploads":
        return Unread(path, Scope.NONE, f.message, repo, f.digest)
    if rest.startswith("_manifests/tags"):
        parts = rest.split("/")
        if len(parts) >= 4 and parts[3] == "index":
            return Unread(path, Scope.NONE, f.message, repo, f.digest)  # history only
        return Unread(path, Scope.TAGS, f.message, repo, f.digest)
    if rest.startswith("_manifests/revisions/"):
        if f.kind in _GARBAGE_LINK:
            return Unread(path, Scope.MANIFESTS, f.message, repo, f.digest)
        if f.kind is Kind.LINK_MISMATCH:
            # Both digests are known and both are marked (graph.mark): nothing is unknown.
            return Unread(path, Scope.NONE, f.message, repo, f.digest)
    return Unread(path, Scope.EVERYTHING, f.message, repo, f.digest)
