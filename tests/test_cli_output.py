"""The output contract of every command on every fixture: 80 columns, whole identifiers, JSON
documents that validate against the schemas shipped in regfs/schemas/.

Every command runs (text and --json) on a copy of every fixture in tests/fixtures/, the
deleting ones for real (gc --trash, restore, rm, trash purge) on a second copy.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from schemas import schema_errors, shipped_schemas
from typer.testing import CliRunner

from regfs.cli import app

runner = CliRunner()
FIXTURES = rr.ALL_FIXTURES
WIDTH = 80
ENV = {"COLUMNS": str(WIDTH), "REGFS_ROOT": ""}


@dataclass
class Run:
    name: str  # the schema name: tree, orphans, gc, rm, check, du, restore, trash-list, ...
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str


def _run(name: str, *args: str) -> Run:
    r = runner.invoke(app, list(args), env=ENV)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Run(name, list(args), r.exit_code, r.stdout, r.stderr)


def _runs_on(root: Path, spare: Path, as_json: bool) -> list[Run]:
    j = ["--json"] if as_json else []
    s, t = str(root), str(spare)
    runs = [
        _run("tree", "tree", s, *j),
        _run("orphans", "orphans", s, *j),
        _run("orphans", "orphans", s, "--uploads-older-than", "0", *j),
        _run("gc", "gc", s, "--dry-run", *j),
        _run("gc", "gc", s, "--dry-run", "--min-age", "0", "--delete-untagged", *j),
        _run("check", "check", s, "--verify-digests", *j),
        _run("du", "du", s, *j),
        _run("du", "du", s, "--by", "tag", *j),
        _run("rm", "rm", s, "**", "--dry-run", "--min-age", "0", *j),
        _run("retain", "retain", s, "--keep-last", "1", "--dry-run", "--min-age", "0", *j),
        _run("retain", "retain", s, "--older-than", "1d", "--by", "created", "--dry-run", *j),
        _run("trash-list", "trash", "list", s, *j),
    ]
    # The deleting commands, for real, on the spare copy; without --force a damaged store
    # refuses (exit 3), with it the run proceeds.
    runs.append(_run("gc", "gc", t, "--yes", "--trash", "--min-age", "0", "--skip-live-check", *j))
    gc = _run(
        "gc", "gc", t, "--yes", "--trash", "--min-age", "0", "--skip-live-check", "--force", *j
    )
    runs.append(gc)
    runs.append(
        _run(
            "retain",
            "retain",
            t,
            "--older-than",
            "1d",
            "--by",
            "created",
            "--min-age",
            "0",
            "--yes",
            "--trash",
            "--skip-live-check",
            *j,
        )
    )
    runs.append(_run("trash-list", "trash", "list", t, *j))
    run_ids = [
        r["run_id"]
        for r in json.loads(_run("trash-list", "trash", "list", t, "--json").stdout)["runs"]
    ]
    for run_id in run_ids:
        runs.append(_run("restore", "restore", t, run_id, *j))
    first = sorted(
        c["name"] for c in json.loads(_run("tree", "tree", t, "--json").stdout)["children"]
    )
    if first:
        runs.append(
            _run(
                "rm",
                "rm",
                t,
                first[0],
                "--yes",
                "--trash",
                "--min-age",
                "0",
                "--skip-live-check",
                *j,
            )
        )
    runs.append(_run("trash-purge", "trash", "purge", t, "--older-than", "0", "--dry-run", *j))
    runs.append(_run("trash-purge", "trash", "purge", t, "--older-than", "0", "--yes", *j))
    return runs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], list[Run]]:
    out: dict[tuple[str, bool], list[Run]] = {}
    base = tmp_path_factory.mktemp("fixtures")
    for name in FIXTURES:
        root = rr.extract_fixture(name, base / name)
        for as_json in (False, True):
            spare = base / f"{name}-spare-{int(as_json)}"
            shutil.copytree(root, spare, symlinks=True)
            out[(name, as_json)] = _runs_on(root, spare, as_json)
    return out


# --- 80 columns -----------------------------------------------------------------------------

_TREE_CHARS = " │├└─:"


def too_wide(line: str) -> bool:
    """A line wider than 80 columns that is not a single identifier standing alone.

    Only an identifier (a full digest, a path, a cosign tag) longer than the room left may
    make a line wider; then it stands alone after its indentation or tree branch, whole.
    """
    if len(line) <= WIDTH:
        return False
    body = line.lstrip(_TREE_CHARS)
    return " " in body


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_text_output_fits_80_columns(
    outputs: dict[tuple[str, bool], list[Run]], fixture: str
) -> None:
    for run in outputs[(fixture, False)]:
        for stream in (run.stdout, run.stderr):
            bad = [line for line in stream.splitlines() if too_wide(line)]
            assert bad == [], f"regfs {' '.join(run.args)}: {bad}"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["tree"],
        ["orphans"],
        ["gc"],
        ["rm"],
        ["restore"],
        ["check"],
        ["du"],
        ["trash"],
        ["trash", "list"],
        ["trash", "purge"],
    ],
)
def test_help_reads_like_the_readme(command: list[str]) -> None:
    r = runner.invoke(app, [*command, "--help"], env=ENV, prog_name="regfs")
    assert r.exit_code == 0
    text = r.stdout
    assert "<bool>" not in text and "<str>" not in text and "<list" not in text
    assert "{" not in text.split("\n", 1)[0]  # no {run_id} / {args} in the usage line
    for line in text.splitlines():
        assert len(line) <= WIDTH, line
    usage = text.splitlines()[0]
    if command and command != ["trash"]:
        assert "Example:" in text
        assert usage.rstrip().endswith(
            {
                "rm": "[ROOT] TARGET...",
                "restore": "[ROOT] RUN-ID",
            }.get(command[-1], "[ROOT]")
        ), usage


# --- identifiers are whole when piped -------------------------------------------------------


def _tags(node: dict[str, Any]) -> list[str]:
    out = [node["name"]] if node["type"] == "tag" else []
    for c in node["children"]:
        out.extend(_tags(c))
    return out


@pytest.mark.parametrize("fixture", FIXTURES)
def test_piped_tree_has_every_tag_whole(
    outputs: dict[tuple[str, bool], list[Run]], fixture: str
) -> None:
    text = outputs[(fixture, False)][0]
    doc = json.loads(outputs[(fixture, True)][0].stdout)
    lines = text.stdout.splitlines()
    for tag in _tags(doc):
        assert any(line.lstrip(_TREE_CHARS).split("  ")[0] == tag for line in lines), tag
    assert "…" not in text.stdout.replace("sig.v1…", "")  # no elided identifier


def test_cosign_tags_are_whole_in_tree_and_du() -> None:
    """`tree | grep sha256-<hex>.sig` finds the tag; du does not wrap it either."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = rr.extract_fixture("referrers", Path(d) / "r")
        doc = json.loads(_run("tree", "tree", str(root), "--json").stdout)
        long_tags = [t for t in _tags(doc) if len(t) > 60]
        assert long_tags, "the referrers fixture has cosign tags"
        tree = _run("tree", "tree", str(root)).stdout
        du = _run("du", "du", str(root), "--by", "tag").stdout
        for tag in long_tags:
            assert f":{tag}" in tree
            assert any(line.strip() == f":{tag}" for line in du.splitlines()), du


