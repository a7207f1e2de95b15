"""The fail-closed matrix, for real: regfs as an unprivileged user against the real registry.

Each level of the storage layout is made unreadable in turn (``chmod 000`` on a copy of the
``demo`` fixture owned by ``nobody``; root would read through any mode) or replaced by a
symbolic link to the real thing moved outside ROOT. regfs then runs as ``nobody`` in a real
process (``runuser -u nobody``):

* ``gc`` refuses with exit 3 and deletes nothing;
* ``orphans`` and ``du`` call no live blob orphaned, name what they could not read, and list
  every repository (or the unreadable folder that may hold it);
* ``gc --force`` and ``gc --force --delete-untagged`` proceed; then permissions are restored,
  the real registry serves each copy, and every image that was live is pulled with every digest
  verified (default mode: every tag and every revision by digest; untagged mode: every tag,
  with its index children, and every referrer of a tagged image).

One ``nobody`` process runs the five commands of a case (through the CLI in-process), and one
registry start serves each copy's pulls. As root in CI the matrix must run: ``.ci/run`` grants
``nobody`` traverse permission on the folders above the interpreter and the checkout; a machine
where ``nobody`` still cannot start Python fails here with the reason. Without root it is
skipped (nothing can drop privileges), except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from gc_helpers import fingerprint

import regfs

FIXTURE = "demo"
CHECKOUT = Path(regfs.__file__).resolve().parent.parent
V2 = ("docker", "registry", "v2")

# demo: alpine 3.19 (= latest, signed), python 3.12 (an older revision untagged),
# team/web/frontend v1 (an OCI index of two children); alpine 3.18 deleted (3 orphans).
ALPINE = "4408dcb24cb33046e2d43f4a3a80657f3fe183b9ea0624f28a9874657d8aa9dd"
PYTHON = "95a822fb208e4abf6cc0f68cdde91e688605e471c8726b9065e4fb600ba71feb"
FRONTEND = "4769ce70e98107742f701944bd344163c4e4c40db36589393fb388d8531004aa"


def blob(hexpart: str) -> str:
    return f"blobs/sha256/{hexpart[:2]}/{hexpart}"


def revision(repo: str, hexpart: str) -> str:
    return f"repositories/{repo}/_manifests/revisions/sha256/{hexpart}"


@dataclass(frozen=True)
class Level:
    id: str
    path: str  # relative to v2
    keeps_every_blob: bool  # the marking rule: no blob may be deleted at all


UNREADABLE = [
    Level("repositories", "repositories", True),
    Level("above-a-repository", "repositories/team", True),
    Level("repository", "repositories/library/python", True),
    Level("_manifests", "repositories/library/alpine/_manifests", True),
    Level("revisions", "repositories/library/alpine/_manifests/revisions", True),
    Level("revisions-sha256", "repositories/library/alpine/_manifests/revisions/sha256", True),
    Level("tags", "repositories/library/alpine/_manifests/tags", False),
    Level("revision-folder", revision("library/alpine", ALPINE), True),
    Level("link-file", revision("library/alpine", ALPINE) + "/link", True),
    Level("_layers", "repositories/library/python/_layers", True),
    Level("blobs", "blobs", True),
    Level("blobs-sha256", "blobs/sha256", True),
    Level("prefix-folder", blob(FRONTEND).rsplit("/", 1)[0], False),
    Level("blob-folder", blob(ALPINE), False),
    Level("data-file", blob(PYTHON) + "/data", False),
]

SYMLINKED = [
    Level("repository", "repositories/library/alpine", False),
    Level("above-a-repository", "repositories/team", False),
    Level("_manifests", "repositories/team/web/frontend/_manifests", False),
    Level("_layers", "repositories/library/python/_layers", False),
    Level("tag-folder", "repositories/library/alpine/_manifests/tags/3.19", False),
    Level("link-file", revision("library/python", PYTHON) + "/link", False),
    Level("blobs", "blobs", False),
    Level("prefix-folder", blob(FRONTEND).rsplit("/", 1)[0], False),
    Level("blob-folder", blob(ALPINE), False),
    Level("data-file", blob(PYTHON) + "/data", False),
]

DRIVER = r'''
"""Run regfs CLI commands in this (unprivileged) process; print their exit codes and output."""
import json, sys
from typer.testing import CliRunner
from regfs.cli import app

runner = CliRunner()
out = []
for args in json.loads(sys.argv[1]):
    r = runner.invoke(app, args)
    crashed = r.exception is not None and r.exit_code not in (0, 1, 2, 3, 4)
    out.append({"args": args, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                "exception": repr(r.exception) if crashed else None})
print(json.dumps(out))
'''


def _unprivileged_env(home: str) -> list[str]:
    return [
        "env",
        "-i",
        f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
        f"PYTHONPATH={CHECKOUT}",
        f"HOME={home}",
        "LANG=C.UTF-8",
        "PYTHONDONTWRITEBYTECODE=1",
    ]


def why_nobody_cannot_run() -> str | None:
    """None when ``nobody`` can start this interpreter and import regfs from this checkout."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to drop privileges to nobody (runuser)"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) is not installed"
    cmd = ["runuser", "-u", "nobody", "--", *_unprivileged_env("/tmp"), sys.executable, "-c"]
    p = subprocess.run(
        [*cmd, "import regfs.cli, typer.testing"], capture_output=True, text=True, timeout=60
    )
    if p.returncode == 0:
        return None
    lines = (p.stderr or p.stdout).strip().splitlines()
    blocked = [
        str(d)
        for path in (Path(sys.executable).resolve(), CHECKOUT)
        for d in [*reversed(path.parents), path]
        if d.is_dir() and not os.stat(d).st_mode & stat.S_IXOTH
    ]
    return (
        f"user nobody cannot run {sys.executable} with regfs from {CHECKOUT} "
        f"({lines[-1] if lines else 'exit ' + str(p.returncode)}); folders nobody cannot "
        f"traverse: {', '.join(blocked) or 'none found'}. .ci/run grants o+x on them"
    )


