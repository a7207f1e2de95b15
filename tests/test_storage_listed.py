"""regfs.storage.listed: a store's read side from one recursive listing, as a bucket lists it
(files only, with ETags), with link bodies proven by ETag, prefetched reads, and the parts that
could not be listed failing closed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from builder import StoreBuilder
from test_storage_memory_gc import build, to_memory

from regfs.storage.base import (
    DIR,
    FILE,
    Denied,
    ErrorKind,
    IsAFolder,
    ListError,
    NotFound,
    ObjectInfo,
    Storage,
    StorageError,
    Unavailable,
    storage_error,
)
from regfs.storage.listed import ListedStorage, proven_link_body
from regfs.storage.memory import MemoryStorage

D = "sha256:" + "ab" * 32
LAYER_LINK = f"repositories/app/_layers/sha256/{'ab' * 32}/link"


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Bucketish(MemoryStorage):
    """A memory store listed the way S3 lists: files only, each with the MD5 of its body as
    ETag (``etags`` overrides some), some prefixes failing; every read is counted."""

    def __init__(self, mem: MemoryStorage) -> None:
        super().__init__(mem.fs, mem.top)
        self.reads: list[str] = []
        self.etags: dict[str, str | None] = {}
        self.failing: set[str] = set()

    @property
    def prefers_listing(self) -> bool:
        return True

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        failed: set[str] = set()
        for item in super().list_prefix(rel):
            if isinstance(item, ListError) or item.kind == DIR:
                continue
            bad = next((p for p in self.failing if item.path.startswith(p + "/")), None)
            if bad is not None:
                if bad not in failed:
                    failed.add(bad)
                    err = storage_error(ErrorKind.UNAVAILABLE, "SlowDown", self.abspath(bad))
                    yield ListError(bad, err)
                continue
            data = self.fs.node(self.abspath(item.path)).data
            etag = self.etags.get(item.path, md5(data))
            yield item._replace(etag=etag)

    def read_file(self, rel: str, limit: int, *, follow: bool = False) -> tuple[bytes, int, float]:
        self.reads.append(rel)
        return super().read_file(rel, limit, follow=follow)


@pytest.fixture
def bucket(tmp_path: Path) -> Bucketish:
    b = StoreBuilder(tmp_path / "t")
    build(b)
    return Bucketish(to_memory(b.v2))


def test_it_is_a_storage(bucket: Bucketish) -> None:
    view = ListedStorage(bucket)
    assert isinstance(view, Storage)
    assert view.location == bucket.location and not view.prefers_listing


def test_folders_are_the_prefixes_of_the_files(bucket: Bucketish) -> None:
    view = ListedStorage(bucket)
    expected: dict[str, set[tuple[str, str]]] = {"": set()}
    for path, _kind in _files(bucket):
        parts = path.split("/")
        for i in range(len(parts)):
            head = "/".join(parts[:i])
            kind = FILE if i == len(parts) - 1 else DIR
            expected.setdefault(head, set()).add((parts[i], kind))
    for folder, entries in expected.items():
        assert {(e.name, e.kind) for e in view.list_dir(folder)} == entries, folder
        assert set(view.list_kinds(folder)) == entries
        if folder:
            assert view.lstat(folder).st_mode & 0o170000 == 0o040000
    files = dict(_files(bucket))
    listed = {i.path for i in view.list_prefix("") if isinstance(i, ObjectInfo)}
    assert listed == set(files)
    assert {i.path for i in view.list_prefix("blobs") if isinstance(i, ObjectInfo)} == {
        p for p in files if p.startswith("blobs/")
    }
    assert bucket.reads == []  # listing, stats and existence cost no read


def _files(storage: MemoryStorage) -> list[tuple[str, str]]:
    return [
        (i.path, i.kind)
        for i in MemoryStorage.list_prefix(storage, "")
        if isinstance(i, ObjectInfo) and i.kind == FILE
    ]


def test_stat_exists_and_missing(bucket: Bucketish) -> None:
    view = ListedStorage(bucket)
    path = next(p for p, _ in _files(bucket) if p.endswith("/data"))
    st = view.lstat(path)
    assert st.st_size == bucket.lstat(path).st_size
    assert view.exists(path) and view.exists("blobs") and not view.exists("nothing/here")
    with pytest.raises(NotFound):
        view.list_dir("repositories/nope")
    with pytest.raises(NotFound):
        view.read_file("repositories/nope/link", 10)
    with pytest.raises(IsAFolder):
        view.read_file("blobs", 10)
    assert bucket.reads == []


def test_link_bodies_proven_by_etag_need_no_read(bucket: Bucketish) -> None:
    view = ListedStorage(bucket)
    links = [p for p, _ in _files(bucket) if "/revisions/" in p and p.endswith("/link")]
    assert links and view.proven >= len(links)
    for p in links:
        data, size, _ = view.read_file(p, 4096)
        assert data == bucket.fs.node(bucket.abspath(p)).data and size == len(data)
    assert bucket.reads == []


def test_proven_link_body() -> None:
    body = D.encode()
    ok = ObjectInfo(LAYER_LINK, FILE, len(body), 1.0, md5(body))
    assert proven_link_body(ok) == body
    rev = ok._replace(path=f"repositories/a/b/_manifests/revisions/sha256/{'ab' * 32}/link")
    assert proven_link_body(rev) == body
    index = ok._replace(path=f"repositories/a/_manifests/tags/v1/index/sha256/{'ab' * 32}/link")
    assert proven_link_body(index) == body
    # Not proven: a multipart or encrypted ETag, a wrong size, a tag's current link, no ETag,
    # another digest's MD5, a link outside a digest folder.
    assert proven_link_body(ok._replace(etag=md5(body) + "-1")) is None
    assert proven_link_body(ok._replace(etag="0" * 32)) is None
    assert proven_link_body(ok._replace(size=len(body) + 1)) is None
    assert proven_link_body(ok._replace(etag=None)) is None
    assert proven_link_body(ok._replace(etag=md5(b"sha256:" + b"cd" * 32))) is None
    current = ok._replace(path="repositories/a/_manifests/tags/v1/current/link")
    assert proven_link_body(current) is None
    assert proven_link_body(ok._replace(path="repositories/a/_layers/link")) is None
    assert proven_link_body(ok._replace(etag=md5(body).upper())) == body


def test_an_etag_that_proves_nothing_means_a_read(bucket: Bucketish) -> None:
    links = [p for p, _ in _files(bucket) if "/revisions/" in p and p.endswith("/link")]
    proven = ListedStorage(bucket).proven
    bucket.etags = {p: "f" * 32 + "-1" for p in links}
    view = ListedStorage(bucket)
    assert view.proven == proven - len(links)
    view.read_file(links[0], 4096)
    assert bucket.reads == [links[0]]


def test_current_links_proven_by_their_history_need_no_read(bucket: Bucketish) -> None:
    current = [p for p, _ in _files(bucket) if p.endswith("/current/link")]
    assert current
    before = ListedStorage(bucket)
    for p in current:
        data, size, _ = before.read_file(p, 4096)
        assert data == bucket.fs.node(bucket.abspath(p)).data and size == len(data)
    assert bucket.reads == []
    # An ETag that is the MD5 of no digest in the tag's history proves nothing: read it.
    bucket.etags = {current[0]: md5(b"sha256:" + b"cd" * 32)}
    view = ListedStorage(bucket)
    assert view.proven == before.proven - 1
    view.read_file(current[0], 4096)
    assert bucket.reads == [current[0]]


def test_a_current_link_without_its_history_is_read(bucket: Bucketish) -> None:
    current = next(p for p, _ in _files(bucket) if p.endswith("/current/link"))
    history = current.rsplit("/", 2)[0] + "/index"
    bucket.failing = {history}  # its history not listed: nothing to prove it by
    view = ListedStorage(bucket)
    view.read_file(current, 4096)
    assert bucket.reads == [current]


def test_prefetch_reads_in_parallel_once_and_keeps(bucket: Bucketish) -> None:
    current = [p for p, _ in _files(bucket) if p.endswith("/current/link")]
    assert current
    bucket.etags = {p: "f" * 32 + "-1" for p in current}  # multipart: proves nothing
    view = ListedStorage(bucket, threads=4)
    assert view.prefetch([*current, *current, "not/listed/link"], 4096) == len(current)
    assert sorted(bucket.reads) == sorted(current)
    for p in current:
        assert view.read_file(p, 4096)[0] == bucket.fs.node(bucket.abspath(p)).data
        assert view.read_file(p, 3)[0] == bucket.fs.node(bucket.abspath(p)).data[:3]
    assert sorted(bucket.reads) == sorted(current)
    assert view.prefetch(current, 4096) == 0


def test_a_part_that_cannot_be_listed_fails_closed(bucket: Bucketish) -> None:
    bucket.failing = {"blobs/sha256", "repositories/app/_manifests"}
    view = ListedStorage(bucket)
    assert [e.path for e in view.list_errors] == ["blobs/sha256", "repositories/app/_manifests"]
    for rel in ("blobs/sha256", "repositories/app/_manifests/tags"):
        with pytest.raises(Unavailable):
            view.list_dir(rel)
        assert view.list_folder(rel).error is not None
        assert view.exists(rel + "/anything")  # maybe: not known absent
    assert {e.name for e in view.list_dir("blobs")} == {"sha256"}
    # A read there still asks the store (an object may be readable where listing failed).
    rev = next(p for p, _ in _files(bucket) if p.startswith("repositories/app/_manifests/"))
    assert view.read_file(rev, 4096)[0] == bucket.fs.node(bucket.abspath(rev)).data
    assert bucket.reads == [rev]
    errors = [i for i in view.list_prefix("blobs") if isinstance(i, ListError)]
    assert [e.path for e in errors] == ["blobs/sha256"]


def test_the_view_changes_nothing(bucket: Bucketish) -> None:
    view = ListedStorage(bucket)
    path = next(p for p, _ in _files(bucket))
    changes: list[Callable[[], object]] = [
        lambda: view.unlink(path),
        lambda: view.rmdir("blobs"),
        lambda: view.move_to_trash(path, "r1"),
        lambda: view.restore_from_trash("r1", path),
        lambda: view.make_folders("x"),
    ]
    for change in changes:
        with pytest.raises(Denied):
            change()
    assert bucket.exists(path)


class Listed(MemoryStorage):
    """A store whose listing is exactly ``items``."""

    def __init__(self, items: list[ObjectInfo | ListError]) -> None:
        super().__init__()
        self.items = items

    def list_prefix(self, rel: str) -> Iterator[ObjectInfo | ListError]:
        return iter(self.items)


def test_folders_from_sorted_paths_edge_cases() -> None:
    """Names sorting around ``/`` (``-`` before it, ``0`` after), a key ending in ``/``, a
    name that is both a file and a folder (a folder), a folder the backend names (empty),
    and a part that could not be listed (a folder in its parent)."""

    def f(path: str) -> ObjectInfo:
        return ObjectInfo(path, FILE, 1, 2.0, None)

    err = storage_error(ErrorKind.UNAVAILABLE, "SlowDown", "/x")
    view = ListedStorage(
        Listed(
            [
                f("a/b/c"),
                f("a/b-x/y"),
                f("a/b0"),
                f("a/b"),
                f("a/d/"),
                ObjectInfo("e/empty", DIR, 0, 0.0, None),
                ListError("a/gone", err),
                f("z"),
            ]
        )
    )
    assert sorted(view.list_kinds("")) == [("a", DIR), ("e", DIR), ("z", FILE)]
    assert sorted(view.list_kinds("a")) == [
        ("b", DIR),
        ("b-x", DIR),
        ("b0", FILE),
        ("d", DIR),
        ("gone", DIR),
    ]
    assert view.list_kinds("a/b") == [("c", FILE)]
    assert view.list_kinds("a/b-x") == [("y", FILE)]
    assert view.list_kinds("a/d") == []
    assert view.list_kinds("e") == [("empty", DIR)] and view.list_kinds("e/empty") == []
    with pytest.raises(Unavailable):
        view.list_dir("a/gone")
    with pytest.raises(NotFound):
        view.list_dir("a/c")
    with pytest.raises(StorageError) as not_a_folder:
        view.list_dir("z")
    assert not_a_folder.value.kind == ErrorKind.NOT_A_FOLDER
    assert view.exists("a/b") and view.exists("e/empty") and not view.exists("a/b1")
    assert view.lstat("a/b0").st_size == 1 and view.lstat("e").st_mode & 0o040000
    with pytest.raises(IsAFolder):
        view.read_file("a/b-x", 10)
