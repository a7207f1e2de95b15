"""regfs.layout: the path algebra, both ways."""

from __future__ import annotations

import re
import uuid as uuid_mod
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from regfs.layout import (
    REPO_NAME_MAX,
    BlobData,
    LayerLink,
    PathSpec,
    RevisionLink,
    TagCurrentLink,
    TagIndexLink,
    UploadDir,
    blob_data,
    blob_dir,
    layer_dir,
    parse_path,
    path_of,
    repo_dir,
    revision_dir,
    safe_name,
    tag_dir,
    tag_index_dir,
    upload_dir,
    valid_repo_name,
    valid_tag,
)
from regfs.layout.folders import (
    Folder,
    LayoutError,
    Level,
    check_rel,
    check_run_id,
    folder_path,
    parse_folder,
)
from regfs.model.digest import ALGORITHMS
from regfs.model.snapshot import upload_id_time

H = "ab" + "0123456789abcdef" * 3 + "0123456789abcd"
D = "sha256:" + H
assert len(H) == 64

COMPONENT = re.compile(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,6}){0,2}")


@st.composite
def digests(draw: st.DrawFn) -> str:
    alg = draw(st.sampled_from(sorted(ALGORITHMS)))
    n = ALGORITHMS[alg]
    return alg + ":" + draw(st.text("0123456789abcdef", min_size=n, max_size=n))


repo_names = (
    st.lists(st.from_regex(COMPONENT, fullmatch=True), min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda n: len(n) <= REPO_NAME_MAX)
)
tags = st.from_regex(re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}"), fullmatch=True)
uuids = st.uuids().map(str) | st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1
).filter(lambda u: u not in (".", ".."))

specs: st.SearchStrategy[PathSpec] = st.one_of(
    st.builds(BlobData, digests()),
    st.builds(LayerLink, repo_names, digests()),
    st.builds(RevisionLink, repo_names, digests()),
    st.builds(TagCurrentLink, repo_names, tags),
    st.builds(TagIndexLink, repo_names, tags, digests()),
    st.builds(UploadDir, repo_names, uuids),
)


@given(specs)
def test_parse_path_inverts_path_of(spec: PathSpec) -> None:
    path = path_of(spec)
    assert not path.startswith("/")
    assert parse_path(path) == spec


def _path_alphabet() -> st.SearchStrategy[str]:
    pieces = st.sampled_from(
        [
            "blobs",
            "repositories",
            "sha256",
            "sha512",
            "md5",
            "ab",
            H,
            H.upper(),
            "data",
            "link",
            "_layers",
            "_manifests",
            "_uploads",
            "revisions",
            "tags",
            "current",
            "index",
            "app",
            "org",
            "v1",
            "_x",
            "",
            "App",
            "a..b",
            "-x",
            "\u00e9",
            "sha256:" + H,
        ]
    )
    return st.lists(pieces, min_size=1, max_size=9).map("/".join)


@given(_path_alphabet() | st.text(max_size=60))
@example(f"blobs/sha256/ab/{H}/data")
@example(f"blobs/sha256/cd/{H}/data")
@example(f"repositories/app/_manifests/tags/{'v' * 129}/current/link")
def test_parse_path_accepts_only_paths_it_would_write(path: str) -> None:
    spec = parse_path(path)
    if spec is not None:
        assert path_of(spec) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "blobs",
        f"blobs/sha256/ab/{H}",
        f"blobs/sha256/cd/{H}/data",  # prefix disagrees with the hex
        f"blobs/sha256/AB/{H.upper()}/data",
        f"blobs/md5/ab/{H}/data",
        f"blobs/sha256/ab/{H}/data/extra",
        f"blobs/sha256/ab/{H[:-1]}/data",
        f"repositories/app/_layers/sha256/{H}",
        f"repositories/app/_layers/sha256/{H}/data",
        f"repositories/app/_layers/sha256/{H.upper()}/link",
        f"repositories/app/_layers/md5/{H}/link",
        f"repositories/_layers/sha256/{H}/link",  # no repository name
        f"repositories/App/_layers/sha256/{H}/link",  # uppercase name
        f"repositories/a--/_layers/sha256/{H}/link",
        f"repositories/app/_manifests/revisions/sha256/{H}",
        f"repositories/app/_manifests/revisions/sha256/{H}/link/x",
        "repositories/app/_manifests/tags/v1/current",
        "repositories/app/_manifests/tags/v1/current/data",
        "repositories/app/_manifests/tags/-v1/current/link",
        "repositories/app/_manifests/tags/.v1/current/link",
        f"repositories/app/_manifests/tags/{'v' * 129}/current/link",
        "repositories/app/_manifests/tags/v\u00e9/current/link",  # Go's \w is ASCII
        f"repositories/app/_manifests/tags/v1/index/sha256/{H}",
        "repositories/app/_uploads",
        "repositories/app/_uploads/",
        "repositories/app/_uploads/..",
        "repositories/app/_uploads/.",
        "repositories/app/_uploads/u/data",
        "repositories/app/_other/x/y",
        "repositories/app",
        "repositories/app/v1",
        f"other/app/_layers/sha256/{H}/link",
        f"/repositories/app/_layers/sha256/{H}/link",
    ],
)
def test_parse_path_rejects_junk(path: str) -> None:
    assert parse_path(path) is None


