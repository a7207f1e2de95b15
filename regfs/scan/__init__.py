"""Walk a registry's storage into a :class:`Snapshot`; every anomaly becomes a finding.

The walk lists each folder once with ``os.scandir`` (through :mod:`regfs.storage.local`), takes
digests from folder names where the registry does, reads every link (its content is what the
registry trusts) and reads each distinct manifest blob once. Repositories and the blob prefix
folders can be sharded over forked processes (:mod:`regfs.scan.codec` carries the results back).
The data it produces lives in :mod:`regfs.model.snapshot`.
"""

from __future__ import annotations

import contextlib
import errno
import pickle
import re
import stat as stat_mod
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from regfs import forkpool
from regfs.heap import without_collector
from regfs.layout import blob_data, valid_repo_name, valid_tag
from regfs.manifests import parse_manifest
from regfs.model.digest import ALGORITHMS, DigestError, is_hex_for, make_digest, parse_digest
from regfs.model.findings import Finding, Kind
from regfs.model.manifest import Manifest, ManifestError
from regfs.model.snapshot import LAZY_BLOB
from regfs.model.snapshot import Blob as Blob
from regfs.model.snapshot import Link as Link
from regfs.model.snapshot import Repository as Repository
from regfs.model.snapshot import Snapshot as Snapshot
from regfs.model.snapshot import Tag as Tag
from regfs.model.snapshot import Upload as Upload
from regfs.model.snapshot import iter_links as iter_links
from regfs.scan import codec
from regfs.storage.local import DIR, FILE, OTHER, SYMLINK, Entry, LocalStorage

# sha256 of zero bytes: a legitimate (empty) blob, not damage.
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LINK_READ_LIMIT = 4096
MANIFEST_READ_LIMIT = 16 << 20
_E = TypeVar("_E")
REPO_PARTS = ("_manifests", "_layers", "_uploads")

Progress = Callable[[str, int, int], None]
Mapper = Callable[..., Iterator[Any]]
MANIFEST_CHUNK = 256


