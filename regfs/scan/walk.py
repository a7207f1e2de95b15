"""The enumerate step's primitives: list a folder, follow a symbolic link, record what was met.

Every listing goes through the storage's read methods (``list_dir``, ``list_kinds``, ``stat``,
``lstat``, ``exists``, ``realpath``); a folder that cannot be listed becomes a finding in an
:class:`~regfs.scan.out.Out` buffer, never an exception. The walks built on these live in
:mod:`regfs.scan.tree` (repositories, blob prefixes), :mod:`regfs.scan.repository`,
:mod:`regfs.scan.blobs` and :mod:`regfs.scan.links`.
"""

from __future__ import annotations

import stat as stat_mod
from collections.abc import Callable
from typing import TypeVar

from regfs.model.findings import Kind
from regfs.scan.out import Out
from regfs.storage.base import DIR, FILE, OTHER, SYMLINK, Entry, Storage

_E = TypeVar("_E")

SYMLINK_FOLLOWED = (
    "symbolic link, followed for marking as the registry does; "
    "nothing at, below or containing it is deleted"
)


def list_entries(
    storage: Storage, rel: str, out: Out, *, repo: str | None = None, blocks: bool = True
) -> list[Entry] | None:
    """The entries of a folder (kind, size, mtime), or None when it cannot be listed."""
    return _listed(storage.list_dir, rel, out, repo=repo, blocks=blocks)


def list_kinds(
    storage: Storage, rel: str, out: Out, *, repo: str | None = None, blocks: bool = True
) -> list[tuple[str, str]] | None:
    """Like :func:`list_entries` with (name, kind) only: no stat call per file."""
    return _listed(storage.list_kinds, rel, out, repo=repo, blocks=blocks)


def _listed(
    lister: Callable[[str], list[_E]],
    rel: str,
    out: Out,
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


def symlink(out: Out, rel: str, repo: str | None = None) -> None:
    """Record a symbolic link that is not followed (uploads: nothing there is served)."""
    out.add(
        Kind.SYMLINK,
        rel,
        "symbolic link (not followed; nothing at or below it is ever deleted)",
        repo=repo,
        blocks=True,
    )


def follow(storage: Storage, rel: str, out: Out, repo: str | None = None) -> str | None:
    """A symbolic link where the layout expects a folder or a file.

    The registry follows it and serves what it points to, so the scan reads through it for
    marking; the link is reported (it stops gc without ``--force``, and nothing at, below or
    containing it is ever deleted). Returns the kind it points to (``DIR``, ``FILE``,
    ``OTHER``), or None when it points nowhere (nothing can be served through it) or cannot be
    followed (then reported unreadable, which :mod:`regfs.graph.unread` widens what is kept for).
    """
    out.add(Kind.SYMLINK, rel, SYMLINK_FOLLOWED, repo=repo, blocks=True)
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
    target_inside(storage, rel, out, repo)
    if stat_mod.S_ISDIR(st.st_mode):
        return DIR
    return FILE if stat_mod.S_ISREG(st.st_mode) else OTHER


def target_inside(storage: Storage, rel: str, out: Out, repo: str | None = None) -> None:
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


def kind_of(storage: Storage, rel: str, kind: str, out: Out, repo: str | None = None) -> str:
    """``kind`` of a listed entry, with a symbolic link replaced by what it points to (``""``
    when it points nowhere or cannot be followed: skip it)."""
    if kind != SYMLINK:
        return kind
    return follow(storage, rel, out, repo) or ""


def is_symlink(storage: Storage, rel: str) -> bool:
    """True when ``rel`` itself is a symbolic link (listing it would follow the link)."""
    try:
        return stat_mod.S_ISLNK(storage.lstat(rel).st_mode)
    except OSError:
        return False