@pytest.fixture(scope="module")
def unprivileged() -> None:
    why = why_nobody_cannot_run()
    if why is None:
        return
    if rr.in_ci():
        pytest.fail(f"CI=true but the unprivileged matrix cannot run: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="module")
def workdir(unprivileged: None) -> Iterator[Path]:
    """A folder nobody can reach (pytest's own tmp folders are private to root)."""
    rr.require_binaries()
    d = Path(tempfile.mkdtemp(prefix="regfs-matrix-", dir="/tmp"))
    os.chmod(d, 0o755)
    (d / "driver.py").write_text(DRIVER)
    os.chmod(d / "driver.py", 0o644)
    try:
        yield d
    finally:
        for cur, dirs, _files in os.walk(d):
            for n in dirs:
                if not os.path.islink(os.path.join(cur, n)):
                    os.chmod(os.path.join(cur, n), 0o755)
        shutil.rmtree(d)


@dataclass(frozen=True)
class Baseline:
    root: Path
    tags: dict[str, dict[str, str]]
    revisions: dict[str, list[str]]
    referrers: list[tuple[str, str]]
    live: frozenset[str]  # every blob a pull of the live images fetched (default mode)
    orphans: frozenset[str]  # every stored blob outside it
    orphan_bytes: int


@pytest.fixture(scope="module")
def baseline(workdir: Path) -> Baseline:
    """The pristine tree, and what the real registry serves from it."""
    root = rr.extract_fixture(FIXTURE, workdir / "pristine")
    meta = rr.load_fixture_meta(FIXTURE)
    v2 = root.joinpath(*V2)
    revisions = {}
    for repo in meta["repositories"]:
        folder = v2 / "repositories" / repo / "_manifests/revisions/sha256"
        # A manifest deleted through the API leaves its folder without a link: not served.
        revisions[repo] = sorted(
            "sha256:" + h for h in os.listdir(folder) if (folder / h / "link").exists()
        )
    referrers = sorted(
        (i["repo"], i["digest"])
        for i in meta["images"]
        if i.get("subject") and i["state"] != "deleted"
    )
    live: set[str] = set()
    with rr.Registry(root) as reg:
        for repo, tags in meta["tags"].items():
            for tag in tags:
                live.update(reg.pull(repo, tag))
        for repo, digests in revisions.items():
            for d in digests:
                live.update(reg.pull(repo, d))
    stored = {d: p.stat().st_size for d, p in rr.iter_blobs(root)}
    orphans = set(stored) - live
    return Baseline(
        root,
        meta["tags"],
        revisions,
        referrers,
        frozenset(live),
        frozenset(orphans),
        sum(stored[d] for d in orphans),
    )


def _copy(base: Baseline, dst: Path) -> Path:
    rr.copy_tree(base.root, dst)
    subprocess.run(["chown", "-R", "nobody", str(dst)], check=True)
    return dst


def _run_as_nobody(workdir: Path, commands: list[list[str]]) -> list[dict[str, Any]]:
    cmd = [
        "runuser",
        "-u",
        "nobody",
        "--",
        *_unprivileged_env(str(workdir)),
        sys.executable,
        str(workdir / "driver.py"),
        json.dumps(commands),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir)
    assert p.returncode == 0, p.stderr
    results: list[dict[str, Any]] = json.loads(p.stdout)
    for r in results:
        assert r["exception"] is None, r
    return results


def _blobs(root: Path) -> set[str]:
    return {d for d, _ in rr.iter_blobs(root)}


def _pull_expected(base: Baseline, root: Path, *, untagged: bool) -> None:
    """Serve ``root`` with the real registry and pull every image that must have survived."""
    with rr.Registry(root) as reg:
        for repo, tags in base.tags.items():
            for tag in tags:
                reg.pull(repo, tag)
        for repo, d in base.referrers:
            reg.pull(repo, d)
        if not untagged:
            for repo, digests in base.revisions.items():
                for d in digests:
                    reg.pull(repo, d)


def _check_reports(
    base: Baseline, level: Level, orphans: dict[str, Any], du: dict[str, Any]
) -> None:
    assert orphans["code"] == 1, orphans
    odoc = json.loads(orphans["stdout"])
    called_orphaned = {b["digest"] for b in odoc["orphaned_blobs"]}
    assert not called_orphaned & base.live, f"{level.id}: live blobs called orphaned"
    assert called_orphaned <= base.orphans
    ddoc = json.loads(du["stdout"])
    assert ddoc["totals"]["orphaned_bytes"] <= base.orphan_bytes
    shown = {r["name"] for r in ddoc["repositories"]}
    hidden = [u["path"] for u in ddoc["unreadable_repositories"]]
    for repo in base.revisions:
        rel = f"repositories/{repo}"
        assert repo in shown or any(rel == p or rel.startswith(p + "/") for p in hidden), (
            f"{level.id}: du dropped {repo}"
        )


@pytest.mark.parametrize("level", UNREADABLE, ids=[lv.id for lv in UNREADABLE])
def test_unreadable_level(workdir: Path, baseline: Baseline, level: Level) -> None:
    case = workdir / f"unreadable-{level.id}"
    roots = {k: _copy(baseline, case / k) for k in ("look", "default", "untagged")}
    targets = {k: r.joinpath(*V2, level.path) for k, r in roots.items()}
    modes = {k: os.lstat(t).st_mode & 0o7777 for k, t in targets.items()}
    for t in targets.values():
        os.chmod(t, 0)
    before = {k: fingerprint(r) for k, r in roots.items()}
    gc = ["gc", "--min-age", "0", "--yes", "--skip-live-check", "--json"]
    refused, orphans, du, forced, forced_untagged = _run_as_nobody(
        workdir,
        [
            [*gc[:1], str(roots["look"]), *gc[1:]],
            ["orphans", str(roots["look"]), "--json"],
            ["du", str(roots["look"]), "--json"],
            [*gc[:1], str(roots["default"]), *gc[1:], "--force"],
            [*gc[:1], str(roots["untagged"]), *gc[1:], "--force", "--delete-untagged"],
        ],
    )
    assert refused["code"] == 3, refused
    assert fingerprint(roots["look"]) == before["look"], "a refused gc changed the tree"
    _check_reports(baseline, level, orphans, du)
    assert du["code"] == 1, du
    for run, key in ((forced, "default"), (forced_untagged, "untagged")):
        assert run["code"] == 0, run
        assert json.loads(run["stdout"])["status"] in ("done", "planned"), run
        os.chmod(targets[key], modes[key])
        if level.keeps_every_blob:
            assert _blobs(roots[key]) == _blobs(baseline.root), f"{level.id}: a blob was deleted"
        _pull_expected(baseline, roots[key], untagged=key == "untagged")


@pytest.mark.parametrize("level", SYMLINKED, ids=[lv.id for lv in SYMLINKED])
def test_symlinked_level(workdir: Path, baseline: Baseline, level: Level) -> None:
    case = workdir / f"symlinked-{level.id}"
    roots = {k: _copy(baseline, case / k) for k in ("look", "default", "untagged")}
    outside: dict[str, Path] = {}
    for k, r in roots.items():
        real = r.joinpath(*V2, level.path)
        outside[k] = case / f"outside-{k}" / real.name
        outside[k].parent.mkdir(parents=True)
        shutil.move(real, outside[k])
        os.symlink(outside[k], real)
    subprocess.run(["chown", "-R", "nobody", str(case)], check=True)
    before = {k: fingerprint(r) for k, r in roots.items()}
    kept = {k: fingerprint(o.parent) for k, o in outside.items()}
    gc = ["gc", "--min-age", "0", "--yes", "--skip-live-check", "--json"]
    refused, orphans, du, forced, forced_untagged = _run_as_nobody(
        workdir,
        [
            [*gc[:1], str(roots["look"]), *gc[1:]],
            ["orphans", str(roots["look"]), "--json"],
            ["du", str(roots["look"]), "--json"],
            [*gc[:1], str(roots["default"]), *gc[1:], "--force"],
            [*gc[:1], str(roots["untagged"]), *gc[1:], "--force", "--delete-untagged"],
        ],
    )
    assert refused["code"] == 3, refused
    assert fingerprint(roots["look"]) == before["look"], "a refused gc changed the tree"
    _check_reports(baseline, level, orphans, du)
    for run, key in ((forced, "default"), (forced_untagged, "untagged")):
        assert run["code"] == 0, run
        link = roots[key].joinpath(*V2, level.path)
        assert link.is_symlink(), f"{level.id}: the symbolic link was removed"
        assert fingerprint(outside[key].parent) == kept[key], "deleted through a symbolic link"
        _pull_expected(baseline, roots[key], untagged=key == "untagged")
