"""One repository's folder: ``_layers``, ``_manifests`` (revisions and tags) and ``_uploads``."""

from __future__ import annotations

from regfs.layout import (
    LAYERS,
    LINK,
    MANIFESTS,
    TAG_CURRENT_LINK,
    TAG_HISTORY,
    UPLOADS,
    join,
    layers_dir,
    link_file,
    manifests_dir,
    tag_current_link,
    valid_tag,
)
from regfs.model.digest import ALGORITHMS, is_hex_for, make_digest
from regfs.model.findings import Kind
from regfs.model.snapshot import Link, Repository, ScanMode, Tag, not_read
from regfs.scan.links import LinkRead, digest_links, read_link
from regfs.scan.out import Out
from regfs.scan.uploads import scan_uploads
from regfs.scan.walk import follow, is_symlink, kind_of, list_entries, symlink
from regfs.storage.base import DIR, FILE, SYMLINK, Storage


def scan_repository(
    storage: Storage, name: str, parts: set[str], mode: ScanMode
) -> tuple[Repository, Out]:
    """Scan one repository (``parts``: which of its three reserved folders exist)."""
    out = Out()
    repo = Repository(name, MANIFESTS in parts, LAYERS in parts, UPLOADS in parts)
    if repo.has_layers:
        # Garbage in a layer link breaks pulls, not the graph: reported, not blocking. A part
        # that cannot be read at all blocks (see regfs.graph.unread for what --force keeps).
        how = LinkRead.LIST if mode.thorough else (LinkRead.NAMES if mode.lazy else LinkRead.STAT)
        repo.layers, ok = digest_links(storage, layers_dir(name), name, out, blocks=False, how=how)
        repo.incomplete |= not ok
    if repo.has_manifests:
        ok = _manifests_folder(storage, repo, out, mode)
        repo.incomplete |= not ok
    if repo.has_uploads:
        scan_uploads(storage, repo, out)
    return repo, out


def _manifests_folder(storage: Storage, repo: Repository, out: Out, mode: ScanMode) -> bool:
    base = manifests_dir(repo.name)
    entries = list_entries(storage, base, out, repo=repo.name)
    if entries is None:
        return False
    complete = True
    for e in entries:
        rel = join(base, e.name)
        kind = kind_of(storage, rel, e.kind, out, repo.name)
        if not kind:
            continue
        if e.name == "revisions" and kind == DIR:
            how = LinkRead.LIST if mode.thorough else LinkRead.READ
            repo.revisions, ok = digest_links(storage, rel, repo.name, out, blocks=True, how=how)
            complete &= ok
        elif e.name == "tags" and kind == DIR:
            complete &= _tags(storage, repo, rel, out, mode)
        else:
            out.add(Kind.UNKNOWN_ENTRY, rel, "unknown entry in _manifests", repo=repo.name)
    return complete


def _history_names(storage: Storage, rel: str, repo: str, out: Out) -> dict[str, Link]:
    """Fast path for a tag's history: the digests its ``index`` names, no per-entry calls.

    Their links are not read (known by name, mtime unknown): a re-push refreshes the revision
    link, which the grace period looks at, and the executor re-checks each entry's content.
    """
    links: dict[str, Link] = {}
    if is_symlink(storage, rel) and follow(storage, rel, out, repo) != DIR:
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
        arel = join(rel, alg)
        kind = kind_of(storage, arel, kind, out, repo)
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
                hkind = kind_of(storage, join(arel, h), hkind, out, repo)
            if hkind == DIR and is_hex_for(alg, h):
                d = make_digest(alg, h)
                links[d] = not_read(d)
            else:
                out.add(Kind.BAD_NAME, join(arel, h), f"not a {alg} digest folder", repo=repo)
    return links


def _tags(storage: Storage, repo: Repository, base: str, out: Out, mode: ScanMode) -> bool:
    tags = list_entries(storage, base, out, repo=repo.name)
    if tags is None:
        return False
    complete = True
    for t in tags:
        # tag_dir(repo.name, t.name): ``base`` is the repository's tags folder.
        trel = f"{base}/{t.name}"
        tkind = kind_of(storage, trel, t.kind, out, repo.name)
        if not tkind:
            continue
        if tkind != DIR:
            out.add(Kind.UNKNOWN_ENTRY, trel, "unexpected file among tags", repo=repo.name)
            continue
        if not valid_tag(t.name):
            out.add(Kind.BAD_NAME, trel, "not a valid tag name", repo=repo.name)
        tag = Tag(t.name)
        if not mode.reads_tags:
            # Names only: default-mode gc never looks at what tags point to.
            tag.current = not_read(None)
            repo.tags[t.name] = tag
            continue
        if not mode.thorough and not is_symlink(storage, join(trel, "current")):
            # Fast path: read current/link and list the history without listing every folder
            # (reading by path would follow a symbolic link ``current`` unreported: listed).
            # tag_current_link and tag_history_dir, from the tag's folder built once.
            tag.current = read_link(
                storage, f"{trel}/{TAG_CURRENT_LINK}", None, out, repo=repo.name, blocks=True
            )
            if tag.current is not None:
                tag.index = _history_names(storage, f"{trel}/{TAG_HISTORY}", repo.name, out)
                repo.tags[t.name] = tag
                continue
        listed = _tag_folder(storage, repo, tag, trel, out, mode)
        if listed is None:
            complete = False
            repo.tags[t.name] = tag
            continue
        complete &= listed
        if tag.current is None:
            out.add(
                Kind.MISSING_LINK,
                tag_current_link(repo.name, t.name),
                "tag without a current link: the registry cannot resolve it",
                repo=repo.name,
            )
        repo.tags[t.name] = tag
    return complete


def _tag_folder(
    storage: Storage, repo: Repository, tag: Tag, trel: str, out: Out, mode: ScanMode
) -> bool | None:
    """List a tag's folder: its ``current`` link and ``index`` history. None when the folder
    cannot be listed, False when a part of it (``current``) cannot."""
    inner = list_entries(storage, trel, out, repo=repo.name)
    if inner is None:
        return None
    complete = True
    for e in inner:
        rel = join(trel, e.name)
        ekind = kind_of(storage, rel, e.kind, out, repo.name)
        if not ekind:
            continue
        if e.name == "current" and ekind == DIR:
            cur = list_entries(storage, rel, out, repo=repo.name)
            if cur is None:
                complete = False
                tag.current = Link(None, 0.0)
                continue
            for c in cur:
                if c.name == LINK and c.kind in (FILE, SYMLINK):
                    # A symbolic link is read through (and reported) by read_link.
                    tag.current = read_link(
                        storage, link_file(rel), None, out, repo=repo.name, blocks=True
                    )
                elif c.kind == SYMLINK:
                    symlink(out, join(rel, c.name), repo.name)
                else:
                    out.add(
                        Kind.UNKNOWN_ENTRY,
                        join(rel, c.name),
                        "unknown entry next to a link",
                        repo=repo.name,
                    )
        elif e.name == "index" and ekind == DIR:
            # History entries are not references: a bad one is reported, nothing more.
            how = LinkRead.LIST if mode.thorough else LinkRead.STAT
            tag.index, _ok = digest_links(
                storage, rel, repo.name, out, blocks=False, how=how, unreadable_blocks=False
            )
        else:
            out.add(Kind.UNKNOWN_ENTRY, rel, "unknown entry in a tag folder", repo=repo.name)
    return complete
