"""Repository and tag names from folder listings alone (no scan): what shell completion
needs, fast, and nothing when a folder cannot be listed."""

from __future__ import annotations

from regfs.layout import join, repo_dir, tags_dir
from regfs.storage.base import DIR, Storage


def repository_names(storage: Storage) -> list[str]:
    """Every folder holding ``_manifests``, sorted; folders that cannot be listed are
    passed over."""
    out: list[str] = []
    stack = [""]
    while stack:
        prefix = stack.pop()
        try:
            kinds = storage.list_kinds(repo_dir(prefix))
        except OSError:
            continue
        names = {name for name, kind in kinds if kind == DIR}
        if "_manifests" in names:
            out.append(prefix)
        stack.extend(join(prefix, n) for n in names if not n.startswith("_"))
    return sorted(out)


def tag_names(storage: Storage, repo: str) -> list[str]:
    """The tag folders of ``repo``, sorted; none when they cannot be listed."""
    try:
        kinds = storage.list_kinds(tags_dir(repo))
    except OSError:
        return []
    return sorted(name for name, kind in kinds if kind == DIR)
