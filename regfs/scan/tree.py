"""The top of the walk: what lies directly under v2, every repository, every blob prefix."""

from __future__ import annotations

from regfs.layout import (
    BLOBS,
    REPO_PARTS,
    REPOSITORIES,
    blob_alg_dir,
    join,
    repo_dir,
    valid_repo_name,
)
from regfs.model.digest import ALGORITHMS, is_hex_for
from regfs.model.findings import Kind
from regfs.scan.out import Out
from regfs.scan.walk import follow, is_symlink, kind_of, list_entries
from regfs.storage.base import DIR, FILE, SYMLINK, Storage

# What the registry writes directly under v2 (and regfs's own state folder, which lives there
# when ROOT is a bare v2 folder: regfs.gc.plan.state_dir).
_V2_ENTRIES = {BLOBS, REPOSITORIES, ".regfs"}


def top_level(storage: Storage, out: Out) -> None:
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


def discover_repositories(storage: Storage, out: Out) -> list[tuple[str, set[str]]]:
    """Find every repository: a folder holding ``_manifests``, ``_layers`` or ``_uploads``.

    Returns (name, the reserved folders it holds), sorted by name."""
    found: list[tuple[str, set[str]]] = []
    if not storage.exists(REPOSITORIES):
        return found
    if is_symlink(storage, REPOSITORIES) and follow(storage, REPOSITORIES, out) != DIR:
        return found
    stack = [""]
    while stack:
        name = stack.pop()
        rel = repo_dir(name)
        listed = list_entries(storage, rel, out)
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
            child = join(name, e.name)
            crel = join(rel, e.name)
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


def _linked_dir(storage: Storage, rel: str, name: str, out: Out) -> str:
    """The kind a symbolic link among repositories points to; a link back to a folder above
    it (a loop the registry's walk would never leave) is reported unreadable and skipped."""
    crel = join(rel, name)
    kind = kind_of(storage, crel, SYMLINK, out)
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


def blob_prefixes(storage: Storage, out: Out) -> list[tuple[str, str]] | None:
    """Every ``blobs/<alg>/<two hex digits>`` folder as (alg, prefix); None when ``blobs`` or
    one of its algorithm folders cannot be listed (which blobs exist is then not known)."""
    if not storage.exists(BLOBS):
        return []
    if is_symlink(storage, BLOBS) and follow(storage, BLOBS, out) != DIR:
        return None
    algs = list_entries(storage, BLOBS, out)
    if algs is None:
        return None
    prefixes: list[tuple[str, str]] = []
    for a in algs:
        arel = blob_alg_dir(a.name)
        akind = kind_of(storage, arel, a.kind, out)
        if not akind:
            continue
        if akind != DIR or a.name not in ALGORITHMS:
            out.add(Kind.UNKNOWN_ENTRY, arel, "unknown entry in blobs (not a known algorithm)")
            continue
        entries = list_entries(storage, arel, out)
        if entries is None:
            return None
        for p in entries:
            prel = join(arel, p.name)
            pkind = kind_of(storage, prel, p.kind, out)
            if not pkind:
                continue
            if pkind != DIR or len(p.name) != 2 or not is_hex_for("sha256", p.name * 32):
                out.add(Kind.BAD_NAME, prel, "not a two-hex-digit blob prefix folder")
            else:
                prefixes.append((a.name, p.name))
    return prefixes
