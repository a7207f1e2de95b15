"""Stat, on demand, what a lazy scan knows by name only (see :class:`Refresher`)."""

from __future__ import annotations

import stat as stat_mod
from collections.abc import Iterable

from regfs.layout import blob_data, blob_dir, layer_dir, link_file
from regfs.model.findings import Kind
from regfs.model.snapshot import Blob, Snapshot
from regfs.scan.links import stat_link
from regfs.scan.out import Out
from regfs.scan.walk import list_entries, symlink
from regfs.storage.base import Storage


class Refresher:
    """Stats, on demand, the blobs and layer links a lazy scan knows by name only.

    Anything found missing, a symlink or unreadable is dropped from the snapshot (so it is
    never acted on) and reported as a finding.
    """

    def __init__(self, storage: Storage, snap: Snapshot) -> None:
        self.storage = storage
        self.snap = snap

    def blobs(self, digests: Iterable[str]) -> None:
        """Stat the ``data`` file of each blob known by name only."""
        if not self.snap.lazy:
            return
        out = Out()
        for d in digests:
            blob = self.snap.blobs.get(d)
            if blob is None or blob.stated:
                continue
            rel = blob_data(d)
            try:
                st = self.storage.lstat(rel)
            except FileNotFoundError:
                del self.snap.blobs[d]
                self.snap.blobs_without_data.add(d)
                folder = blob_dir(d)
                out.add(Kind.MISSING_DATA, folder, "blob folder without data", digest=d)
                list_entries(self.storage, folder, out)  # records it when empty (interrupted gc)
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
                    symlink(out, rel)
                else:
                    out.add(Kind.UNKNOWN_ENTRY, rel, "not a regular file", digest=d)
                continue
            self.snap.blobs[d] = Blob(st.st_size, st.st_mtime)
        self.snap.findings.extend(out.findings)

    def layer_links(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Stat the ``_layers`` link of each (repository, digest) known by name only."""
        if not self.snap.lazy:
            return
        out = Out()
        for repo_name, d in pairs:
            repo = self.snap.repositories[repo_name]
            link = repo.layers.get(d)
            if link is None or not link.not_read:
                continue
            rel = link_file(layer_dir(repo_name, d))
            fresh = stat_link(self.storage, rel, d, out, repo=repo_name, blocks=False)
            if fresh is None or fresh.digest is None:
                del repo.layers[d]  # no usable link: nothing to act on
                if fresh is None:
                    self.snap.empty_dirs.append(layer_dir(repo_name, d))
                continue
            repo.layers[d] = fresh
        self.snap.findings.extend(out.findings)
