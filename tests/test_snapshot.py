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