def test_parse_path_examples() -> None:
    assert parse_path(f"blobs/sha256/ab/{H}/data") == BlobData(D)
    assert parse_path(f"repositories/org/team/app/_layers/sha256/{H}/link") == LayerLink(
        "org/team/app", D
    )
    assert parse_path(f"repositories/app/_manifests/revisions/sha256/{H}/link") == RevisionLink(
        "app", D
    )
    assert parse_path("repositories/a/b/_manifests/tags/v1.0_rc-2/current/link") == (
        TagCurrentLink("a/b", "v1.0_rc-2")
    )
    assert parse_path(f"repositories/app/_manifests/tags/latest/index/sha256/{H}/link") == (
        TagIndexLink("app", "latest", D)
    )
    assert parse_path("repositories/app/_uploads/0f1e-2d") == UploadDir("app", "0f1e-2d")


def test_digests_from_parsed_paths_are_interned() -> None:
    spec = parse_path(f"blobs/sha256/ab/{H}/data")
    other = parse_path(f"repositories/x/_layers/sha256/{H}/link")
    assert isinstance(spec, BlobData)
    assert isinstance(other, LayerLink)
    assert spec.digest == D
    assert spec.digest is other.digest


def test_builders() -> None:
    assert blob_dir(D) == f"blobs/sha256/ab/{H}"
    assert blob_data(D) == f"blobs/sha256/ab/{H}/data"
    assert repo_dir("org/app") == "repositories/org/app"
    assert layer_dir("app", D) == f"repositories/app/_layers/sha256/{H}"
    assert revision_dir("app", D) == f"repositories/app/_manifests/revisions/sha256/{H}"
    assert tag_dir("app", "v1") == "repositories/app/_manifests/tags/v1"
    assert tag_index_dir("app", "v1", D) == f"repositories/app/_manifests/tags/v1/index/sha256/{H}"
    assert upload_dir("app", "u1") == "repositories/app/_uploads/u1"
    current = path_of(TagCurrentLink("app", "v1"))
    assert current == "repositories/app/_manifests/tags/v1/current/link"
    assert path_of(UploadDir("app", "u1")) == "repositories/app/_uploads/u1"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("app", True),
        ("org/team/app", True),
        ("a.b_c__d-e---f", True),
        ("a" * REPO_NAME_MAX, True),
        ("a" * (REPO_NAME_MAX + 1), False),
        ("", False),
        ("App", False),
        ("_app", False),
        ("app/", False),
        ("/app", False),
        ("a//b", False),
        ("a..b", False),
        ("a___b", False),
        ("-a", False),
        ("a-", False),
        ("caf\u00e9", False),
    ],
)
def test_valid_repo_name(name: str, ok: bool) -> None:
    assert valid_repo_name(name) is ok


@pytest.mark.timeout(10)
@pytest.mark.parametrize("tail", ["!", "-", "/a/B"])
def test_refusing_a_long_name_does_not_backtrack(tail: str) -> None:
    """A long alphanumeric run followed by a character the name rule refuses is refused at
    once: the rule has no ambiguous split (it took minutes at 30 characters, hours at 40).
    The limit is a hang guard, not a timing: this returns in microseconds."""
    for n in (40, 200, REPO_NAME_MAX - len(tail)):
        assert not valid_repo_name("a" * n + tail)
        assert not valid_repo_name("org/" + "a1" * (n // 2) + tail)


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("latest", True),
        ("v1.2.3-rc_1", True),
        ("_private", True),
        ("V" * 128, True),
        ("sha256-" + H + ".sig", True),
        ("V" * 129, False),
        ("", False),
        ("-v1", False),
        (".v1", False),
        ("v1/x", False),
        ("v:1", False),
        ("caf\u00e9", False),
        ("\u0661", False),
    ],
)
def test_valid_tag(tag: str, ok: bool) -> None:
    assert valid_tag(tag) is ok


# --- upload ids ---------------------------------------------------------------------------------


