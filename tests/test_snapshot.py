"""regfs.model.snapshot: the small behaviours of the scan's data."""

from __future__ import annotations

from regfs.model.snapshot import Link, Repository, Tag, iter_links

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def test_revision_digests_include_folder_names_and_link_contents() -> None:
    repo = Repository("app")
    repo.revisions = {A: Link(A, 1.0), B: Link(C, 2.0), C: Link(None, 3.0)}
    assert repo.revision_digests() == {A, B, C}


def test_iter_links_yields_every_role() -> None:
    repo = Repository("app")
    repo.layers = {A: Link(A, 1.0)}
    repo.revisions = {B: Link(B, 2.0)}
    repo.tags = {"v1": Tag("v1", Link(B, 3.0), {B: Link(B, 4.0)}), "gone": Tag("gone")}
    got = [(role, key, link.mtime) for role, key, link in iter_links(repo)]
    assert got == [
        ("layer", A, 1.0),
        ("revision", B, 2.0),
        ("tag", "v1", 3.0),
        ("tag_index", B, 4.0),
    ]


def test_not_read_and_unreadable_are_different_values() -> None:
    from regfs.model.snapshot import LinkState, Tag, not_read

    unreadable = Link(None, 0.0)
    names_only = not_read(None)
    assert unreadable != names_only
    assert unreadable.unreadable and not unreadable.not_read
    assert names_only.not_read and not names_only.unreadable
    assert names_only.state is LinkState.NOT_READ and names_only.target_unknown
    by_name = not_read(A)
    assert by_name.digest == A and by_name.not_read and not by_name.target_unknown
    assert Tag("t", unreadable).target is None
    assert Tag("t", Link(A, 1.0)).target == A
    assert Tag("t").target is None


def test_a_tag_known_by_name_only_has_no_target_to_give() -> None:
    import pytest

    from regfs.model.snapshot import LinkNotRead, Tag, not_read

    with pytest.raises(LinkNotRead):
        _ = Tag("v1", not_read(None)).target


def test_a_blob_known_by_name_only_has_no_size_to_give() -> None:
    import pytest

    from regfs.model.snapshot import LAZY_BLOB, Blob, SizeUnknown

    assert Blob(3, 1.0).known_size == 3 and Blob(3, 1.0).stated
    assert LAZY_BLOB.size is None and not LAZY_BLOB.stated
    with pytest.raises(SizeUnknown):
        _ = LAZY_BLOB.known_size
