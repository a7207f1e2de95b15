"""The gc protocol's vocabulary: steps and statuses as enums with their JSON values, actions
checked through the layout when read back, the executor's exhaustive dispatch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from builder import StoreBuilder
from gc_helpers import age_tree, fingerprint
from hypothesis import given
from hypothesis import strategies as st

from regfs.gc.execute import Executor
from regfs.gc.plan import GcOptions
from regfs.gc.refresh import build_plan
from regfs.gc.steps import (
    STEP_LEVEL,
    STEP_ORDER,
    Action,
    Status,
    Step,
    parse_status,
    parse_step,
    step_rank,
)
from regfs.layout import blob_dir, layer_dir, revision_dir, tag_dir
from regfs.layout.folders import LayoutError, check_rel
from regfs.scan import Refresher, ScanMode, scan
from regfs.storage.local import LocalStorage

D = "sha256:" + "ab" * 32


def test_values_are_the_documented_strings() -> None:
    assert [s.value for s in Step] == [
        "tag",
        "tag_index",
        "revision",
        "layer_link",
        "upload",
        "blob",
        "folder",
    ]
    assert [s.value for s in Status] == ["done", "skipped", "gone", "failed"]
    assert tuple(Step) == STEP_ORDER and [step_rank(s) for s in Step] == list(range(7))
    assert set(STEP_LEVEL) == set(Step) - {Step.FOLDER}
    assert f"{Step.LAYER_LINK}" == "layer_link" and str(Status.GONE) == "gone"


def test_parse_step_and_status() -> None:
    assert parse_step("blob") is Step.BLOB and parse_status("done") is Status.DONE
    bad: object
    for bad in ["BLOB", "", None, 3, "folder/"]:
        with pytest.raises(LayoutError):
            parse_step(bad)
        with pytest.raises(LayoutError):
            parse_status(bad)


def _plan(tmp_path: Path) -> list[Action]:
    b = StoreBuilder(tmp_path / "s")
    old = b.image("app", tags=["v1"], layers=[b.layer("old")])
    b.image("app", tags=["v1"], layers=[b.layer("new")])
    b.orphan_blob(b"orphan", repo="app")
    b.upload("app", started_at="2020-01-02T03:04:05Z")
    gone = b.image("gone/repo", tags=["t"], layers=[b.layer("gone")])
    b.delete_manifest("gone/repo", gone.digest)
    assert old.digest
    age_tree(b.root)
    storage = LocalStorage(str(b.v2))
    snap = scan(storage, workers=1, mode=ScanMode.LAZY)
    opts = GcOptions(delete_untagged=True, min_age=0)
    return build_plan(snap, opts, refresh=Refresher(storage, snap)).actions


def test_every_planned_action_round_trips(tmp_path: Path) -> None:
    actions = _plan(tmp_path)
    assert {a.step for a in actions} >= {
        Step.REVISION,
        Step.LAYER_LINK,
        Step.UPLOAD,
        Step.BLOB,
        Step.FOLDER,
    }
    for a in actions:
        d = a.as_dict()
        assert type(d["step"]) is str  # the journal holds plain strings
        back = Action.from_dict(d)
        assert back == a and type(back.step) is Step


GOOD: dict[str, Any] = {
    "step": "blob",
    "path": blob_dir(D),
    "repository": None,
    "digest": D,
    "size": 3,
    "expect_size": 3,
    "expect_mtime": 1.5,
}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"step": "rm_rf"}, "unknown step"),
        ({"step": None}, "unknown step"),
        ({"path": "../../etc"}, "not a path of the registry storage layout"),
        ({"path": "/etc/passwd"}, "not a path of the registry storage layout"),
        ({"path": "blobs/sha256/ab/../../../x"}, "not a path of the registry storage layout"),
        ({"path": 7}, "not a path"),
        ({"path": layer_dir("app", D)}, "is not the folder of a blob step"),
        ({"step": "tag", "path": tag_dir("app", "v1"), "repository": "web"}, "not in repository"),
        ({"step": "revision", "path": revision_dir("app", D)}, "not in repository"),
        ({"digest": "sha256:xyz"}, "not a digest"),
        ({"size": True}, "size is not a size"),
        ({"size": -1}, "size is not a size"),
        ({"expect_mtime": "now"}, "expect_mtime is not a number"),
        ({"repository": ["app"]}, "repository is not a string"),
    ],
)
def test_tampered_actions_are_refused(change: dict[str, Any], why: str) -> None:
    assert Action.from_dict(GOOD).step is Step.BLOB
    with pytest.raises(LayoutError, match=why):
        Action.from_dict({**GOOD, **change})


def test_not_a_dict_is_refused() -> None:
    bad: object
    for bad in [None, [], "blob", 3]:
        with pytest.raises(LayoutError, match="not an action"):
            Action.from_dict(bad)


@given(
    st.dictionaries(
        st.sampled_from(["step", "path", "repository", "digest", "size", "expect_mtime"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.floats(allow_nan=False),
            st.sampled_from([s.value for s in Step]),
            st.text(alphabet="abc/._-:0123456789", max_size=40),
            st.sampled_from([blob_dir(D), layer_dir("a", D), "blobs/sha256", "repositories/a"]),
        ),
    )
)
def test_whatever_is_read_back_is_a_layout_path_or_refused(d: dict[str, Any]) -> None:
    try:
        a = Action.from_dict(d)
    except LayoutError:
        return
    assert check_rel(a.path) == a.path and a.step in set(Step)


def test_an_unknown_step_never_reaches_a_deletion(tmp_path: Path) -> None:
    """The dispatch is exhaustive: a step that is not a Step (only possible by bypassing the
    types) stops the executor with nothing deleted, instead of being taken for a folder."""
    b = StoreBuilder(tmp_path / "s")
    b.image("app", tags=["v1"], layers=[b.layer("x")])
    age_tree(b.root)
    before = fingerprint(b.root)
    storage = LocalStorage(str(b.v2))
    snap = scan(storage, workers=1)
    plan = build_plan(snap, GcOptions(min_age=0), now=time.time())
    bogus = Action("rmtree", "repositories/app")  # type: ignore[arg-type]
    plan.actions = [bogus]
    with pytest.raises(AssertionError):
        Executor(plan, journal=None, trash_run=None, storage=storage).run()
    assert fingerprint(b.root) == before