class _Out:
    """Per-task result buffer, merged by the main thread."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.empty: list[str] = []

    def add(
        self,
        kind: Kind,
        path: str,
        message: str,
        *,
        digest: str | None = None,
        repo: str | None = None,
        blocks: bool = False,
    ) -> None:
        self.findings.append(Finding(kind, path, message, digest, repo, blocks))


@without_collector
def scan(
    storage: LocalStorage,
    *,
    workers: int = 4,
    progress: Progress | None = None,
    now: float | None = None,
    thorough: bool = True,
    tag_links: bool = True,
    lazy: bool = False,
    processes: int = 1,
) -> Snapshot:
    """Scan the whole storage below ``storage.v2``.

    ``thorough`` lists every digest folder and reads every link, reporting stray files next to
    links and link contents that disagree with their folder (fsck). Without it, the scan reads
    only what the graph needs (revision and tag links, manifests) and stats the rest: what
    ``regfs gc`` uses, whose executor re-checks each folder's content before touching it.
    ``lazy`` (fast scans only) goes further: blobs and layer links are taken from folder names
    alone (size -1, mtime 0.0) and :class:`Refresher` stats the few the caller asks about.
    ``tag_links=False`` (fast scans only) lists tags by name without reading their links or
    history: only ``--delete-untagged`` and ``rm`` act on what tags point to.
    ``processes > 1`` shards the repositories and blob prefixes over forked worker processes
    (the work is small system calls and parsing, which threads cannot run in parallel under
    the GIL); results come back as plain tuples.
    """
    import time

    started = time.time() if now is None else now
    out = _Out()
    if thorough:
        _top_level(storage, out)
    repo_names = _discover_repositories(storage, out)
    tasks_total = len(repo_names)
    blobs: dict[str, Blob] = {}
    no_data: set[str] = set()
    blobs_complete = True
    prefixes = _blob_prefixes(storage, out)
    if prefixes is None:
        blobs_complete = False
        prefixes = []
    tasks_total += len(prefixes)
    repositories: dict[str, Repository] = {}
    forked = processes > 1 and len(repo_names) + len(prefixes) > 64 and forkpool.can_fork()
    with contextlib.ExitStack() as stack:
        pmap: Mapper = map
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            pmap = stack.enter_context(ThreadPoolExecutor(max_workers=workers)).map
        if forked:
            shards = _run_shards(
                storage,
                repo_names,
                prefixes,
                processes,
                thorough,
                tag_links,
                lazy,
                progress,
                tasks_total,
            )
        else:
            counter = [0]

            def tick() -> None:
                counter[0] += 1
                if progress:
                    progress("scan", counter[0], tasks_total)

            shards = [
                _shard_results(storage, repo_names, prefixes, thorough, tag_links, lazy, tick)
            ]
        for shard in shards:
            for repo, rout in shard.repos:
                repositories[repo.name] = repo
                out.findings.extend(rout.findings)
                out.empty.extend(rout.empty)
            for part, missing, bout, complete in shard.blobs:
                blobs.update(part)
                no_data.update(missing)
                out.findings.extend(bout.findings)
                out.empty.extend(bout.empty)
                blobs_complete = blobs_complete and complete
        reader = _forked_reader(processes) if forked else _mapped_reader(pmap)
        # Prefix folders not all known (blobs/ or blobs/<alg> unreadable): any blob may exist.
        unknown_area = _unlisted_blobs(out.findings, not blobs_complete and not prefixes)
        manifests, unparseable = _load_manifests(
            storage, repositories, blobs, no_data, out, reader, progress, unknown_area
        )
    snap = Snapshot(
        v2=storage.v2,
        blobs=blobs,
        repositories=dict(sorted(repositories.items())),
        manifests=manifests,
        unparseable=unparseable,
        findings=out.findings,
        blobs_without_data=no_data,
        empty_dirs=sorted(out.empty),
        blobs_complete=blobs_complete,
        scanned_at=started,
        lazy=lazy and not thorough,
    )
    _finish_findings(snap)
    return snap


# --- repositories -------------------------------------------------------------------------


def _list(
    storage: LocalStorage, rel: str, out: _Out, *, repo: str | None = None, blocks: bool = True
) -> list[Entry] | None:
    return _listed(storage.list_dir, rel, out, repo=repo, blocks=blocks)


def _list_kinds(
    storage: LocalStorage, rel: str, out: _Out, *, repo: str | None = None, blocks: bool = True
) -> list[tuple[str, str]] | None:
    """Like :func:`_list` with (name, kind) only: no stat call per file."""
    return _listed(storage.list_kinds, rel, out, repo=repo, blocks=blocks)


def _listed(
    lister: Callable[[str], list[_E]],
    rel: str,
    out: _Out,
    *,
    repo: str | None = None,
    blocks: bool = True,
) -> list[_E] | None:
    try:
        entries = lister(rel)
    except PermissionError:
        out.add(Kind.UNREADABLE, rel, "permission denied listing folder", repo=repo, blocks=blocks)
    except FileNotFoundError:
        out.add(Kind.UNREADABLE, rel, "folder vanished during the scan", repo=repo, blocks=blocks)
    except NotADirectoryError:
        out.add(Kind.UNKNOWN_ENTRY, rel, "expected a folder, found a file", repo=repo)
    except OSError as exc:
        out.add(
            Kind.UNREADABLE, rel, f"cannot list folder: {exc.strerror}", repo=repo, blocks=blocks
        )
    else:
        if not entries:
            out.empty.append(rel)
        return entries
    return None


def _symlink(out: _Out, rel: str, repo: str | None = None) -> None:
    """Record a symbolic link that is not followed (uploads: nothing there is served)."""
    out.add(
        Kind.SYMLINK,
        rel,
        "symbolic link (not followed; nothing at or below it is ever deleted)",
        repo=repo,
        blocks=True,
    )


def _follow(storage: LocalStorage, rel: str, out: _Out, repo: str | None = None) -> str | None:
    """A symbolic link where the layout expects a folder or a file.

    The registry follows it and serves what it points to, so the scan reads through it for
    marking; the link is reported (it stops gc without ``--force``, and nothing at, below or
    containing it is ever deleted). Returns the kind it points to (``DIR``, ``FILE``,
    ``OTHER``), or None when it points nowhere (nothing can be served through it) or cannot be
    followed (then reported unreadable, which :mod:`regfs.graph.unread` widens what is kept for).
    """
    out.add(
        Kind.SYMLINK,
        rel,
        "symbolic link, followed for marking as the registry does; "
        "nothing at, below or containing it is deleted",
        repo=repo,
        blocks=True,
    )
    try:
        st = storage.stat(rel)
    except FileNotFoundError:
        return None
    except OSError as exc:
        out.add(
            Kind.UNREADABLE,
            rel,
            f"cannot follow symbolic link: {exc.strerror or exc}",
            repo=repo,
            blocks=True,
        )
        return None
    _target_inside(storage, rel, out, repo)
    if stat_mod.S_ISDIR(st.st_mode):
        return DIR
    return FILE if stat_mod.S_ISREG(st.st_mode) else OTHER


def _target_inside(storage: LocalStorage, rel: str, out: _Out, repo: str | None = None) -> None:
    """A symbolic link pointing inside the storage tree: what it points to is served through
    it too, so it is never deleted either (reported as a symbolic link's target)."""
    base = storage.realpath("")
    target = storage.realpath(rel)
    if target.startswith(base + "/"):
        out.add(
            Kind.SYMLINK,
            target[len(base) + 1 :],
            f"target of the symbolic link {rel}: served through it, never deleted",
            repo=repo,
            blocks=True,
        )


def _kind(storage: LocalStorage, rel: str, kind: str, out: _Out, repo: str | None = None) -> str:
    """``kind`` of a listed entry, with a symbolic link replaced by what it points to (``""``
    when it points nowhere or cannot be followed: skip it)."""
    if kind != SYMLINK:
        return kind
    return _follow(storage, rel, out, repo) or ""


def _is_symlink(storage: LocalStorage, rel: str) -> bool:
    """True when ``rel`` itself is a symbolic link (listing it would follow the link)."""
    try:
        return stat_mod.S_ISLNK(storage.lstat(rel).st_mode)
    except OSError:
        return False


# What the registry writes directly under v2 (and regfs's own state folder, which lives there
# when ROOT is a bare v2 folder: regfs.gc.plan.state_dir).
_V2_ENTRIES = {"blobs", "repositories", ".regfs"}


def _top_level(storage: LocalStorage, out: _Out) -> None:
    """Report what does not belong directly under v2 (``v2/stray.txt``): fsck only, never a
    reason to refuse gc (nothing deletes there)."""
    try:
        entries = storage.list_kinds("")
    except OSError:
        return  # the root was readable a moment ago; what is below reports itself
    for name, kind in sorted(entries):
        if name not in _V2_ENTRIES:
            what = {FILE: "file", DIR: "folder", SYMLINK: "symbolic link"}.get(kind, "entry")
            out.add(Kind.UNKNOWN_ENTRY, name, f"unexpected {what} directly under v2")


def _discover_repositories(storage: LocalStorage, out: _Out) -> list[tuple[str, set[str]]]:
    """Find every repository: a folder holding ``_manifests``, ``_layers`` or ``_uploads``."""
    found: list[tuple[str, set[str]]] = []
    if not storage.exists("repositories"):
        return found
    if _is_symlink(storage, "repositories") and _follow(storage, "repositories", out) != DIR:
        return found
    stack = [""]
    while stack:
        name = stack.pop()
        rel = f"repositories/{name}" if name else "repositories"
        listed = _list(storage, rel, out)
        if listed is None:
            continue
        entries = [
            e if e.kind != SYMLINK else e._replace(kind=_linked_dir(storage, rel, e.name, out))
            for e in listed
        ]
        parts = {e.name for e in entries if e.kind == DIR and e.name in REPO_PARTS}
        if parts and name:
            if not valid_repo_name(name):
                out.add(
                    Kind.BAD_NAME,
                    rel,
                    "not a valid repository name; the registry ignores it",
                    repo=name,
                )
            found.append((name, parts))
        for e in entries:
            child = f"{name}/{e.name}" if name else e.name
            crel = f"{rel}/{e.name}"
            if e.kind == "":
                continue  # a symbolic link to nothing, or one that cannot be followed
            if e.kind == DIR and e.name.startswith("_"):
                if e.name not in REPO_PARTS or not name:
                    out.add(Kind.UNKNOWN_ENTRY, crel, "unknown reserved folder")
            elif e.kind == DIR:
                stack.append(child)
            else:
                out.add(Kind.UNKNOWN_ENTRY, crel, "unexpected file among repositories")
    found.sort()
    return found


def _linked_dir(storage: LocalStorage, rel: str, name: str, out: _Out) -> str:
    """The kind a symbolic link among repositories points to; a link back to a folder above
    it (a loop the registry's walk would never leave) is reported unreadable and skipped."""
    crel = f"{rel}/{name}"
    kind = _kind(storage, crel, SYMLINK, out)
    if kind == DIR:
        target, here = storage.realpath(crel), storage.realpath(rel)
        if here == target or here.startswith(target.rstrip("/") + "/"):
            out.add(
                Kind.UNREADABLE,
                crel,
                "symbolic link loop (points to a folder above it)",
                blocks=True,
            )
            return ""
    return kind


def _read_link(
    storage: LocalStorage,
    rel: str,
    name_digest: str | None,
    out: _Out,
    *,
    repo: str,
    blocks: bool,
    unreadable_blocks: bool = True,
    follow: bool = False,
) -> Link | None:
    """Read and strictly parse a link file; None when it does not exist.

    A link file that is a symbolic link is reported and read through (the registry does).
    ``blocks`` says whether garbage content stops gc; a link that cannot be read at all stops
    it when ``unreadable_blocks``."""
    try:
        raw, _size, mtime = storage.read_file(rel, LINK_READ_LIMIT, follow=follow)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:  # the link file is a symbolic link
            if _follow(storage, rel, out, repo) != FILE:
                return Link(None, 0.0) if storage.exists(rel) else None
            return _read_link(
                storage,
                rel,
                name_digest,
                out,
                repo=repo,
                blocks=blocks,
                unreadable_blocks=unreadable_blocks,
                follow=True,
            )
        message = (
            "permission denied reading link"
            if isinstance(exc, PermissionError)
            else f"cannot read link: {exc.strerror or exc}"
        )
        out.add(
            Kind.UNREADABLE,
            rel,
            message,
            digest=name_digest,
            repo=repo,
            blocks=blocks or unreadable_blocks,
        )
        return Link(None, 0.0)
    if not raw:
        out.add(
            Kind.EMPTY_LINK,
            rel,
            "empty link file (a crash during a write leaves these)",
            digest=name_digest,
            repo=repo,
            blocks=blocks,
        )
        return Link(None, mtime)
    try:
        text = raw.decode("ascii")
        digest = parse_digest(text)
    except UnicodeDecodeError:
        out.add(
            Kind.BAD_LINK,
            rel,
            "link content is not ASCII",
            digest=name_digest,
            repo=repo,
            blocks=blocks,
        )
        return Link(None, mtime)
    except DigestError as exc:
        kind = Kind.UNKNOWN_ALGORITHM if exc.kind == "unknown_algorithm" else Kind.BAD_LINK
        msg = str(exc)
        if text.rstrip("\r\n") != text:
            msg = "link content ends with a newline; the registry cannot parse it"
        out.add(kind, rel, msg, digest=name_digest, repo=repo, blocks=blocks)
        return Link(None, mtime)
    if name_digest is not None and digest != name_digest:
        out.add(
            Kind.LINK_MISMATCH,
            rel,
            f"link names {digest} but its folder names {name_digest}",
            digest=name_digest,
            repo=repo,
            blocks=blocks,
        )
    return Link(digest, mtime)


def _scan_digest_links(
    storage: LocalStorage,
    rel: str,
    repo: str,
    out: _Out,
    *,
    blocks: bool,
    how: str,
    missing_ok: bool = False,
    unreadable_blocks: bool = True,
) -> tuple[dict[str, Link], bool]:
    """Scan ``<rel>/<alg>/<hex>/link`` folders; returns links by folder digest and completeness.

    ``how`` is ``list`` (list every digest folder and read its link: thorough), ``read`` (read
    the link straight away) or ``stat`` (only its type, size and mtime; the content is taken to
    match the folder name, as the registry's own enumeration does). ``blocks``: garbage link
    content stops gc; ``unreadable_blocks``: a folder or link that cannot be read stops it.
    Symbolic links are followed (reported), as the registry follows them.
    """
    links: dict[str, Link] = {}
    complete = True
    if missing_ok and not storage.exists(rel):
        return links, True
    algs = _list(storage, rel, out, repo=repo, blocks=unreadable_blocks)
    if algs is None:
        return links, False
    for a in algs:
        arel = f"{rel}/{a.name}"
        akind = _kind(storage, arel, a.kind, out, repo)
        if not akind:
            continue
        if akind != DIR:
            out.add(Kind.UNKNOWN_ENTRY, arel, "unexpected file", repo=repo)
            continue
        if a.name not in ALGORITHMS:
            out.add(Kind.UNKNOWN_ALGORITHM, arel, f"unknown digest algorithm {a.name!r}", repo=repo)
            continue
        hexes = _list(storage, arel, out, repo=repo, blocks=unreadable_blocks)
        if hexes is None:
            complete = False
            continue
        for h in hexes:
            hrel = f"{arel}/{h.name}"
            hkind = _kind(storage, hrel, h.kind, out, repo)
            if not hkind:
                continue
            if hkind != DIR or not is_hex_for(a.name, h.name):
                out.add(Kind.BAD_NAME, hrel, f"not a {a.name} digest folder", repo=repo)
                continue
            d = make_digest(a.name, h.name)
            link: Link | None = None
            if how == "names":
                links[d] = Link(d, 0.0)
                continue
            ub = unreadable_blocks
            if how == "read":
                link = _read_link(
                    storage, f"{hrel}/link", d, out, repo=repo, blocks=blocks, unreadable_blocks=ub
                )
            elif how == "stat":
                link = _stat_link(
                    storage, f"{hrel}/link", d, out, repo=repo, blocks=blocks, unreadable_blocks=ub
                )
            if link is None:
                # Thorough mode, or no link file where one was expected: look inside.
                ok, link = _leaf_folder(
                    storage, hrel, d, out, repo=repo, blocks=blocks, unreadable_blocks=ub
                )
                complete &= ok
            if link is not None:
                links[d] = link
    return links, complete


def _leaf_folder(
    storage: LocalStorage,
    hrel: str,
    d: str,
    out: _Out,
    *,
    repo: str,
    blocks: bool,
    unreadable_blocks: bool = True,
) -> tuple[bool, Link | None]:
    """List a digest folder and read its link; (listing succeeded, link or None)."""
    inner = _list_kinds(storage, hrel, out, repo=repo, blocks=unreadable_blocks)
    if inner is None:
        return False, Link(None, 0.0)
    has_link = False
    for name, kind in inner:
        if name == "link" and kind in (FILE, SYMLINK):
            has_link = True  # a symbolic link is read through (and reported) by _read_link
        elif kind == SYMLINK:
            _symlink(out, f"{hrel}/{name}", repo)
        else:
            out.add(
                Kind.UNKNOWN_ENTRY,
                f"{hrel}/{name}",
                "unknown entry next to a link",
                digest=d,
                repo=repo,
            )
    if not has_link:
        if inner:
            out.add(
                Kind.MISSING_LINK, hrel, "digest folder without a link file", digest=d, repo=repo
            )
        # An empty folder is what the registry leaves when it deletes a manifest (2.8) or a
        # layer link (v3 gc): harmless, recorded as empty and cleaned up by `regfs gc`.
        return True, None
    return True, _read_link(
        storage,
        f"{hrel}/link",
        d,
        out,
        repo=repo,
        blocks=blocks,
        unreadable_blocks=unreadable_blocks,
    )


def _stat_link(
    storage: LocalStorage,
    rel: str,
    d: str,
    out: _Out,
    *,
    repo: str,
    blocks: bool,
    unreadable_blocks: bool = True,
) -> Link | None:
    """Type, size and mtime of a link without reading it; None when it does not exist."""
    try:
        st = storage.lstat(rel)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as exc:
        out.add(
            Kind.UNREADABLE,
            rel,
            f"cannot stat link: {exc.strerror}",
            digest=d,
            repo=repo,
            blocks=blocks or unreadable_blocks,
        )
        return Link(None, 0.0)
    if stat_mod.S_ISLNK(st.st_mode):
        # Read through it, as the registry does (reported as a symbolic link).
        return _read_link(
            storage, rel, d, out, repo=repo, blocks=blocks, unreadable_blocks=unreadable_blocks
        )
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    if st.st_size == 0:
        out.add(
            Kind.EMPTY_LINK,
            rel,
            "empty link file (a crash during a write leaves these)",
            digest=d,
            repo=repo,
            blocks=blocks,
        )
        return Link(None, st.st_mtime)
    if st.st_size != len(d):
        return _read_link(storage, rel, d, out, repo=repo, blocks=blocks)
    return Link(d, st.st_mtime)


def _scan_repository(
    storage: LocalStorage,
    name: str,
    parts: set[str],
    thorough: bool,
    tag_links: bool = True,
    lazy: bool = False,
) -> tuple[Repository, _Out]:
    out = _Out()
    repo = Repository(name, "_manifests" in parts, "_layers" in parts, "_uploads" in parts)
    base = f"repositories/{name}"
    if repo.has_layers:
        # Garbage in a layer link breaks pulls, not the graph: reported, not blocking. A part
        # that cannot be read at all blocks (see regfs.graph.unread for what --force keeps).
        repo.layers, ok = _scan_digest_links(
            storage,
            f"{base}/_layers",
            name,
            out,
            blocks=False,
            how="list" if thorough else ("names" if lazy else "stat"),
        )
        repo.incomplete |= not ok
    if repo.has_manifests:
        ok = _scan_manifests_folder(storage, repo, out, thorough, tag_links)
        repo.incomplete |= not ok
    if repo.has_uploads:
        _scan_uploads(storage, repo, out)
    return repo, out


def _scan_manifests_folder(
    storage: LocalStorage, repo: Repository, out: _Out, thorough: bool, tag_links: bool = True
) -> bool:
    base = f"repositories/{repo.name}/_manifests"
    entries = _list(storage, base, out, repo=repo.name)
    if entries is None:
        return False
    complete = True
    for e in entries:
        rel = f"{base}/{e.name}"
        kind = _kind(storage, rel, e.kind, out, repo.name)
        if not kind:
            continue
        if e.name == "revisions" and kind == DIR:
            repo.revisions, ok = _scan_digest_links(
                storage, rel, repo.name, out, blocks=True, how="list" if thorough else "read"
            )
            complete &= ok
        elif e.name == "tags" and kind == DIR:
            complete &= _scan_tags(storage, repo, rel, out, thorough, tag_links)
        else:
            out.add(Kind.UNKNOWN_ENTRY, rel, "unknown entry in _manifests", repo=repo.name)
    return complete


def _history_names(storage: LocalStorage, rel: str, repo: str, out: _Out) -> dict[str, Link]:
    """Fast path for a tag's history: the digests its ``index`` names, no per-entry calls.

    Their mtimes are not read (0.0 = unknown): a re-push refreshes the revision link, which
    the grace period looks at, and the executor re-checks each entry's content instead.
    """
    links: dict[str, Link] = {}
    if _is_symlink(storage, rel) and _follow(storage, rel, out, repo) != DIR:
        return links  # reported; read through when it points to a folder
    try:
        algs = storage.list_kinds(rel)
    except FileNotFoundError:
        return links
    except OSError as exc:
        out.add(Kind.UNREADABLE, rel, f"cannot list folder: {exc.strerror}", repo=repo)
        return links
    if not algs:
        out.empty.append(rel)
    for alg, kind in algs:
        arel = f"{rel}/{alg}"
        kind = _kind(storage, arel, kind, out, repo)
        if not kind:
            continue
        if kind != DIR or alg not in ALGORITHMS:
            out.add(Kind.UNKNOWN_ENTRY, arel, "unexpected entry in a tag's index", repo=repo)
            continue
        try:
            names = storage.list_kinds(arel)
        except OSError as exc:
            out.add(Kind.UNREADABLE, arel, f"cannot list folder: {exc.strerror}", repo=repo)
            continue
        if not names:
            out.empty.append(arel)
        for h, hkind in names:
            if hkind == SYMLINK:
                hkind = _kind(storage, f"{arel}/{h}", hkind, out, repo)
            if hkind == DIR and is_hex_for(alg, h):
                d = make_digest(alg, h)
                links[d] = Link(d, 0.0)
            else:
                out.add(Kind.BAD_NAME, f"{arel}/{h}", f"not a {alg} digest folder", repo=repo)
    return links


def _scan_tags(
    storage: LocalStorage,
    repo: Repository,
    base: str,
    out: _Out,
    thorough: bool,
    tag_links: bool = True,
) -> bool:
    tags = _list(storage, base, out, repo=repo.name)
    if tags is None:
        return False
    complete = True
    for t in tags:
        trel = f"{base}/{t.name}"
        tkind = _kind(storage, trel, t.kind, out, repo.name)
        if not tkind:
            continue
        if tkind != DIR:
            out.add(Kind.UNKNOWN_ENTRY, trel, "unexpected file among tags", repo=repo.name)
            continue
        if not valid_tag(t.name):
            out.add(Kind.BAD_NAME, trel, "not a valid tag name", repo=repo.name)
        tag = Tag(t.name)
        if not thorough and not tag_links:
            # Names only: default-mode gc never looks at what tags point to.
            tag.current = Link(None, 0.0)
            repo.tags[t.name] = tag
            continue
        if not thorough:
            # Fast path: read current/link and list the history without listing every folder.
            tag.current = _read_link(
                storage, f"{trel}/current/link", None, out, repo=repo.name, blocks=True
            )
            if tag.current is not None:
                tag.index = _history_names(storage, f"{trel}/index", repo.name, out)
                repo.tags[t.name] = tag
                continue
        inner = _list(storage, trel, out, repo=repo.name)
        if inner is None:
            complete = False
            repo.tags[t.name] = tag
            continue
        for e in inner:
            rel = f"{trel}/{e.name}"
            ekind = _kind(storage, rel, e.kind, out, repo.name)
            if not ekind:
                continue
            if e.name == "current" and ekind == DIR:
                cur = _list(storage, rel, out, repo=repo.name)
                if cur is None:
                    complete = False
                    tag.current = Link(None, 0.0)
                    continue
                for c in cur:
                    if c.name == "link" and c.kind in (FILE, SYMLINK):
                        # A symbolic link is read through (and reported) by _read_link.
                        tag.current = _read_link(
                            storage, f"{rel}/link", None, out, repo=repo.name, blocks=True
                        )
                    elif c.kind == SYMLINK:
                        _symlink(out, f"{rel}/{c.name}", repo.name)
                    else:
                        out.add(
                            Kind.UNKNOWN_ENTRY,
                            f"{rel}/{c.name}",
                            "unknown entry next to a link",
                            repo=repo.name,
                        )
            elif e.name == "index" and ekind == DIR:
                # History entries are not references: a bad one is reported, nothing more.
                tag.index, _ok = _scan_digest_links(
                    storage,
                    rel,
                    repo.name,
                    out,
                    blocks=False,
                    how="list" if thorough else "stat",
                    unreadable_blocks=False,
                )
            else:
                out.add(Kind.UNKNOWN_ENTRY, rel, "unknown entry in a tag folder", repo=repo.name)
        if tag.current is None:
            out.add(
                Kind.MISSING_LINK,
                f"{trel}/current/link",
                "tag without a current link: the registry cannot resolve it",
                repo=repo.name,
            )
        repo.tags[t.name] = tag
    return complete


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_started_at(text: str) -> datetime:
    """Parse a registry ``startedat`` value (RFC 3339, possibly with nanoseconds)."""
    cleaned = _FRACTION.sub(r"\1", text.strip())
    value = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _scan_uploads(storage: LocalStorage, repo: Repository, out: _Out) -> None:
    """Every ``_uploads/<id>`` folder that holds a file is one upload.

    The registry writes ``startedat`` first (its own clock), then ``data`` and
    ``hashstates/<alg>/<offset>``. A cancelled upload (DELETE of the upload; also what a
    ``--registry-url`` probe of a writable 2.8.2 registry left) keeps only ``hashstates/...``:
    no ``startedat``, an upload all the same, aged by its id or its files (see
    :attr:`Upload.started`). Folders inside an upload are not reported as empty folders: the
    upload goes, or stays, as a whole. A folder holding no file at all is not an upload but
    what an interrupted removal leaves (the registry never leaves one, and answers 404 for
    its id): its folders are reported empty, and gc removes them as such.
    """
    base = f"repositories/{repo.name}/_uploads"
    entries = _list(storage, base, out, repo=repo.name, blocks=False)
    if entries is None:
        return
    for e in entries:
        rel = f"{base}/{e.name}"
        if e.kind == SYMLINK:
            _symlink(out, rel, repo.name)
            continue
        if e.kind != DIR:
            out.add(Kind.UNKNOWN_ENTRY, rel, "unexpected file among uploads", repo=repo.name)
            continue
        inner = _Out()
        files = _walk_upload(storage, rel, inner, repo.name)
        out.findings.extend(inner.findings)
        if inner.findings:
            continue  # not all of it could be read: what was reported keeps it
        if not files:
            out.empty.extend(inner.empty)
            continue
        size, mtime, started = 0, 0.0, None
        for frel, entry in files:
            mtime = max(mtime, entry.mtime)
            if frel == f"{rel}/data":
                size = entry.size
        if any(frel == f"{rel}/startedat" for frel, _ in files):
            try:
                raw, _, _ = storage.read_file(f"{rel}/startedat", 256)
                started = parse_started_at(raw.decode("ascii"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.add(
                    Kind.BAD_UPLOAD,
                    f"{rel}/startedat",
                    f"unreadable start time ({exc}); aged as an upload without one",
                    repo=repo.name,
                )
        repo.uploads[e.name] = Upload(e.name, started, size, mtime)


def _walk_upload(storage: LocalStorage, rel: str, out: _Out, repo: str) -> list[tuple[str, Entry]]:
    """Every entry below ``rel`` that is not a folder."""
    files: list[tuple[str, Entry]] = []
    stack = [rel]
    while stack:
        cur = stack.pop()
        entries = _list(storage, cur, out, repo=repo, blocks=False)
        for e in entries or ():
            erel = f"{cur}/{e.name}"
            if e.kind == DIR:
                stack.append(erel)
            elif e.kind == SYMLINK:
                _symlink(out, erel, repo)
            else:
                files.append((erel, e))
    return files


# --- blobs ----------------------------------------------------------------------------------


def _blob_prefixes(storage: LocalStorage, out: _Out) -> list[tuple[str, str]] | None:
    if not storage.exists("blobs"):
        return []
    if _is_symlink(storage, "blobs") and _follow(storage, "blobs", out) != DIR:
        return None
    algs = _list(storage, "blobs", out)
    if algs is None:
        return None
    prefixes: list[tuple[str, str]] = []
    for a in algs:
        arel = f"blobs/{a.name}"
        akind = _kind(storage, arel, a.kind, out)
        if not akind:
            continue
        if akind != DIR or a.name not in ALGORITHMS:
            out.add(Kind.UNKNOWN_ENTRY, arel, "unknown entry in blobs (not a known algorithm)")
            continue
        entries = _list(storage, arel, out)
        if entries is None:
            return None
        for p in entries:
            prel = f"{arel}/{p.name}"
            pkind = _kind(storage, prel, p.kind, out)
            if not pkind:
                continue
            if pkind != DIR or len(p.name) != 2 or not is_hex_for("sha256", p.name * 32):
                out.add(Kind.BAD_NAME, prel, "not a two-hex-digit blob prefix folder")
            else:
                prefixes.append((a.name, p.name))
    return prefixes


def _scan_blob_prefix(
    storage: LocalStorage, alg: str, prefix: str, thorough: bool = True, lazy: bool = False
) -> tuple[dict[str, Blob], set[str], _Out, bool]:
    out = _Out()
    blobs: dict[str, Blob] = {}
    missing: set[str] = set()
    prel = f"blobs/{alg}/{prefix}"
    entries = _list(storage, prel, out)
    if entries is None:
        return blobs, missing, out, False
    complete = True
    for h in entries:
        hrel = f"{prel}/{h.name}"
        hkind = _kind(storage, hrel, h.kind, out)
        if not hkind:
            continue
        if hkind != DIR or not is_hex_for(alg, h.name) or h.name[:2] != prefix:
            out.add(Kind.BAD_NAME, hrel, f"not a {alg} blob folder")
            continue
        d = make_digest(alg, h.name)
        if lazy:
            blobs[d] = LAZY_BLOB
            continue
        if not thorough:
            try:
                st = storage.lstat(f"{hrel}/data")
            except OSError:
                pass  # look inside, below
            else:
                if stat_mod.S_ISREG(st.st_mode):
                    blobs[d] = Blob(st.st_size, st.st_mtime)
                    if st.st_size == 0 and d != EMPTY_SHA256:
                        out.add(Kind.EMPTY_BLOB, f"{hrel}/data", "zero-byte blob data", digest=d)
                    continue
        inner = _list(storage, hrel, out, blocks=True)
        if inner is None:
            complete = False
            continue
        found = False
        for e in inner:
            if e.name == "data" and e.kind == SYMLINK:
                # The registry serves what it points to: a blob that is present (the link is
                # never deleted: gc keeps every blob folder holding a symbolic link).
                if _follow(storage, f"{hrel}/data", out) == FILE:
                    st = storage.stat(f"{hrel}/data")
                    found = True
                    blobs[d] = Blob(st.st_size, st.st_mtime)
            elif e.name == "data" and e.kind == FILE:
                found = True
                blobs[d] = Blob(e.size, e.mtime)
                if e.size == 0 and d != EMPTY_SHA256:
                    out.add(Kind.EMPTY_BLOB, f"{hrel}/data", "zero-byte blob data", digest=d)
            elif e.kind == SYMLINK:
                _symlink(out, f"{hrel}/{e.name}")
            else:
                out.add(
                    Kind.UNKNOWN_ENTRY,
                    f"{hrel}/{e.name}",
                    "unknown entry in a blob folder",
                    digest=d,
                )
        if not found:
            missing.add(d)
            out.add(Kind.MISSING_DATA, hrel, "blob folder without data", digest=d)
    return blobs, missing, out, complete


# --- manifests ------------------------------------------------------------------------------


def _unlisted_blobs(findings: list[Finding], nothing_known: bool) -> Callable[[str], bool]:
    """``unlisted(digest)``: True when the digest's blob folder lies in a part of ``blobs/``
    that could not be listed, so whether it is stored is unknown (not known absent)."""
    if nothing_known:
        return lambda _d: True
    areas = {
        f.path
        for f in findings
        if f.kind is Kind.UNREADABLE and f.path.startswith("blobs/") and f.path.count("/") >= 2
    }
    if not areas:
        return lambda _d: False

    def unlisted(d: str) -> bool:
        data = blob_data(d)
        folder = data.rsplit("/", 1)[0]
        return data in areas or folder in areas or folder.rsplit("/", 1)[0] in areas

    return unlisted


def _load_manifests(
    storage: LocalStorage,
    repositories: dict[str, Repository],
    blobs: dict[str, Blob],
    no_data: set[str],
    out: _Out,
    read_chunks: ChunkReader,
    progress: Progress | None,
    unlisted: Callable[[str], bool] = lambda _d: False,
) -> tuple[dict[str, Manifest], dict[str, str]]:
    """Read and parse each distinct manifest once: every revision, then index children.

    A manifest whose blob folder lies in a part of ``blobs/`` that could not be listed is
    read all the same: if it cannot be read either, it is recorded as unparseable (its
    references are unknown), never as missing.

    ``read_chunks(read, chunks, on_chunk)`` returns ``read(chunk)`` for every chunk in order,
    calling ``on_chunk(i)`` as each is done (in this process, threads or forked helpers)."""
    manifests: dict[str, Manifest] = {}
    unparseable: dict[str, str] = {}
    owner: dict[str, str] = {}
    wanted: list[str] = []
    for repo in repositories.values():
        for d in sorted(repo.revision_digests()):
            if d not in owner:
                owner[d] = repo.name
                wanted.append(d)
    total = len(wanted)
    done = 0

    reported = {f.path for f in out.findings if f.kind is Kind.SYMLINK}

    def read_chunk(chunk: list[str]) -> _Read:
        return [(d, *_read_manifest(storage, d)) for d in chunk]

    while wanted:
        present = [d for d in wanted if d in blobs or unlisted(d)]
        chunks = [present[k : k + MANIFEST_CHUNK] for k in range(0, len(present), MANIFEST_CHUNK)]
        nxt: list[str] = []

        def on_chunk(i: int, chunks: list[list[str]] = chunks, total: int = total) -> None:
            nonlocal done
            done += len(chunks[i])
            if progress:
                progress("manifests", done, total)

        for results in read_chunks(read_chunk, chunks, on_chunk):
            for d, res, linked in results:
                if linked and d in blobs and blob_data(d) not in reported:
                    # Read through, as the registry serves it; a blob gc then never deletes.
                    out.add(
                        Kind.SYMLINK,
                        blob_data(d),
                        "symbolic link, followed for marking as the registry does; "
                        "nothing at, below or containing it is deleted",
                        digest=d,
                        blocks=True,
                    )
                    _target_inside(storage, blob_data(d), out)
                if res is None:  # a lazy scan's blob folder without data
                    if d in blobs:
                        blobs.pop(d)
                        no_data.add(d)
                    continue
                if isinstance(res, Manifest):
                    manifests[d] = res
                    for child in res.children:
                        if child.digest not in owner:
                            owner[child.digest] = owner[d]
                            nxt.append(child.digest)
                else:
                    unparseable[d] = res
                    out.add(
                        Kind.UNPARSEABLE_MANIFEST,
                        blob_data(d),
                        res,
                        digest=d,
                        repo=owner.get(d),
                        blocks=True,
                    )
        total += len(nxt)
        wanted = nxt
    if progress:
        progress("manifests", total, total)
    return manifests, unparseable


def _read_manifest(storage: LocalStorage, digest: str) -> tuple[Manifest | str | None, bool]:
    """(the parsed manifest, an error message, or None when the data file does not exist;
    whether the data file is a symbolic link, read through as the registry would)."""
    rel = blob_data(digest)
    linked = False
    try:
        try:
            data, size, _ = storage.read_file(rel, MANIFEST_READ_LIMIT)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            linked = True
            data, size, _ = storage.read_file(rel, MANIFEST_READ_LIMIT, follow=True)
    except FileNotFoundError:
        return None, linked
    except OSError as exc:
        return f"cannot read manifest: {exc.strerror or exc}", linked
    if size > MANIFEST_READ_LIMIT:
        return f"manifest larger than {MANIFEST_READ_LIMIT} bytes", linked
    try:
        return parse_manifest(data), linked
    except ManifestError as exc:
        return f"unparseable manifest: {exc}", linked


def _finish_findings(snap: Snapshot) -> None:
    snap.findings.sort(key=lambda f: (f.path, str(f.kind)))


# --- parallel shards ------------------------------------------------------------------------


@dataclass(slots=True)
class _Shard:
    repos: list[tuple[Repository, _Out]]
    blobs: list[tuple[dict[str, Blob], set[str], _Out, bool]]


def _shard_results(
    storage: LocalStorage,
    repo_names: list[tuple[str, set[str]]],
    prefixes: list[tuple[str, str]],
    thorough: bool,
    tag_links: bool,
    lazy: bool,
    tick: Callable[[], None] | None = None,
) -> _Shard:
    repos = []
    for n, f in repo_names:
        repos.append(_scan_repository(storage, n, f, thorough, tag_links, lazy))
        if tick:
            tick()
    blob_parts = []
    for a, p in prefixes:
        blob_parts.append(_scan_blob_prefix(storage, a, p, thorough, lazy))
        if tick:
            tick()
    return _Shard(repos, blob_parts)


_Task = tuple[list[tuple[str, set[str]]], list[tuple[str, str]]]


def _tasks(
    repo_names: list[tuple[str, set[str]]], prefixes: list[tuple[str, str]], processes: int
) -> list[_Task]:
    """Repositories, then blob prefixes, in chunks small enough to balance the processes and
    large enough that each result is worth a message."""
    size = max(8, -(-len(repo_names) // (16 * processes)))
    tasks: list[_Task] = [(repo_names[k : k + size], []) for k in range(0, len(repo_names), size)]
    tasks += [([], prefixes[k : k + 16]) for k in range(0, len(prefixes), 16)]
    return tasks


def _pack_shard(shard: _Shard) -> bytes:
    packed = (
        [(codec.pack_repo(r), _pack_out(o)) for r, o in shard.repos],
        [(codec.pack_blobs(b), sorted(m), _pack_out(o), c) for b, m, o, c in shard.blobs],
    )
    return pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_shard(raw: bytes) -> _Shard:
    repos, blob_parts = pickle.loads(raw)
    return _Shard(
        [(codec.unpack_repo(r), _unpack_out(o)) for r, o in repos],
        [(codec.unpack_blobs(b), set(m), _unpack_out(o), c) for b, m, o, c in blob_parts],
    )


_Read = list[tuple[str, Manifest | str | None, bool]]
ChunkReader = Callable[
    [Callable[[list[str]], _Read], list[list[str]], Callable[[int], None]], Iterable[_Read]
]


def _mapped_reader(pmap: Mapper) -> ChunkReader:
    """Read manifest chunks here (``map``) or in threads (an executor's ``map``)."""

    def read_chunks(
        read: Callable[[list[str]], _Read], chunks: list[list[str]], on_chunk: Callable[[int], None]
    ) -> Iterator[_Read]:
        for i, result in enumerate(pmap(read, chunks)):
            on_chunk(i)
            yield result

    return read_chunks


def _forked_reader(processes: int) -> ChunkReader:
    """Read manifest chunks here and in forked helpers (see :mod:`regfs.forkpool`)."""

    def read_chunks(
        read: Callable[[list[str]], _Read], chunks: list[list[str]], on_chunk: Callable[[int], None]
    ) -> list[_Read]:
        return forkpool.run_tasks(
            chunks,
            read,
            pack=_pack_read,
            unpack=_unpack_read,
            processes=processes,
            on_result=on_chunk,
        )

    return read_chunks


def _pack_read(results: _Read) -> bytes:
    packed = [(d, codec.pack_manifest(m), linked) for d, m, linked in results]
    return pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_read(raw: bytes) -> _Read:
    return [(sys.intern(d), codec.unpack_manifest(m), lk) for d, m, lk in pickle.loads(raw)]


def _run_shards(
    storage: LocalStorage,
    repo_names: list[tuple[str, set[str]]],
    prefixes: list[tuple[str, str]],
    processes: int,
    thorough: bool,
    tag_links: bool,
    lazy: bool,
    progress: Progress | None,
    total: int,
) -> list[_Shard]:
    """Scan in this process and forked helpers sharing one task list (see :mod:`forkpool`)."""
    tasks = _tasks(repo_names, prefixes, processes)
    done = [0]

    def on_result(i: int) -> None:
        done[0] += len(tasks[i][0]) + len(tasks[i][1])
        if progress:
            progress("scan", done[0], total)

    return forkpool.run_tasks(
        tasks,
        lambda t: _shard_results(storage, t[0], t[1], thorough, tag_links, lazy),
        pack=_pack_shard,
        unpack=_unpack_shard,
        processes=processes,
        on_result=on_result,
    )


def _pack_out(o: _Out) -> tuple[list[tuple[Any, ...]], list[str]]:
    return codec.pack_findings(o.findings), o.empty


def _unpack_out(t: tuple[list[tuple[Any, ...]], list[str]]) -> _Out:
    o = _Out()
    o.findings = codec.unpack_findings(t[0])
    o.empty = t[1]
    return o


class Refresher:
    """Stats, on demand, the blobs and layer links a lazy scan knows by name only.

    Anything found missing, a symlink or unreadable is dropped from the snapshot (so it is
    never acted on) and reported as a finding.
    """

    def __init__(self, storage: LocalStorage, snap: Snapshot) -> None:
        self.storage = storage
        self.snap = snap

    def blobs(self, digests: Iterable[str]) -> None:
        if not self.snap.lazy:
            return
        out = _Out()
        for d in digests:
            blob = self.snap.blobs.get(d)
            if blob is None or blob.size >= 0:
                continue
            rel = blob_data(d)
            try:
                st = self.storage.lstat(rel)
            except FileNotFoundError:
                del self.snap.blobs[d]
                self.snap.blobs_without_data.add(d)
                folder = rel.rsplit("/", 1)[0]
                out.add(Kind.MISSING_DATA, folder, "blob folder without data", digest=d)
                _list(self.storage, folder, out)  # records it when empty (interrupted gc)
                self.snap.empty_dirs.extend(out.empty)
                out.empty.clear()
                continue
            except OSError as exc:
                del self.snap.blobs[d]
                out.add(Kind.UNREADABLE, rel, f"cannot stat: {exc.strerror}", digest=d, blocks=True)
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                del self.snap.blobs[d]
                if stat_mod.S_ISLNK(st.st_mode):
                    _symlink(out, rel)
                else:
                    out.add(Kind.UNKNOWN_ENTRY, rel, "not a regular file", digest=d)
                continue
            self.snap.blobs[d] = Blob(st.st_size, st.st_mtime)
        self.snap.findings.extend(out.findings)

    def layer_links(self, pairs: Iterable[tuple[str, str]]) -> None:
        if not self.snap.lazy:
            return
        out = _Out()
        for repo_name, d in pairs:
            repo = self.snap.repositories[repo_name]
            link = repo.layers.get(d)
            if link is None or link.mtime != 0.0:
                continue
            alg, hexpart = d.split(":", 1)
            rel = f"repositories/{repo_name}/_layers/{alg}/{hexpart}/link"
            fresh = _stat_link(self.storage, rel, d, out, repo=repo_name, blocks=False)
            if fresh is None or fresh.digest is None:
                del repo.layers[d]  # no usable link: nothing to act on
                if fresh is None:
                    self.snap.empty_dirs.append(rel.rsplit("/", 1)[0])
                continue
            repo.layers[d] = fresh
        self.snap.findings.extend(out.findings)