def _uuid(ms: int, version: int, rand: int, variant: int = 0b10) -> uuid_mod.UUID:
    """A UUID with the given 48-bit prefix, version nibble, 2-bit variant and random bits."""
    value = (ms << 80) | (version << 76) | (rand & ((1 << 76) - 1))
    value = value & ~(0b11 << 62) | (variant << 62)
    return uuid_mod.UUID(int=value)


@given(st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 76) - 1), st.booleans())
def test_uuid7_carries_its_time(ms: int, rand: int, upper: bool) -> None:
    text = str(_uuid(ms, 7, rand))
    assert upload_id_time(text.upper() if upper else text) == ms / 1000


@given(
    st.integers(0, (1 << 48) - 1),
    st.integers(0, 15).filter(lambda v: v != 7),
    st.integers(0, (1 << 76) - 1),
)
def test_other_uuid_versions_carry_no_time(ms: int, version: int, rand: int) -> None:
    assert upload_id_time(str(_uuid(ms, version, rand))) is None


@given(st.integers(0, (1 << 48) - 1), st.sampled_from([0b00, 0b01, 0b11]))
def test_uuid7_with_another_variant_carries_no_time(ms: int, variant: int) -> None:
    assert upload_id_time(str(_uuid(ms, 7, 12345, variant))) is None


@pytest.mark.parametrize(
    "text",
    [
        str(uuid_mod.uuid4()),  # what 2.8.2 hands out
        "",
        "not-a-uuid",
        "0190a1b2c3d47e5f8a6b7c8d9e0f1a2b",  # no dashes: not what the registry writes
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b-",
        "{0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b}",
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2g",
    ],
)
def test_upload_id_time_rejects(text: str) -> None:
    assert upload_id_time(text) is None


def test_upload_id_time_of_the_rfc_9562_example() -> None:
    # RFC 9562, appendix A.6: 2022-02-22T14:22:22.00-05:00.
    assert upload_id_time("017F22E2-79B0-7CC3-98C4-DC0C0C07398F") == 1645557742.0


# --- folders, both ways, and what is read back from disk -------------------------------------

# What the registry's folders may be named (the scan reads names the registry would refuse).
loose_names = st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1
).filter(lambda n: n not in (".", ".."))
loose_repos = st.lists(loose_names.filter(lambda n: not n.startswith("_")), min_size=1, max_size=3)


@st.composite
def folders(draw: st.DrawFn) -> Folder:
    d = draw(digests())
    alg = d.split(":", 1)[0]
    repo = "/".join(draw(loose_repos | repo_names.map(lambda n: [n])))
    tag = draw(loose_names | tags)
    level = draw(st.sampled_from(list(Level)))
    hexpart = d.split(":", 1)[1]
    kw: dict[str, str] = {}
    if level in (Level.BLOB_ALG, Level.BLOB_PREFIX, Level.BLOB):
        kw["alg"] = alg
    if level is Level.BLOB_PREFIX:
        kw["prefix"] = hexpart[:2]
    if level in (Level.BLOB, Level.LAYER, Level.REVISION, Level.TAG_INDEX):
        kw["digest"] = d
        kw["alg"] = alg
    if level in (Level.LAYER_ALG, Level.REVISION_ALG, Level.TAG_INDEX_ALG):
        kw["alg"] = alg
    blob_levels = (Level.BLOBS, Level.BLOB_ALG, Level.BLOB_PREFIX, Level.BLOB)
    if level not in blob_levels and level is not Level.REPOSITORIES:
        kw["repo"] = repo
    if level in (
        Level.TAG,
        Level.TAG_CURRENT,
        Level.TAG_HISTORY,
        Level.TAG_INDEX_ALG,
        Level.TAG_INDEX,
    ):
        kw["tag"] = tag
    if level in (Level.UPLOAD, Level.UPLOAD_PART):
        kw["upload"] = draw(loose_names)
    if level is Level.UPLOAD_PART:
        kw["part"] = "/".join(draw(st.lists(loose_names, min_size=1, max_size=3)))
    return Folder(level, **kw)


@given(folders())
def test_parse_folder_inverts_folder_path(f: Folder) -> None:
    path = folder_path(f)
    assert not path.startswith("/") and "//" not in path
    assert parse_folder(path) == f
    assert check_rel(path) == path


@given(_path_alphabet() | st.text(max_size=60))
@example("repositories/app/_uploads/u/..")
@example("blobs/sha256/../..")
def test_parse_folder_accepts_only_folders_it_would_build(path: str) -> None:
    f = parse_folder(path)
    if f is not None:
        assert folder_path(f) == path
        assert all(safe_name(p) for p in path.split("/"))


