"""One blob prefix folder (``blobs/<alg>/<xx>``): every blob folder in it, and its ``data``."""

from __future__ import annotations

import stat as stat_mod

from regfs.layout import DATA, blob_prefix_dir, data_file, join
from regfs.model.digest import is_hex_for, make_digest
from regfs.model.findings import Kind
from regfs.model.snapshot import LAZY_BLOB, Blob, ScanMode
from regfs.scan.interpret import BlobPart, blob_of
from regfs.scan.out import Out
from regfs.scan.walk import follow, kind_of, list_entries, symlink
from regfs.storage.base import DIR, FILE, SYMLINK, Storage


def scan_blob_prefix(storage: Storage, alg: str, prefix: str, mode: ScanMode) -> BlobPart:
    """(blobs by digest, digests of folders without data, findings, listed completely).

    A lazy mode takes blobs from folder names alone; a fast one stats each ``data`` file and
    lists the folder only when that fails; a full one lists every folder."""
    out = Out()
    blobs: dict[str, Blob] = {}
    missing: set[str] = set()
    prel = blob_prefix_dir(alg, prefix)
    entries = list_entries(storage, prel, out)
    if entries is None:
        return blobs, missing, out, False
    complete = True
    lazy, thorough = mode.lazy, mode.thorough
    for h in entries:
        hrel = join(prel, h.name)
        hkind = kind_of(storage, hrel, h.kind, out)
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
                st = storage.lstat(data_file(hrel))
            except OSError:
                pass  # look inside, below
            else:
                if stat_mod.S_ISREG(st.st_mode):
                    blobs[d] = blob_of(d, st.st_size, st.st_mtime, data_file(hrel), out)
                    continue
        inner = list_entries(storage, hrel, out, blocks=True)
        if inner is None:
            complete = False
            continue
        found = False
        for e in inner:
            if e.name == DATA and e.kind == SYMLINK:
                # The registry serves what it points to: a blob that is present (the link is
                # never deleted: gc keeps every blob folder holding a symbolic link).
                if follow(storage, data_file(hrel), out) == FILE:
                    st = storage.stat(data_file(hrel))
                    found = True
                    blobs[d] = Blob(st.st_size, st.st_mtime)
            elif e.name == DATA and e.kind == FILE:
                found = True
                blobs[d] = blob_of(d, e.size, e.mtime, data_file(hrel), out)
            elif e.kind == SYMLINK:
                symlink(out, join(hrel, e.name))
            else:
                out.add(
                    Kind.UNKNOWN_ENTRY,
                    join(hrel, e.name),
                    "unknown entry in a blob folder",
                    digest=d,
                )
        if not found:
            missing.add(d)
            out.add(Kind.MISSING_DATA, hrel, "blob folder without data", digest=d)
    return blobs, missing, out, complete
