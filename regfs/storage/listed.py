"""A storage's read side answered from one recursive listing (for an object store).

On S3 a folder is a key prefix and every listing is a request; walking a registry folder by
folder costs one request per repository, tag and digest folder. :class:`ListedStorage` takes
one :meth:`~regfs.storage.base.Storage.list_prefix` of the whole store instead (the S3 backend
lists its shards in parallel), keeps every listed path in one sorted list, and answers the
scan's listings, stats and existence checks from it without another request: a folder is the
prefix of its entries' paths, found by bisection, so no folder is stored (a registry has about
as many folders as files, and a dictionary per folder made the view 1.6 KB per object; now
0.6 KB: benchmarks/README.md, "S3"). Reads go to the backend, except where the listing already
proves the content:

* a link in a digest folder (``…/<alg>/<hex>/link`` under ``_layers``,
  ``_manifests/revisions`` or a tag's ``index``) may only hold ``<alg>:<hex>``; when its ETag is
  the MD5 of that text (a plain ``PutObject``) and its size matches, its body is that text
  (:func:`proven_link_body`): no GET. Any other ETag (multipart, SSE-KMS) means a GET;
* a tag's ``current`` link holds one digest, and the registry writes the tag's history entry
  (``index/<alg>/<hex>/link``) before it: when its ETag is the MD5 of ``<alg>:<hex>`` for one
  of the history's folders, with the matching size, its body is that text
  (:meth:`ListedStorage._prove_current_links`): no GET. MD5 is broken for collisions, not for
  second preimages: no other body of that size has the MD5 of a given digest's text. A current
  link matching none of its history (another ETag, no history listed) is read;
* small files named by :meth:`ListedStorage.prefetch` are fetched at once in parallel threads
  and kept (tag ``current`` links, upload ``startedat`` files), so the scan's walk over the
  tree does no request of its own.

A part that could not be listed (a :class:`~regfs.storage.base.ListError`) raises its error
for every listing at or below it: the scan reports it unreadable and fails closed; reads
there still go to the backend (an object may be readable when its prefix is not listable).
The view is a snapshot of the moment it was listed and changes nothing: its change side
raises :class:`~regfs.storage.base.Denied`.
"""

from __future__ import annotations

import hashlib
import stat as stat_mod
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from regfs.layout import (
    LINK,
    LayerLink,
    RevisionLink,
    TagCurrentLink,
    TagIndexLink,
    parse_path,
)
from regfs.storage.base import (
    DIR,
    FILE,
    OTHER,
    SYMLINK,
    Denied,
    Entry,
    ErrorKind,
    IsAFolder,
    ListError,
    Listing,
    ObjectInfo,
    Stat,
    StatLike,
    Storage,
    StorageError,
    Stream,
    check_path,
    storage_error,
)

_FILE_MODE = stat_mod.S_IFREG | 0o644
_DIR_MODE = stat_mod.S_IFDIR | 0o755
_MODES = {SYMLINK: stat_mod.S_IFLNK | 0o777, OTHER: stat_mod.S_IFIFO | 0o644}


def proven_link_body(info: ObjectInfo) -> bytes | None:
    """The body of a digest folder's link file when its listing entry proves it, else None.

    A layer link, a revision link or a tag's history entry (:func:`regfs.layout.parse_path`)
    may only hold the digest its folder names; an ETag equal to the MD5 of that text with the
    matching size proves it does. Anything else (another ETag, a multipart or encrypted
    object's ETag, no ETag, a tag's ``current`` link) proves nothing: read it."""
    if info.etag is None or info.kind != FILE:
        return None
    spec = parse_path(info.path)
    if not isinstance(spec, LayerLink | RevisionLink | TagIndexLink):
        return None
    return _proves(info, spec.digest)


def _proves(info: ObjectInfo, digest: str) -> bytes | None:
    """``digest``'s text when the entry's size and ETag (its MD5) are those of that text."""
    body = digest.encode()
    if info.etag is None or info.size != len(body):
        return None
    expected = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return body if info.etag.lower() == expected else None


