"""``regfs check``: fsck for registry storage. Every problem is a :class:`Finding`; nothing prints.

On top of what the scanner reports (bad, empty and mismatched links, missing data, strays,
unparseable manifests, ...) it looks at the storage the way a pull does:

* ``dangling``: a revision, index child, config or layer whose blob data is not in the store
  (from :func:`regfs.graph.mark.mark` in default mode);
* ``broken_tag``: a tag a pull of which fails (decided by :mod:`regfs.graph.servable`, which
  ``regfs tree`` uses too): its manifest is gone or damaged, or a present index child, config
  or layer is (foreign layers with ``urls`` excepted), or none of its index's platforms is in
  the repository; the message names ``repo:tag`` and what is wrong;
* ``partial_index`` (a *warning*: it leaves the report healthy): an index some of whose
  children are not manifests of the repository (a v3 sparse index, a child deleted by digest);
  the platforms present pull, the message names the absent ones;
* ``unlinked_blob``: a manifest whose config or layer has no ``_layers`` link in its
  repository (a pull gets "blob unknown"), and a tag target that is not a revision of the
  repository (a pull gets "manifest unknown");
* with ``verify_digests``: ``digest_mismatch`` for every blob whose data does not hash to its
  digest, read twice before it is called corrupt. Schema1 manifests are checked against their
  canonical payload (:func:`regfs.manifests.schema1_payload`), which is what their digest names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from regfs.graph.mark import Mode, mark
from regfs.graph.servable import absent_children, tag_report
from regfs.layout import (
    REPOSITORIES,
    blob_data,
    layer_dir,
    link_file,
    revision_dir,
    tag_current_link,
)
from regfs.model.findings import Finding, Kind
from regfs.parallel.tuning import SERIAL, Tuning
from regfs.pattern import matches, select
from regfs.reports.verify import VERIFY_PHASE as VERIFY_PHASE
from regfs.reports.verify import Progress, Verified, verify
from regfs.scan import Repository, Snapshot
from regfs.storage.base import Storage
from regfs.storage.local import LocalStorage

# How many problems a broken tag's message names before "and N more".
MAX_NAMED = 3


@dataclass(slots=True)
class CheckReport:
    """What :func:`check` found, and what it looked at.

    Attributes:
        problems: damage, sorted by path: any makes the report unhealthy (exit 1).
        warnings: worth knowing, not damage (``partial_index``): they leave it healthy.
        repositories: how many repositories were checked (those ``repo_glob`` selects).
        tags: the tags of those repositories.
        manifests: their live manifests (default mode: every revision, index children).
        blobs: every blob in the store, whatever ``repo_glob`` says.
        verified: whether digests were verified (``verify_digests``); the three figures
            below are 0 otherwise.
        verified_blobs: blobs hashed.
        verified_bytes: bytes hashed.
        verify_seconds: wall-clock seconds the verification took.
        repo_glob: the ``--repo`` glob the check was restricted to, or None for all.
        reread_ok: digests of blobs whose first read hashed wrong but whose second read was
            right (not problems).
    """

    problems: list[Finding]
    warnings: list[Finding] = field(default_factory=list)
    repositories: int = 0
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    verified: bool = False
    verified_blobs: int = 0
    verified_bytes: int = 0
    verify_seconds: float = 0.0
    repo_glob: str | None = None
    reread_ok: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """No problems (warnings allowed): ``regfs check`` exits 0, else 1."""
        return not self.problems

    @property
    def throughput(self) -> float | None:
        """Bytes hashed per second, when digests were verified."""
        if not self.verified or self.verify_seconds <= 0:
            return None
        return self.verified_bytes / self.verify_seconds

    def count(self, kind: Kind) -> int:
        """How many problems are of ``kind`` (warnings are not counted)."""
        return sum(1 for f in self.problems if f.kind is kind)


def check(
    snap: Snapshot,
    *,
    repo_glob: str | None = None,
    verify_digests: bool = False,
    tuning: Tuning = SERIAL,
    progress: Progress | None = None,
    storage: Storage | None = None,
) -> CheckReport:
    """Check ``snap``; ``repo_glob`` (:mod:`regfs.pattern`) restricts the repository-level
    checks, and the digest verification to the blobs those repositories reference.

    Blob data is read through ``storage`` (default: the local store at ``snap.v2``), hashed
    by as many processes as ``tuning`` says (:mod:`regfs.reports.verify`)."""
    names = list(snap.repositories)
    if repo_glob is not None:
        names = select(names, repo_glob)
    selected = set(names)
    default = mark(snap, Mode.DEFAULT)
    report = CheckReport(
        problems=[],
        repositories=len(names),
        tags=sum(len(snap.repositories[n].tags) for n in names),
        manifests=len({d for n in names for d in default.live.get(n, {})}),
        blobs=len(snap.blobs),
        repo_glob=repo_glob,
    )
    scope = _scope_blobs(snap, names, default.live) if repo_glob is not None else None
    problems: list[Finding] = []
    for f in snap.findings:
        if scope is None or _in_scope(f, repo_glob or "", selected, scope):
            problems.append(f)
    for dg in default.dangling:
        if dg.repository not in selected:
            continue
        via = f" (referenced by {dg.referrer})" if dg.referrer else ""
        what = {"revision": "manifest", "tag": "manifest", "child": "index child"}.get(
            dg.kind, dg.kind
        )
        problems.append(
            Finding(
                Kind.DANGLING,
                dg.path,
                f"{what} {dg.digest} of {dg.repository} has no blob data{via}",
                dg.digest,
                dg.repository,
            )
        )
    # digest -> what a pull of it meets: "is corrupt" or "cannot be read"
    corrupt: dict[str, str] = {}
    if verify_digests:
        targets = sorted(snap.blobs) if scope is None else sorted(scope & snap.blobs.keys())
        done = verify(
            storage if storage is not None else LocalStorage(snap.v2),
            [(d, snap.blobs[d].known_size) for d in targets],
            tuning=tuning,
            progress=progress,
        )
        _record(report, done)
        bad = done.bad
        for d, (kind, why) in sorted(bad.items()):
            problems.append(Finding(kind, blob_data(d), why, d))
            corrupt[d] = "is corrupt" if kind is Kind.DIGEST_MISMATCH else "cannot be read"
    warnings: list[Finding] = []
    for name in names:
        repo = snap.repositories[name]
        problems.extend(_unlinked(snap, repo, default.live.get(name, {})))
        broken = _broken_tags(snap, repo, corrupt)
        problems.extend(broken)
        warnings.extend(_partial_indexes(snap, repo, {f.digest for f in broken if f.digest}))
    problems.sort(key=lambda f: (f.path, str(f.kind), f.message))
    warnings.sort(key=lambda f: (f.path, str(f.kind), f.message))
    report.problems = problems
    report.warnings = warnings
    return report


# --- scope ----------------------------------------------------------------------------------


def _match(name: str, glob: str) -> bool:
    return matches(name, glob)


def _scope_blobs(snap: Snapshot, names: list[str], live: dict[str, dict[str, str]]) -> set[str]:
    """Every blob the repositories reference: manifests, configs, layers, linked blobs."""
    out: set[str] = set()
    for name in names:
        repo = snap.repositories[name]
        for d in live.get(name, {}):
            out.add(d)
            m = snap.manifests.get(d)
            if m is not None:
                out.update(desc.digest for desc in m.blob_refs())
        for d, link in repo.layers.items():
            out.add(d)
            if link.digest:
                out.add(link.digest)
        for tag in repo.tags.values():
            if tag.target:
                out.add(tag.target)
    return out


def _in_scope(f: Finding, glob: str, selected: set[str], scope: set[str]) -> bool:
    if f.repository is not None:
        return f.repository in selected or _match(f.repository, glob)
    if f.digest is not None and f.digest in scope:
        return True
    if f.path.startswith(REPOSITORIES + "/"):
        parts = f.path.split("/")[1:]
        return any(_match("/".join(parts[:i]), glob) for i in range(1, len(parts) + 1))
    return False


# --- what a pull needs ----------------------------------------------------------------------


def _unlinked(snap: Snapshot, repo: Repository, live: Iterable[str]) -> list[Finding]:
    """Configs and layers without a ``_layers`` link; children and tag targets that are not
    revisions of the repository."""
    out: dict[str, Finding] = {}
    revisions = repo.revision_digests()
    for d in sorted(live):
        m = snap.manifests.get(d)
        if m is None:
            continue
        # A child that is not a manifest of the repository is reported as such, below;
        # its own config and layers are beside the point.
        refs = m.blob_refs() if d in revisions else ()
        for desc in refs:
            if desc.foreign or desc.digest in repo.layers:
                continue
            path = link_file(layer_dir(repo.name, desc.digest))
            if path not in out:
                role = "config" if desc is m.config else "layer"
                out[path] = Finding(
                    Kind.UNLINKED_BLOB,
                    path,
                    f"{role} {desc.digest} of manifest {d} has no _layers link in "
                    f"{repo.name}: a pull gets 'blob unknown'",
                    desc.digest,
                    repo.name,
                )
    for name, tag in sorted(repo.tags.items()):
        target = tag.target
        if target is None or target in revisions:
            continue
        path = link_file(revision_dir(repo.name, target))
        if path not in out:
            out[path] = Finding(
                Kind.UNLINKED_BLOB,
                path,
                f"tag {name} points at {target}, which is not a manifest of {repo.name}: "
                "a pull gets 'manifest unknown'",
                target,
                repo.name,
            )
    return list(out.values())


def _broken_tags(snap: Snapshot, repo: Repository, corrupt: dict[str, str]) -> list[Finding]:
    out = []
    memo: dict[str, list[str]] = {}  # many tags often name one manifest
    for name, tag in sorted(repo.tags.items()):
        path = tag_current_link(repo.name, name)
        target = tag.target
        if target is not None and target in memo:
            issues = memo[target]
        else:
            issues = tag_report(snap, repo, name, corrupt).issues
            if target is not None:
                memo[target] = issues
        if issues:
            named = "; ".join(issues[:MAX_NAMED])
            if len(issues) > MAX_NAMED:
                named += f"; and {len(issues) - MAX_NAMED} more"
            out.append(
                Finding(
                    Kind.BROKEN_TAG,
                    path,
                    f"{repo.name}:{name} cannot be pulled: {named}",
                    target,
                    repo.name,
                )
            )
    return out


def _partial_indexes(snap: Snapshot, repo: Repository, broken: set[str]) -> list[Finding]:
    """A warning for every index of the repository some of whose children it does not hold;
    an index a broken tag names with none of its platforms present is that tag's problem."""
    out = []
    for d in sorted(repo.revisions):
        absent = absent_children(snap, repo, d)
        if not absent:
            continue
        m = snap.manifests[d]
        present = len(m.children) - len(absent)
        if not present and d in broken:
            continue
        tags = sorted(t for t, tag in repo.tags.items() if tag.current and tag.current.digest == d)
        on = f" ({', '.join(f'{repo.name}:{t}' for t in tags)})" if tags else " (untagged)"
        names = ", ".join(a.describe() for a in absent)
        verb = "is" if len(absent) == 1 else "are"
        if present:
            tail = f"; a pull serves the other {present}"
        else:
            tail = "; nothing can be pulled through it"
        out.append(
            Finding(
                Kind.PARTIAL_INDEX,
                link_file(revision_dir(repo.name, d)),
                f"index {d}{on}: {len(absent)} of its {len(m.children)} platforms {verb} not "
                f"in {repo.name}: {names}{tail}",
                d,
                repo.name,
            )
        )
    return out


def _record(report: CheckReport, done: Verified) -> None:
    report.verified = True
    report.verified_blobs = done.blobs
    report.verified_bytes = done.bytes
    report.verify_seconds = done.seconds
    report.reread_ok = done.reread_ok
