"""gc/folders.py: the folders a plan leaves empty, and the scope rule of ``regfs rm``."""

from __future__ import annotations

from pathlib import Path

from builder import StoreBuilder
from hypothesis import given
from hypothesis import strategies as st

from regfs.gc.folders import _inside, folder_actions
from regfs.gc.steps import Action, Step
from regfs.layout import repo_dir, tag_dir
from regfs.scan import ScanMode, scan
from regfs.storage.local import LocalStorage

_PART = st.sampled_from(["a", "ab", "b", "a-b", "_uploads", "sha256"])
_PATH = st.lists(_PART, min_size=1, max_size=5).map("/".join)


@given(path=_PATH, folders=st.sets(_PATH, max_size=4))
def test_inside_is_the_prefix_rule(path: str, folders: set[str]) -> None:
    """Strictly below one of the folders, by whole path components (never ``ab`` in ``a``)."""
    expected = any(path.startswith(f + "/") for f in folders)
    assert _inside(path, folders) is expected


def test_a_scope_tidies_its_repositories_and_the_ones_nested_in_them(tmp_path: Path) -> None:
    """Already-empty folders are tidied only in the scope's repositories (and repositories
    nested in them, as ``team/app`` in ``team``), never in one whose name merely starts the
    same (``team2``)."""
    b = StoreBuilder(tmp_path / "t")
    for name in ("team", "team/app", "team2"):
        b.image(name, tags=["v1"])
        (b.v2 / repo_dir(name) / "_uploads").mkdir(parents=True)
    snap = scan(LocalStorage(str(b.v2)), mode=ScanMode.LAZY, workers=1)
    gone = [Action(Step.TAG, tag_dir("team", "v1"), "team")]
    folders = {a.path for a in folder_actions(snap, gone, {"team"})}
    assert f"{repo_dir('team')}/_uploads" in folders
    assert f"{repo_dir('team/app')}/_uploads" in folders
    assert f"{repo_dir('team2')}/_uploads" not in folders
    everywhere = {a.path for a in folder_actions(snap, gone, None)}
    assert f"{repo_dir('team2')}/_uploads" in everywhere