@given(specs)
def test_every_file_path_is_below_layout_folders(spec: PathSpec) -> None:
    """Each folder above a file the layout builds is a layout folder (what gc may remove)."""
    parts = path_of(spec).split("/")
    for k in range(1, len(parts)):
        assert parse_folder("/".join(parts[:k])) is not None, parts[:k]


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/blobs",
        "blobs/",
        "blobs/md5",
        "blobs/sha256/a",
        "blobs/sha256/AB",
        f"blobs/sha256/cd/{H}",
        f"blobs/sha256/ab/{H}/x",
        "repositories/_layers",
        "repositories/app/_other",
        "repositories/app/../../etc",
        "repositories/./_layers",
        "repositories/app/_layers/md5",
        f"repositories/app/_layers/sha256/{H}/x",
        "repositories/app/_manifests/other",
        "repositories/app/_manifests/tags/..",
        "repositories/app/_manifests/tags/v1/other",
        "repositories/app/_uploads/..",
        "repositories/app/_uploads/u/../../..",
        "repositories//app",
        "repositories/a\x00b",
        "etc/passwd",
        ".regfs/runs",
    ],
)
def test_parse_folder_rejects_junk(path: str) -> None:
    assert parse_folder(path) is None
    with pytest.raises(LayoutError):
        check_rel(path)


def test_parse_folder_examples() -> None:
    assert parse_folder(f"blobs/sha256/ab/{H}") == Folder(Level.BLOB, alg="sha256", digest=D)
    assert parse_folder("repositories/org/app") == Folder(Level.NAMESPACE, repo="org/app")
    assert parse_folder("repositories/org/app/_uploads/u1/hashstates/sha256") == Folder(
        Level.UPLOAD_PART, repo="org/app", upload="u1", part="hashstates/sha256"
    )
    assert parse_folder("repositories/app/_manifests/tags/v1/index/sha256") == Folder(
        Level.TAG_INDEX_ALG, repo="app", tag="v1", alg="sha256"
    )


def test_run_ids() -> None:
    from regfs.gc.plan import new_run_id

    rid = new_run_id(1_700_000_000.0)
    assert check_run_id(rid) == rid
    for bad in [
        "",
        "..",
        "../x",
        "20261129T033956Z-45e037c",
        "20261129T033956Z-45e037c4/..",
        rid + "\n",
    ]:
        with pytest.raises(LayoutError):
            check_run_id(bad)


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "untagged"])
def test_every_path_a_plan_holds_is_a_layout_path(tmp_path: Path, untagged: bool) -> None:
    """What a plan (and so a journal) holds passes check_rel: the planner can validate what
    it reads back with it, on every fixture, including the damaged ones."""
    import realreg as rr

    from regfs.gc.plan import GcOptions
    from regfs.gc.refresh import build_plan
    from regfs.scan import Refresher, ScanMode, scan
    from regfs.storage.local import LocalStorage, resolve_root

    for name in rr.ALL_FIXTURES:
        storage = LocalStorage(resolve_root(rr.extract_fixture(name, tmp_path / name)))
        mode = ScanMode.LAZY if untagged else ScanMode.TAG_NAMES
        snap = scan(storage, workers=1, mode=mode)
        opts = GcOptions(delete_untagged=untagged, min_age=0, force=True)
        plan = build_plan(snap, opts, refresh=Refresher(storage, snap))
        for a in plan.actions:
            assert check_rel(a.path) == a.path, (name, a)
        for p in snap.empty_dirs:
            assert parse_folder(p) is not None, (name, p)


def test_restore_takes_only_run_ids(tmp_path: Path) -> None:
    """A run id that is a path is no run: nothing is joined to it (exit 2, same message)."""
    import realreg as rr
    from typer.testing import CliRunner

    from regfs.cli import app

    root = rr.extract_fixture("demo", tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    for bad in ["../../outside", "..", str(outside), "20261129T033956Z-45e037c4/../x"]:
        r = CliRunner().invoke(app, ["restore", str(root), bad])
        assert r.exit_code == 2, r.output
        assert f"no run {bad!r}" in r.stderr


def test_state_paths_take_only_run_ids() -> None:
    from regfs.layout.state import run_dir, run_file, trash_dir

    rid = "20261129T033956Z-45e037c4"
    assert run_dir(rid) == f"runs/{rid}" and trash_dir(rid) == f"trash/{rid}"
    assert run_file(rid, "plan.json") == f"runs/{rid}/plan.json"
    for bad in ["..", "../x", "", f"{rid}/..", "/etc"]:
        for build in (run_dir, trash_dir):
            with pytest.raises(LayoutError):
                build(bad)