class ListedStorage:
    """The read side of ``backend`` from one recursive listing (see the module docstring).

    Args:
        backend: the store; its :meth:`list_prefix` is called once, here.
        threads: how many reads :meth:`prefetch` runs at once.
        on_listed: called with the number of entries listed so far, every 1,000.
    """

    def __init__(
        self,
        backend: Storage,
        *,
        threads: int = 16,
        on_listed: Callable[[int], None] | None = None,
    ) -> None:
        self.backend = backend
        self.threads = max(1, threads)
        self._files: dict[str, ObjectInfo] = {}
        # Folders are not stored: every listed path, sorted, answers them (a folder is a
        # prefix of its entries' paths; see :meth:`_children`). A part that could not be
        # listed, or a folder the backend names, stands in it as ``<path>/``.
        self._sorted: list[str] = []
        self._errors: dict[str, StorageError] = {}
        self._bodies: dict[str, tuple[bytes, int, float]] = {}
        self._proven: dict[str, str] = {}  # a link path -> the digest it holds (proven)
        self.proven = 0  # link bodies the listing proved (no GET)
        # Per tag (repository, tag): its current link's entry, and its history's digests.
        self._current: dict[tuple[str, str], ObjectInfo] = {}
        self._history: dict[tuple[str, str], list[str]] = {}
        n = 0
        folders: list[str] = []
        for item in backend.list_prefix(""):
            if isinstance(item, ListError):
                self._errors[item.path] = item.error
                if item.path:
                    folders.append(item.path + "/")
            elif item.kind == DIR:
                folders.append(item.path + "/")
            else:
                self._add_file(item)
            n += 1
            if on_listed is not None and n % 1000 == 0:
                on_listed(n)
        if on_listed is not None:
            on_listed(n)
        self.entries = n
        self._sorted = sorted([*self._files, *folders])
        self._prove_current_links()

    def _add_file(self, info: ObjectInfo) -> None:
        self._files[info.path] = info
        if info.kind != FILE or not info.path.endswith("/" + LINK):
            return
        spec = parse_path(info.path)
        if isinstance(spec, TagCurrentLink):
            if info.etag is not None:
                self._current[(spec.repo, spec.tag)] = info
            return
        if isinstance(spec, TagIndexLink):
            self._history.setdefault((spec.repo, spec.tag), []).append(spec.digest)
        if (
            isinstance(spec, LayerLink | RevisionLink | TagIndexLink)
            and _proves(info, spec.digest) is not None
        ):
            self._proven[info.path] = spec.digest
            self.proven += 1

    def _prove_current_links(self) -> None:
        """Keep the body of each tag ``current`` link whose ETag is the MD5 of one of its
        tag's history digests (see the module docstring); the others are read."""
        for key, info in self._current.items():
            for digest in self._history.get(key, ()):
                if _proves(info, digest) is not None:
                    self._proven[info.path] = digest
                    self.proven += 1
                    break
        self._current.clear()
        self._history.clear()

    # --- what was listed ---------------------------------------------------------------------

    @property
    def list_errors(self) -> list[ListError]:
        """The parts that could not be listed."""
        return [ListError(p, e) for p, e in sorted(self._errors.items())]

    def files(self) -> Iterator[ObjectInfo]:
        """Every file listed (no order promised)."""
        return iter(self._files.values())

    def _error_at(self, rel: str) -> StorageError | None:
        """The listing error of ``rel`` or of a part above it."""
        if not self._errors:
            return None
        cur = rel
        while True:
            err = self._errors.get(cur)
            if err is not None:
                return err
            if not cur:
                return None
            cur = cur.rpartition("/")[0]

    def prefetch(self, rels: Iterable[str], limit: int) -> int:
        """Read these files (at most ``limit`` bytes each) in parallel threads and keep them:
        later :meth:`read_file` calls are answered without a request. Files not listed, and
        those the listing proved, are skipped; a read that fails is not kept (the scan reads
        it again and reports its error). Returns how many were fetched."""
        todo = [
            r
            for r in dict.fromkeys(rels)
            if r in self._files and r not in self._bodies and r not in self._proven
        ]
        if not todo:
            return 0

        def one(rel: str) -> tuple[str, tuple[bytes, int, float] | None]:
            try:
                return rel, self.backend.read_file(rel, limit)
            except OSError:
                return rel, None

        with ThreadPoolExecutor(max_workers=min(self.threads, len(todo))) as pool:
            for rel, got in pool.map(one, todo):
                if got is not None and (len(got[0]) == got[1] or len(got[0]) >= limit):
                    self._bodies[rel] = got
        return len(todo)

    # --- Storage: identity -------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The backend's location."""
        return self.backend.location

    def abspath(self, rel: str) -> str:
        """``rel`` as the backend shows it."""
        return self.backend.abspath(rel)

    @property
    def prefers_listing(self) -> bool:
        """Already listed: walk the view."""
        return False

    # --- Storage: read side ------------------------------------------------------------------

    def list_dir(self, rel: str) -> list[Entry]:
        """The folder's entries as listed; the error of a part that could not be listed;
        :class:`~regfs.storage.base.NotFound` for a folder that is not there."""
        if rel:
            check_path(rel)
        err = self._error_at(rel)
        if err is not None:
            raise err
        entries = self._children(rel)
        if entries is None:
            if rel in self._files:
                raise storage_error(ErrorKind.NOT_A_FOLDER, None, self.abspath(rel))
            raise storage_error(ErrorKind.NOT_FOUND, "no such prefix", self.abspath(rel))
        return entries

    def _children(self, rel: str) -> list[Entry] | None:
        """The entries of folder ``rel``; None when nothing was listed below it (the top is
        always a folder). Each sub-folder is stepped over in one bisection (``0`` is the
        character after ``/``); a name that is both a file and a folder is a folder."""
        start = f"{rel}/" if rel else ""
        paths = self._sorted
        i = bisect_left(paths, start)
        end = len(paths)
        found: dict[str, Entry] = {}
        while i < end:
            path = paths[i]
            if not path.startswith(start):
                break
            rest = path[len(start) :]
            slash = rest.find("/")
            if not rest:  # the folder's own mark (a part not listed, a folder named)
                i += 1
                continue
            if slash < 0:
                info = self._files[path]
                found.setdefault(rest, Entry(rest, info.kind, info.size, info.mtime))
                i += 1
                continue
            name = rest[:slash]
            if name:
                found[name] = Entry(name, DIR, 0, 0.0)
            i = bisect_left(paths, f"{start}{name}0", i)
        if not found and rel and not self._is_dir(rel):
            return None
        return list(found.values())

    def _is_dir(self, rel: str) -> bool:
        """Whether something was listed below ``rel`` (the top always is a folder)."""
        if not rel:
            return True
        start = f"{rel}/"
        i = bisect_left(self._sorted, start)
        return i < len(self._sorted) and self._sorted[i].startswith(start)

    def list_kinds(self, rel: str) -> list[tuple[str, str]]:
        """``(name, kind)`` of each entry."""
        return [(e.name, e.kind) for e in self.list_dir(rel)]

    def list_folder(self, rel: str) -> Listing:
        """:meth:`list_dir` with the error as a value."""
        try:
            return Listing(rel, self.list_dir(rel))
        except StorageError as exc:
            return Listing(rel, [], exc)

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        """What was listed below ``rel`` (files, and the parts that could not be listed)."""
        start = f"{rel}/" if rel else ""
        for path, err in self._errors.items():
            if path == rel or path.startswith(start):
                yield ListError(path, err)
        for path, info in self._files.items():
            if path.startswith(start):
                yield info

    def lstat(self, rel: str) -> StatLike:
        """Kind, size, mtime (and ETag) as listed."""
        info = self._files.get(rel)
        if info is not None:
            mode = _FILE_MODE if info.kind == FILE else _MODES.get(info.kind, 0)
            return Stat(mode, info.size, info.mtime, info.etag)
        if self._is_dir(rel):
            return Stat(_DIR_MODE, 0, 0.0, None)
        err = self._error_at(rel)
        if err is not None:
            return self.backend.lstat(rel)
        raise storage_error(ErrorKind.NOT_FOUND, None, self.abspath(rel))

    def stat(self, rel: str) -> StatLike:
        """:meth:`lstat` (a listing has no links to follow)."""
        return self.lstat(rel)

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` was listed (or lies in a part that could not be: maybe)."""
        return rel in self._files or self._is_dir(rel) or self._error_at(rel) is not None

    def realpath(self, rel: str) -> str:
        """``rel`` itself (no links)."""
        return self.abspath(rel)

    def read_file(self, rel: str, limit: int, *, follow: bool = False) -> tuple[bytes, int, float]:
        """A proven or prefetched body without a request, else the backend's read. A path
        the listing does not hold is :class:`~regfs.storage.base.NotFound` (a folder:
        :class:`~regfs.storage.base.IsAFolder`), unless it lies in a part that could not be
        listed (then the backend is asked)."""
        digest = self._proven.get(rel)
        if digest is not None:
            info = self._files[rel]
            body = digest.encode()
            return body[:limit] if limit >= 0 else body, info.size, info.mtime
        kept = self._bodies.get(rel)
        if kept is not None:
            data, size, mtime = kept
            return data[:limit] if limit >= 0 else data, size, mtime
        if rel in self._files or self._error_at(rel) is not None:
            return self.backend.read_file(rel, limit, follow=follow)
        if self._is_dir(rel):
            raise IsAFolder(21, "a prefix, not an object", self.abspath(rel))
        raise storage_error(ErrorKind.NOT_FOUND, None, self.abspath(rel))

    def open_stream(self, rel: str) -> Stream:
        """The backend's stream."""
        return self.backend.open_stream(rel)

    def close_streams(self) -> None:
        """The backend's."""
        self.backend.close_streams()

    # --- Storage: change side (none: a view) -------------------------------------------------

    def _read_only(self, rel: str) -> Denied:
        return Denied(13, "a listing is read-only", self.abspath(rel))

    def unlink(self, rel: str) -> None:
        """Refused: the view changes nothing."""
        raise self._read_only(rel)

    def rmdir(self, rel: str) -> None:
        """Refused: the view changes nothing."""
        raise self._read_only(rel)

    def move_to_trash(self, rel: str, run_id: str) -> None:
        """Refused: the view changes nothing."""
        raise self._read_only(rel)

    def restore_from_trash(self, run_id: str, rel: str) -> None:
        """Refused: the view changes nothing."""
        raise self._read_only(rel)

    def in_trash(self, run_id: str, rel: str) -> bool:
        """The backend's answer."""
        return self.backend.in_trash(run_id, rel)

    def make_folders(self, rel: str) -> None:
        """Refused: the view changes nothing."""
        raise self._read_only(rel)