# --- plurals and words ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES)
def test_no_internal_names_or_bad_plurals(
    outputs: dict[tuple[str, bool], list[Run]], fixture: str
) -> None:
    import re

    bad = re.compile(
        r"\b1 (tags|folders|runs|blobs|items|manifests|uploads|files|repositories|problems)\b"
        r"|\b(layer_link|tag_index|blob|revision|upload|folder):"
    )
    for run in outputs[(fixture, False)]:
        for stream in (run.stdout, run.stderr):
            m = bad.search(stream)
            assert m is None, f"regfs {' '.join(run.args)}: {m and m.group(0)!r} in {stream}"


# --- JSON: every document validates against its shipped schema -----------------------------

SCHEMA_NAMES = [
    "tree",
    "orphans",
    "gc",
    "rm",
    "check",
    "du",
    "restore",
    "trash-list",
    "trash-purge",
    "retain",
]


def test_every_command_has_a_schema_shipped_in_the_package() -> None:
    from jsonschema import Draft202012Validator

    _, docs = shipped_schemas()
    assert set(SCHEMA_NAMES) | {"common"} == set(docs)
    for name, doc in docs.items():
        Draft202012Validator.check_schema(doc)
        assert doc["$id"].endswith(f"/{name}.json")
    # The README links each of them.
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in SCHEMA_NAMES:
        assert f"(regfs/schemas/{name}.json)" in readme, name


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_json_document_validates(
    outputs: dict[tuple[str, bool], list[Run]], fixture: str
) -> None:
    for run in outputs[(fixture, True)]:
        assert run.stdout.startswith("{"), f"regfs {' '.join(run.args)}: {run.stdout[:80]!r}"
        errors = schema_errors(run.name, json.loads(run.stdout))
        assert errors == [], f"regfs {' '.join(run.args)}: " + "; ".join(errors)


def test_every_schema_is_exercised(outputs: dict[tuple[str, bool], list[Run]]) -> None:
    """Across the fixtures, every command's document was validated at least once (restore
    needs a fixture where gc --trash moved something)."""
    seen = {run.name for (_, as_json), runs in outputs.items() if as_json for run in runs}
    assert seen == set(SCHEMA_NAMES)
