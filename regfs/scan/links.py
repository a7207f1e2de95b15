"""Link files: find them (``<alg>/<hex>/link`` folders), read or stat them, and parse them.

How much is read per link is a :class:`LinkRead`, chosen by the scan mode for each part of a
repository; the content is parsed by :func:`regfs.scan.interpret.link_of`.
"""

from __future__ import annotations

import errno
import stat as stat_mod
from enum import Enum

from regfs.layout import LINK, join, link_file
from regfs.model.digest import ALGORITHMS, is_hex_for, make_digest
from regfs.model.findings import Kind
from regfs.model.snapshot import Link, not_read
from regfs.scan.interpret import EMPTY_LINK, LINK_READ_LIMIT, link_of
from regfs.scan.out import Out
from regfs.scan.walk import follow, kind_of, list_entries, list_kinds, symlink
from regfs.storage.base import DIR, FILE, SYMLINK, Storage


class LinkRead(Enum):
    """How a part's ``<alg>/<hex>/link`` files are taken in.

    ``LIST``: list every digest folder and read its link (thorough). ``READ``: read the link
    straight away. ``STAT``: only its type, size and mtime (the content is taken to match the
    folder name, as the registry's own enumeration does). ``NAMES``: the folder name alone.
    """

    LIST = "list"
    READ = "read"
    STAT = "stat"
    NAMES = "names"


def read_link(
    storage: Storage,
    rel: str,
    name_digest: str | None,
    out: Out,
    *,
    repo: str,
    blocks: bool,
    unreadable_blocks: bool = True,
    through: bool = False,
) -> Link | None:
    """Read and strictly parse a link file; None when it does not exist.

    A link file that is a symbolic link is reported and read through (the registry does).
    ``blocks`` says whether garbage content stops gc; a link that cannot be read at all stops
    it when ``unreadable_blocks``."""
    try:
        raw, _size, mtime = storage.read_file(rel, LINK_READ_LIMIT, follow=through)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not through:  # the link file is a symbolic link
            if follow(storage, rel, out, repo) != FILE:
                return Link(None, 0.0) if storage.exists(rel) else None
            return read_link(
                storage,
                rel,
                name_digest,
                out,
                repo=repo,
                blocks=blocks,
                unreadable_blocks=unreadable_blocks,
                through=True,
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
    return link_of(raw, mtime, rel, name_digest, out, repo=repo, blocks=blocks)


def stat_link(
    storage: Storage,
    rel: str,
    d: str,
    out: Out,
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
        return read_link(
            storage, rel, d, out, repo=repo, blocks=blocks, unreadable_blocks=unreadable_blocks
        )
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    if st.st_size == 0:
        out.add(Kind.EMPTY_LINK, rel, EMPTY_LINK, digest=d, repo=repo, blocks=blocks)
        return Link(None, st.st_mtime)
    if st.st_size != len(d):
        return read_link(storage, rel, d, out, repo=repo, blocks=blocks)
    return Link(d, st.st_mtime)


def digest_links(
    storage: Storage,
    rel: str,
    repo: str,
    out: Out,
    *,
    blocks: bool,
    how: LinkRead,
    unreadable_blocks: bool = True,
) -> tuple[dict[str, Link], bool]:
    """Scan ``<rel>/<alg>/<hex>/link`` folders; returns links by folder digest and completeness.

    ``blocks``: garbage link content stops gc; ``unreadable_blocks``: a folder or link that
    cannot be read stops it. Symbolic links are followed (reported), as the registry does.
    """
    links: dict[str, Link] = {}
    complete = True
    algs = list_entries(storage, rel, out, repo=repo, blocks=unreadable_blocks)
    if algs is None:
        return links, False
    for a in algs:
        arel = join(rel, a.name)
        akind = kind_of(storage, arel, a.kind, out, repo)
        if not akind:
            continue
        if akind != DIR:
            out.add(Kind.UNKNOWN_ENTRY, arel, "unexpected file", repo=repo)
            continue
        if a.name not in ALGORITHMS:
            out.add(Kind.UNKNOWN_ALGORITHM, arel, f"unknown digest algorithm {a.name!r}", repo=repo)
            continue
        hexes = list_entries(storage, arel, out, repo=repo, blocks=unreadable_blocks)
        if hexes is None:
            complete = False
            continue
        for h in hexes:
            hrel = join(arel, h.name)
            hkind = kind_of(storage, hrel, h.kind, out, repo)
            if not hkind:
                continue
            if hkind != DIR or not is_hex_for(a.name, h.name):
                out.add(Kind.BAD_NAME, hrel, f"not a {a.name} digest folder", repo=repo)
                continue
            d = make_digest(a.name, h.name)
            link: Link | None = None
            if how is LinkRead.NAMES:
                links[d] = not_read(d)
                continue
            ub = unreadable_blocks
            if how is LinkRead.READ:
                link = read_link(
                    storage, link_file(hrel), d, out, repo=repo, blocks=blocks, unreadable_blocks=ub
                )
            elif how is LinkRead.STAT:
                link = stat_link(
                    storage, link_file(hrel), d, out, repo=repo, blocks=blocks, unreadable_blocks=ub
                )
            if link is None:
                # Thorough mode, or no link file where one was expected: look inside.
                ok, link = leaf_folder(
                    storage, hrel, d, out, repo=repo, blocks=blocks, unreadable_blocks=ub
                )
                complete &= ok
            if link is not None:
                links[d] = link
    return links, complete


def leaf_folder(
    storage: Storage,
    hrel: str,
    d: str,
    out: Out,
    *,
    repo: str,
    blocks: bool,
    unreadable_blocks: bool = True,
) -> tuple[bool, Link | None]:
    """List a digest folder and read its link; (listing succeeded, link or None)."""
    inner = list_kinds(storage, hrel, out, repo=repo, blocks=unreadable_blocks)
    if inner is None:
        return False, Link(None, 0.0)
    has_link = False
    for name, kind in inner:
        if name == LINK and kind in (FILE, SYMLINK):
            has_link = True  # a symbolic link is read through (and reported) by read_link
        elif kind == SYMLINK:
            symlink(out, join(hrel, name), repo)
        else:
            out.add(
                Kind.UNKNOWN_ENTRY,
                join(hrel, name),
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
    return True, read_link(
        storage,
        link_file(hrel),
        d,
        out,
        repo=repo,
        blocks=blocks,
        unreadable_blocks=unreadable_blocks,
    )
