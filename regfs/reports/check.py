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

import errno
import hashlib
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
from regfs.manifests import schema1_payload
from regfs.model.findings import Finding, Kind
from regfs.pattern import matches, select
from regfs.reports.hashing import cpus, hash_blobs
from regfs.scan import MANIFEST_READ_LIMIT, Repository, Snapshot
from regfs.storage.base import Storage, Stream
from regfs.storage.local import LocalStorage

Progress = Callable[[str, int, int], None]

CHUNK = 1 << 20  # bytes read per system call when a suspect blob is read again
VERIFY_PHASE = "verify"
# How many problems a broken tag's message names before "and N more".
MAX_NAMED = 3


@dataclass(slots=True)
class CheckReport:
    problems: list[Finding]
    # Worth knowing, not damage (``partial_index``): they leave the report healthy.
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
    # Blobs whose first read hashed wrong but whose second read was right.
    reread_ok: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def throughput(self) -> float | None:
        """Bytes hashed per second, when digests were verified."""
        if not self.verified or self.verify_seconds <= 0:
            return None
        return self.verified_bytes / self.verify_seconds

    def count(self, kind: Kind) -> int:
        return sum(1 for f in self.problems if f.kind is kind)


def check(
    snap: Snapshot,
    *,
    repo_glob: str | None = None,
    verify_digests: bool = False,
    workers: int = 8,
    progress: Progress | None = None,
    storage: Storage | None = None,
) -> CheckReport:
    """Check ``snap``; ``repo_glob`` (:mod:`regfs.pattern`) restricts the repository-level
    checks, and the digest verification to the blobs those repositories reference.

    Blob data is read through ``storage`` (default: the local store at ``snap.v2``)."""
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
        bad = _verify(snap, targets, workers, progress, report, storage)
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


# --- digest verification --------------------------------------------------------------------


class _Meter:
    """Thread-safe byte counter that reports progress at most every 64 MiB or 0.1 s."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.lock = threading.Lock()
        self.reported = 0
        self.last = 0.0

    def add(self, n: int) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.done += n
            now = time.monotonic()
            if self.done - self.reported >= 64 << 20 or now - self.last >= 0.1:
                self.reported, self.last = self.done, now
                self.progress(VERIFY_PHASE, min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self.progress is not None:
            with self.lock:
                self.progress(VERIFY_PHASE, self.total, self.total)


def _verify(
    snap: Snapshot,
    digests: list[str],
    workers: int,
    progress: Progress | None,
    report: CheckReport,
    storage: Storage | None,
) -> dict[str, tuple[Kind, str]]:
    """Re-hash every blob in ``digests``; returns digest -> (kind, why) for each bad one.

    A first read hashes everything in worker processes (:mod:`regfs.reports.hashing`); only what it
    finds suspect is read again here, carefully, before it is called corrupt."""
    storage = storage if storage is not None else LocalStorage(snap.v2)
    items = [(d, snap.blobs[d].known_size) for d in digests]
    total = sum(size for _, size in items)
    meter = _Meter(total, progress)
    if progress:
        progress(VERIFY_PHASE, 0, total)
    started = time.monotonic()
    suspects = hash_blobs(
        storage,
        items,
        processes=min(max(1, workers), cpus()),
        on_bytes=meter.add if progress else None,
        accept=_schema1_data_matches,
    )
    bad: dict[str, tuple[Kind, str]] = {}
    for d, first in suspects:
        problem, reread = _confirm(storage, d, first)
        if problem is not None:
            bad[d] = problem
        elif reread:
            report.reread_ok.append(d)
    meter.finish()
    report.verified = True
    report.verified_blobs = len(digests)
    report.verified_bytes = total
    report.verify_seconds = time.monotonic() - started
    report.reread_ok.sort()
    return bad


def _confirm(
    storage: Storage, digest: str, first: str | None
) -> tuple[tuple[Kind, str] | None, bool]:
    """Read a suspect again: ((kind, why) when the blob is bad, else None; whether the data
    was read twice). ``first`` is what the first read hashed to, None when it failed: then
    this read counts as the first."""
    path = blob_data(digest)
    try:
        if first is None:
            first = _actual(storage, path, digest)
            if first is None:
                return None, False
        second = _actual(storage, path, digest)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return (Kind.SYMLINK, "blob data is a symbolic link (never followed)"), False
        return (Kind.UNREADABLE, f"cannot read blob data: {exc.strerror or exc}"), False
    if second is None:
        return None, True
    if second != first:
        why = (
            f"data hashes to {first}, then to {second} when read again: "
            "neither is its digest (unstable storage?)"
        )
    else:
        why = f"data hashes to {first}, not to its digest (read twice)"
    return (Kind.DIGEST_MISMATCH, why), True


@contextmanager
def _open(storage: Storage, path: str) -> Iterator[tuple[Stream, int]]:
    """A regular file opened for reading without following a symbolic link, with its size."""
    with storage.open_stream(path) as f:
        st = f.stat()
        if not stat_mod.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file", path)
        yield f, st.st_size


def _actual(storage: Storage, path: str, digest: str) -> str | None:
    """None when the data at ``path`` matches ``digest``; otherwise what it hashes to."""
    alg = digest.partition(":")[0]
    h = hashlib.new(alg)
    view = memoryview(bytearray(CHUNK))
    with _open(storage, path) as (f, size):
        while n := f.readinto(view):
            h.update(view[:n])
    actual = f"{alg}:{h.hexdigest()}"
    if actual == digest:
        return None
    if size <= MANIFEST_READ_LIMIT and _schema1_matches(storage, path, digest):
        return None
    return actual


def _schema1_matches(storage: Storage, path: str, digest: str) -> bool:
    with _open(storage, path) as (f, _size):
        data = f.read()
    return _schema1_data_matches(data, digest)


def _schema1_data_matches(data: bytes, digest: str) -> bool:
    """A signed schema1 manifest's digest is that of its canonical payload."""
    if len(data) > MANIFEST_READ_LIMIT:
        return False
    if data.lstrip()[:1] != b"{" or b'"schemaVersion"' not in data:
        return False
    try:
        payload = schema1_payload(data)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False
    if payload == data:
        return False
    alg = digest.partition(":")[0]
    return f"{alg}:{hashlib.new(alg, payload).hexdigest()}" == digest
