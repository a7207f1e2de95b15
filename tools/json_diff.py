#!/usr/bin/env python3
"""Prove that two revisions of regfs behave the same: every command's ``--json`` output, exit
status and stderr, on every fixture and on a generated 2000x10 tree, compared byte for byte.

Usage::

    python tools/json_diff.py                      # BASE_REV vs this working tree
    python tools/json_diff.py --base 197dcc0 --new main
    python tools/json_diff.py --fixtures demo,damaged --commands 'gc-*' --no-gen
    python tools/json_diff.py --keep /tmp/jd-out   # keep every output (base/ and new/)
    python tools/json_diff.py --list               # the cases it runs, then exit

``--base`` / ``--new`` take a git revision (exported with ``git archive`` into a temporary
folder) or a folder holding a regfs checkout (used as it is; the default ``--new`` is this
working tree, uncommitted changes included). Each side runs ``python -m regfs`` with
``PYTHONPATH`` set to its own source, so nothing is installed and only the CLI is used: the
script imports no regfs module and works on any package layout.

Trees: every ``tests/fixtures/*.tar.gz`` of this checkout (extracted once the way the tests do,
``tests/realreg.py`` ``extract_fixture``: fresh uploads re-dated to now) and a tree written by
``benchmarks/gen_tree.py --repos 2000 --tags 10`` (``--gen-repos``/``--gen-tags``; ``--no-gen``
to skip). Each tree is then copied with ``cp -a`` once per revision and case group, so both
revisions see identical files, symlinks and mtimes (folders' too). Work files go to
``/dev/shm`` when it exists (``--workdir`` to choose).

Cases (``--list``): read-only commands (tree, orphans, check, du, gc --dry-run and rm --dry-run
with their option combinations, trash list/purge --dry-run, restore of an unknown run) on one
copy per revision, followed by a listing of that copy (it must be unchanged); and real runs,
each scenario on its own fresh copy per revision: gc (default and --delete-untagged
--min-age 0), gc --trash then trash list, trash purge --dry-run, restore and trash purge, and
rm of a few targets then rm --gc; and ``regfs retain`` with every rule kind (keep-last,
older-than, both, --tags/--keep-tags regexes, --repo, a --policy file of two overlapping
rules, --by created, --min-age, --trash, no rule, a policy with flags), dry and real
(--trash, trash list, restore), each on its own copy whose tags' pushed-at times are first
spread deterministically (the ``PUSHED`` step, :func:`spread_pushed_at`; without it every tag
of a fixture or of the generated tree has one mtime, which retain rightly refuses: case
``retain-dry-unspread``); on the generated tree one chain of them. After each real step the
resulting tree is listed (path, type, size of files, target of symlinks) and compared too. The
rm targets are chosen from the tree on disk (a tag, a manifest by short digest, a whole
repository, globs, an index child, an unknown name).

What is compared for each case: the exit status, stderr, and stdout. stdout is parsed as JSON
when it is JSON; the documented normalisations below are applied and the document is written
back in regfs's own format (``json.dumps(indent=2)``), after checking that this format
reproduces the raw output exactly (else the raw text is compared, and that it was not in the
canonical format is part of the record). Two values are replaced wherever they occur (stdout
and stderr, as text): the copy's absolute root (``<ROOT>``; each revision has its own copy)
and every run id (``<RUN_ID-n>``, numbered by first appearance in the case; a run id is the
time of the run and a random part).

Cases of the two revisions run interleaved (base then new for the same case, ``--jobs`` cases
at a time), so that what depends on the clock is measured a moment apart; ages that are a pure
function of "now" are compared with the two runs' start/end times as tolerance (see
``NOW_FIELDS``), not ignored.

Exit status: 0 identical; 1 differences (a unified diff per tree and case on stdout);
2 bad usage or a failure of the script itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import realreg  # noqa: E402  (test helper, standard library only: fixture extraction)

# The last commit before the reshape of issue 12 (main on 2026-11-29 03:25 UTC).
BASE_REV = "197dcc0"
GEN_NAME = "gen"

# --- normalisation -------------------------------------------------------------------------
# JSON paths ("*" = every element of a list, "a.b" = key b of key a) whose values differ from
# run to run by nature. Keep this list minimal: everything else must be byte-identical.
VOLATILE: dict[str, str] = {
    # gc/rm real runs: how long the deletion took (wall clock).
    "seconds": "<seconds>",
    # rm --gc real run: the same for the gc that follows.
    "gc.seconds": "<seconds>",
    # check --verify-digests: how long hashing took (wall clock).
    "verify_seconds": "<seconds>",
    # trash list / trash purge: when the trash run was made, i.e. the wall-clock time of the
    # earlier gc --trash step of the same scenario.
    "runs.*.created": "<created>",
}
# Ages computed as (now - a time read from the tree): compared with the two runs' start and
# end times as tolerance (the implied "time read from the tree" must agree within the span
# each run took, plus 1 s for the int() truncation), not ignored.
NOW_FIELDS = (
    "stale_uploads.*.age_seconds",
    # retain: how long ago each tag was pushed (rounded to the millisecond).
    "repositories.*.kept.*.pushed_age_seconds",
    "repositories.*.removed.*.pushed_age_seconds",
)
# Live-guard notes about registry processes serving *other* roots: the machine is shared and
# other engineers' test registries come and go between two runs. Refusals are not filtered
# (they come only from a registry serving the copy, which nothing here starts).
ENV_GUARD_KINDS = ("registry_other",)

RUN_ID_RE = re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]{8}\b")


def number_run_ids(text: str, seen: dict[str, str]) -> str:
    """Every run id (time of the run + a random part) replaced by ``<RUN_ID-n>``, numbered in
    order of first appearance within the case (``seen`` is the case's table, per side): the
    two revisions must still print the same run ids in the same places."""

    def sub(m: re.Match[str]) -> str:
        return seen.setdefault(m.group(0), f"<RUN_ID-{len(seen) + 1}>")

    return RUN_ID_RE.sub(sub, text)


def _walk(doc: Any, parts: list[str], fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` to every value at ``parts`` under ``doc``; return the new ``doc``."""
    if not parts:
        return fn(doc)
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(doc, list):
        return [_walk(x, rest, fn) for x in doc]
    if isinstance(doc, dict) and head in doc:
        doc = dict(doc)
        doc[head] = _walk(doc[head], rest, fn)
    return doc


def normalise_doc(doc: Any) -> tuple[Any, list[float]]:
    """The document with VOLATILE values replaced, NOW_FIELDS taken out (returned apart, in
    document order) and environmental guard notes dropped."""
    for path, placeholder in VOLATILE.items():

        def replace(v: Any, p: str = placeholder) -> Any:
            return p if v is not None else v

        doc = _walk(doc, path.split("."), replace)
    ages: list[float] = []

    def take(v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            ages.append(v)
            return "<age: compared apart>"
        return v

    for path in NOW_FIELDS:
        doc = _walk(doc, path.split("."), take)
    for guard_path in ("guard", "gc.guard"):
        doc = _walk(
            doc,
            guard_path.split("."),
            lambda g: (
                [x for x in g if not (isinstance(x, dict) and x.get("kind") in ENV_GUARD_KINDS)]
                if isinstance(g, list)
                else g
            ),
        )
    return doc, ages


# --- running --------------------------------------------------------------------------------


@dataclass
class Side:
    """One revision: its name and the folder put on PYTHONPATH."""

    label: str
    spec: str
    src: Path


@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    start: float
    end: float
    run_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class Record:
    """What is compared for one step of one case."""

    text: str
    ages: list[float]
    start: float
    end: float
    raw: Result


def run_regfs(side: Side, args: list[str], cwd: Path, timeout: float) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGFS_", "PYTHON"))}
    env["PYTHONPATH"] = str(side.src)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "80"
    argv = [sys.executable, "-m", "regfs", *args]
    start = time.time()
    p = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Result(args, p.returncode, p.stdout, p.stderr, start, time.time())


def make_record(res: Result, root: Path) -> Record:
    def subst(text: str) -> str:
        text = text.replace(str(root), "<ROOT>")
        return number_run_ids(text, res.run_ids)

    out = subst(res.stdout)
    ages: list[float] = []
    body: str
    try:
        doc = json.loads(out)
    except ValueError:
        body = "stdout (not JSON):\n" + out
    else:
        canonical = json.dumps(doc, indent=2) + "\n" == out
        doc, ages = normalise_doc(doc)
        body = json.dumps(doc, indent=2) + "\n"
        if not canonical:  # the format itself is part of the behaviour
            body = "stdout (JSON, not in json.dumps(indent=2) form):\n" + out
            # ages stay inside the raw text: compare them as text (a strict fallback)
            ages = []
    argv = " ".join(subst(a) for a in res.argv)
    text = f"$ regfs {argv}\nexit {res.code}\n--- stderr\n{subst(res.stderr)}--- stdout\n{body}"
    return Record(text, ages, res.start, res.end, res)


def listing(root: Path) -> str:
    """Every entry under ``root``, sorted: path, type, size of files, symlink targets. Under
    ``.regfs/runs`` only paths: the journal holds timestamps and durations."""
    lines: list[str] = []

    def walk(folder: str, rel: str) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            r = f"{rel}{e.name}"
            if e.is_symlink():
                lines.append(f"l {r} -> {os.readlink(e.path)}")
            elif e.is_dir(follow_symlinks=False):
                lines.append(f"d {r}")
                walk(e.path, r + "/")
            elif r.startswith(".regfs/runs/"):
                lines.append(f"f {r}")
            else:
                lines.append(f"f {r} {e.stat(follow_symlinks=False).st_size}")

    walk(str(root), "")
    return "\n".join(lines) + "\n"


# --- trees and cases -------------------------------------------------------------------------


@dataclass
class Targets:
    """rm targets found on disk."""

    tag: str | None = None  # REPO:TAG
    short: str | None = None  # REPO@<12 hex>
    repo: str | None = None  # a whole repository
    glob: str | None = None  # REPO-PREFIX/*:*
    child: str | None = None  # REPO@DIGEST of an index child


def _read(p: Path) -> str | None:
    try:
        return p.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def find_targets(root: Path, limit: int = 200) -> Targets:
    """rm targets from the tree itself (no regfs code): repositories with tags, in name order."""
    v2 = root / "docker" / "registry" / "v2"
    repos: list[tuple[str, list[tuple[str, str]]]] = []
    reposdir = v2 / "repositories"
    for dirpath, dirnames, _ in os.walk(reposdir):
        dirnames.sort()
        if "_manifests" in dirnames:
            name = Path(dirpath).relative_to(reposdir).as_posix()
            tagsdir = Path(dirpath) / "_manifests" / "tags"
            tags = []
            if tagsdir.is_dir():
                for tag in sorted(os.listdir(tagsdir)):
                    d = _read(tagsdir / tag / "current" / "link")
                    if d and re.fullmatch(r"sha256:[0-9a-f]{64}", d):
                        tags.append((tag, d))
            if tags:
                repos.append((name, tags))
            if len(repos) >= limit:
                break
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
    t = Targets()
    if not repos:
        return t
    first, ftags = repos[0]
    t.tag = f"{first}:{ftags[0][0]}"
    second, stags = repos[1] if len(repos) > 1 else repos[0]
    t.short = f"{second}@{stags[-1][1].removeprefix('sha256:')[:12]}"
    t.repo = repos[-1][0]
    t.glob = f"{first.split('/')[0]}/*:*"
    for name, tags in repos:
        for _, digest in tags:
            data = v2 / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data"
            try:
                doc = json.loads(data.read_bytes())
            except (OSError, ValueError):
                continue
            kids = doc.get("manifests") if isinstance(doc, dict) else None
            if isinstance(kids, list) and kids and isinstance(kids[0], dict):
                t.child = f"{name}@{kids[0].get('digest')}"
                return t
    return t


@dataclass
class Case:
    """A named sequence of steps on one copy of a tree. A step is regfs arguments after ROOT
    (``{run_id}`` is the run id of the first real gc, rm or retain step: not a dry run's),
    ``LIST`` or ``PUSHED``."""

    name: str
    steps: list[list[str]]
    mutating: bool = False
    # Run on the read-only cases' copies once they are done (the big tree: one copy per side
    # instead of one per real case).
    on_shared: bool = False
    # Run when no other case runs on the copy: the live guard reports every other process that
    # has a file under ROOT open (a reader), and the other read-only cases would be those.
    alone: bool = False


SKIP = "--skip-live-check"  # the live guard sees every registry on this shared host


def read_only_cases(t: Targets) -> list[Case]:
    j = ["--json"]
    c: list[tuple[str, list[str]]] = [
        ("tree", ["tree", *j]),
        ("tree-repo", ["tree", "--repo", t.glob.split(":")[0] if t.glob else "**", *j]),
        ("tree-repo-nomatch", ["tree", "--repo", "no-such/**", *j]),
        ("orphans", ["orphans", *j]),
        ("orphans-uploads-0", ["orphans", "--uploads-older-than", "0", *j]),
        ("orphans-uploads-3650d", ["orphans", "--uploads-older-than", "3650d", *j]),
        ("check", ["check", *j]),
        ("check-verify", ["check", "--verify-digests", *j]),
        ("check-repo", ["check", "--repo", t.glob.split(":")[0] if t.glob else "**", *j]),
        ("du", ["du", *j]),
        ("du-by-tag", ["du", "--by", "tag", *j]),
        ("du-sort-name", ["du", "--sort", "name", *j]),
        ("du-sort-total", ["du", "--sort", "total", *j]),
        ("du-sort-shared", ["du", "--sort", "shared", *j]),
        ("du-sort-untagged", ["du", "--sort", "untagged", *j]),
        ("du-top-2", ["du", "--top", "2", *j]),
        ("du-by-tag-sort-total-top-3", ["du", "--by", "tag", "--sort", "total", "--top", "3", *j]),
        ("du-bad-by", ["du", "--by", "nothing", *j]),
        ("gc-dry-skip", ["gc", "--dry-run", SKIP, *j]),
        ("gc-dry-untagged", ["gc", "--dry-run", "--delete-untagged", SKIP, *j]),
        ("gc-dry-min0", ["gc", "--dry-run", "--min-age", "0", SKIP, *j]),
        (
            "gc-dry-untagged-min0",
            ["gc", "--dry-run", "--delete-untagged", "--min-age", "0", SKIP, *j],
        ),
        ("gc-dry-uploads-0", ["gc", "--dry-run", "--uploads-older-than", "0", SKIP, *j]),
        ("gc-dry-uploads-3650d", ["gc", "--dry-run", "--uploads-older-than", "3650d", SKIP, *j]),
        ("gc-dry-min-3650d", ["gc", "--dry-run", "--min-age", "3650d", SKIP, *j]),
        ("gc-dry-force", ["gc", "--dry-run", "--force", SKIP, *j]),
        (
            "gc-dry-all",
            [
                "gc",
                "--dry-run",
                "--delete-untagged",
                "--min-age",
                "0",
                "--uploads-older-than",
                "0",
                "--force",
                SKIP,
                *j,
            ],
        ),
        ("gc-dry-trash", ["gc", "--dry-run", "--trash", "--min-age", "0", SKIP, *j]),
        ("trash-list-empty", ["trash", "list", *j]),
        ("trash-purge-dry-empty", ["trash", "purge", "--dry-run", "--older-than", "0", *j]),
        ("restore-unknown", ["restore", "20200101T000000Z-00000000", *j]),
        ("rm-dry-unknown", ["rm", "no-such/repo:tag", "--dry-run", SKIP, *j]),
    ]
    rm = [("tag", t.tag), ("short", t.short), ("repo", t.repo), ("glob", t.glob)]
    for label, target in rm:
        if target:
            c.append((f"rm-dry-{label}", ["rm", target, "--dry-run", SKIP, *j]))
    if t.tag:
        c.append(("rm-dry-tag-gc", ["rm", t.tag, "--dry-run", "--gc", SKIP, *j]))
        c.append(
            ("rm-dry-tag-gc-min0", ["rm", t.tag, "--dry-run", "--gc", "--min-age", "0", SKIP, *j])
        )
        c.append(("rm-dry-tag-trash", ["rm", t.tag, "--dry-run", "--trash", SKIP, *j]))
    if t.tag and t.short and t.repo:
        c.append(("rm-dry-several", ["rm", t.tag, t.short, t.repo, "--dry-run", SKIP, *j]))
    if t.child:
        c.append(("rm-dry-child", ["rm", t.child, "--dry-run", SKIP, *j]))
        c.append(("rm-dry-child-force", ["rm", t.child, "--dry-run", "--force", SKIP, *j]))
    cases = [Case(name, [args]) for name, args in c]
    # With the live guard (ENV_GUARD_KINDS): alone on its copy.
    cases.append(Case("gc-dry", [["gc", "--dry-run", *j]], alone=True))
    return cases


def real_cases(t: Targets, big: bool = False) -> list[Case]:
    """Real (deleting) runs. ``big``: one chain of them on the read-only copies instead of a
    fresh copy per scenario (a copy of the 2000x10 tree is 1.5 GB and takes seconds)."""
    j = ["--json", "--yes", SKIP]
    if big:
        steps = [
            ["gc", "--trash", "--delete-untagged", "--min-age", "0", *j],
            ["LIST"],
            ["trash", "list", "--json"],
            ["trash", "purge", "--dry-run", "--older-than", "0", "--json"],
            ["restore", "{run_id}", "--json"],
            ["LIST"],
            ["gc", *j],
            ["LIST"],
        ]
        if t.tag and t.short:
            steps += [["rm", t.tag, t.short, *j], ["LIST"]]
        if t.repo:
            steps += [["rm", t.repo, "--gc", "--min-age", "0", *j], ["LIST"]]
        steps += [["trash", "purge", "--yes", "--older-than", "0", "--json"], ["LIST"]]
        return [Case("real-chain", steps, mutating=True, on_shared=True)]
    cases = [
        Case("real-gc", [["gc", *j], ["LIST"]], mutating=True),
        Case(
            "real-gc-untagged-min0",
            [
                ["gc", "--delete-untagged", "--min-age", "0", "--uploads-older-than", "0", *j],
                ["LIST"],
                ["gc", "--min-age", "0", *j],
                ["LIST"],
            ],
            mutating=True,
        ),
        Case(
            "real-gc-trash-restore",
            [
                ["gc", "--trash", "--delete-untagged", "--min-age", "0", *j],
                ["LIST"],
                ["trash", "list", "--json"],
                ["trash", "purge", "--dry-run", "--older-than", "0", "--json"],
                ["restore", "{run_id}", "--json"],
                ["LIST"],
                ["restore", "{run_id}", "--json"],
                ["trash", "purge", "--yes", "--older-than", "0", "--json"],
                ["LIST"],
            ],
            mutating=True,
        ),
    ]
    targets = [x for x in (t.tag, t.short) if x]
    if targets:
        steps = [["rm", *targets, *j], ["LIST"]]
        if t.repo:
            steps += [["rm", t.repo, "--gc", "--min-age", "0", *j], ["LIST"]]
        cases.append(Case("real-rm", steps, mutating=True))
    if t.child:
        cases.append(
            Case("real-rm-child-force", [["rm", t.child, "--force", *j], ["LIST"]], mutating=True)
        )
    return cases


# --- retain: pushed-at times --------------------------------------------------------------------
# ``PUSHED``: a step that spreads every tag's pushed-at time (its ``current/link`` mtime) over
# the DAYS before PUSHED_AT, by a hash of repository and tag (``latest``: its repository's
# newest), on the case's copy of each side: the fixtures and the generated tree give tags one
# mtime (or a few), which retain rightly refuses or cannot order. The same times on both sides.
PUSHED = "PUSHED"
DAY = 86400.0
PUSHED_DAYS = 300.0
# The time the spread counts back from: the second json_diff started, for every case and side.
PUSHED_AT = float(int(time.time()))
# ``{policy}`` in a step: a retention policy file with two overlapping rules (written once).
POLICY_NAME = "retain-policy.toml"


def spread_pushed_at(root: Path, anchor: float = PUSHED_AT, days: float = PUSHED_DAYS) -> int:
    """Set every tag's pushed-at time below ``root`` (see PUSHED); returns how many. At least
    two hours old: older than retain's default --min-age. Links that are not regular files
    are left alone."""
    repos = root / "docker" / "registry" / "v2" / "repositories"
    count = 0
    for dirpath, dirnames, _ in os.walk(repos):
        dirnames.sort()
        if not dirpath.endswith("/_manifests/tags"):
            continue
        repo = Path(dirpath).parent.parent.relative_to(repos).as_posix()
        times: dict[str, float] = {}
        for tag in dirnames:
            if tag != "latest":
                h = hashlib.sha256(f"{repo}:{tag}".encode()).digest()
                frac = int.from_bytes(h[:8], "big") / 2**64
                times[tag] = anchor - 2 * 3600 - days * DAY * frac
        if "latest" in dirnames:
            times["latest"] = max(times.values(), default=anchor - 2 * 3600)
        for tag, when in times.items():
            link = os.path.join(dirpath, tag, "current", "link")
            if os.path.isfile(link) and not os.path.islink(link):
                os.utime(link, (when, when), follow_symlinks=False)
                count += 1
        dirnames[:] = []  # nothing to find inside the tags
    return count


def policy_path(work: Path, tree: str) -> Path:
    """Where the policy file of ``tree`` is written (``{policy}`` in a step)."""
    return work / f"{tree}-{POLICY_NAME}"


def write_policy(work: Path, tree: str, t: Targets) -> Path:
    """Two overlapping rules: every repository keeps its newest tag and what is younger than
    120 days; the first repository's group keeps only its newest (but 1* tags always)."""
    group = t.glob.split(":")[0] if t.glob else "**"
    path = policy_path(work, tree)
    path.write_text(
        "# json_diff: two overlapping rules\n"
        '[[rule]]\nrepo = "**"\nkeep_last = 1\nolder_than = "120d"\n\n'
        f'[[rule]]\nrepo = "{group}"\ntags = ".*"\nkeep_tags = "1.*|latest"\nkeep_last = 1\n',
        encoding="utf-8",
    )
    return path


def retain_cases(t: Targets, big: bool = False) -> list[Case]:
    """``regfs retain`` with every rule kind, dry and real (``--trash`` then ``restore``),
    each on its own copy with spread pushed-at times (``big``: one chain on the read-only
    copies, after every other case)."""
    j = ["--json", SKIP]
    group = t.glob.split(":")[0] if t.glob else "**"
    dry: list[tuple[str, list[str]]] = [
        ("keep-last-1", ["--keep-last", "1"]),
        ("keep-last-3", ["--keep-last", "3"]),
        ("older-than-90d", ["--older-than", "90d"]),
        ("both", ["--keep-last", "1", "--older-than", "30d"]),
        ("tags-regex", ["--tags", "v.*|[0-9].*", "--keep-tags", "2.*|latest", "--keep-last", "1"]),
        ("keep-tags-none", ["--keep-tags", "", "--keep-last", "1"]),
        ("repo", ["--repo", group, "--keep-last", "1"]),
        ("policy", ["--policy", "{policy}"]),
        ("by-created", ["--by", "created", "--keep-last", "1"]),
        ("min0", ["--keep-last", "1", "--min-age", "0"]),
        ("min-3650d", ["--keep-last", "1", "--min-age", "3650d"]),
        ("trash", ["--keep-last", "1", "--trash", "--min-age", "0"]),
        ("no-rule", []),
        ("policy-and-flags", ["--policy", "{policy}", "--keep-last", "1"]),
    ]
    dry_steps = [["retain", *args, "--dry-run", *j] for _, args in dry]
    real = ["--yes", *j]
    chains: list[tuple[str, list[list[str]]]] = [
        (
            "retain-real-trash-restore",
            [
                # a dry run first: its run id is not the one {run_id} names
                ["retain", "--keep-last", "1", "--trash", "--min-age", "0", "--dry-run", *j],
                ["retain", "--keep-last", "1", "--trash", "--min-age", "0", *real],
                ["LIST"],
                ["trash", "list", "--json"],
                ["restore", "{run_id}", "--json"],
                ["LIST"],
                ["retain", "--keep-last", "1", "--trash", "--min-age", "0", "--dry-run", *j],
            ],
        ),
        ("retain-real-older", [["retain", "--older-than", "90d", *real], ["LIST"]]),
        (
            "retain-real-policy",
            [["retain", "--policy", "{policy}", "--min-age", "0", *real], ["LIST"]],
        ),
        (
            "retain-real-by-created",
            [["retain", "--by", "created", "--keep-last", "2", "--min-age", "0", *real], ["LIST"]],
        ),
    ]
    if big:
        steps = [[PUSHED], *dry_steps[:4], dry_steps[7]]
        steps += [s for _, chain in chains[:1] for s in chain]
        return [Case("retain-chain", steps, mutating=True, on_shared=True)]
    cases = [
        Case(f"retain-dry-{name}", [[PUSHED], step], mutating=True)
        for (name, _), step in zip(dry, dry_steps, strict=True)
    ]
    # Every tag one pushed-at second (as extracted): refused per repository (exit 3).
    cases.append(Case("retain-dry-unspread", [["retain", "--keep-last", "1", "--dry-run", *j]]))
    cases += [Case(name, [[PUSHED], *steps], mutating=True) for name, steps in chains]
    return cases


# --- preparing sources and trees --------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def prepare_side(label: str, spec: str, work: Path) -> Side:
    """A folder holding the regfs package of ``spec``: a checkout folder, or a git revision
    exported with ``git archive``."""
    p = Path(spec)
    if p.is_dir() and (p / "regfs" / "__init__.py").is_file():
        return Side(label, spec, p.resolve())
    try:
        commit = git("rev-parse", "--verify", f"{spec}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"json_diff: {label}: {spec!r} is neither a regfs checkout nor a commit"
        ) from None
    dst = work / f"src-{label}"
    dst.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    return Side(label, f"{spec} ({commit[:12]})", dst)


def default_workdir(big: bool) -> str | None:
    """/dev/shm (30 times faster than ext4 for this) when it has room, else the temp folder.
    The 2000x10 tree needs about 4.5 GB there at the peak (the tree and one copy per side)."""
    need = 8 << 30 if big else 1 << 30
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if st.f_bavail * st.f_frsize >= need else None


def cp_a(src: Path, dst: Path) -> None:
    """Copy a tree keeping modes, symlinks and every mtime (folders' too)."""
    subprocess.run(["cp", "-a", "--", str(src), str(dst)], check=True)


def prepare_trees(names: list[str], gen: tuple[int, int] | None, work: Path) -> dict[str, Path]:
    trees: dict[str, Path] = {}
    for name in names:
        trees[name] = realreg.extract_fixture(name, work / "trees" / name)
    if gen is not None:
        dst = work / "trees" / GEN_NAME
        subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "gen_tree.py"), str(dst),
             "--repos", str(gen[0]), "--tags", str(gen[1]), "--jobs", "2"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        trees[GEN_NAME] = dst
    return trees


# --- comparing ---------------------------------------------------------------------------------


def ages_agree(a: Record, b: Record) -> bool:
    """Each age is ``int(now - t)`` for a fixed ``t`` read from the tree, with ``now`` within
    the run: ``t`` lies in [start - age - 1, end - age]; both sides' intervals must meet."""
    if len(a.ages) != len(b.ages):
        return False
    for x, y in zip(a.ages, b.ages, strict=True):
        lo = max(a.start - x - 1, b.start - y - 1)
        hi = min(a.end - x, b.end - y)
        if lo > hi + 1e-6:
            return False
    return True


@dataclass
class Outcome:
    tree: str
    case: str
    same: bool
    diff: str = ""
    files: dict[str, list[str]] = field(default_factory=dict)


def side_copies(src_tree: Path, sides: list[Side], where: Path) -> dict[str, Path]:
    """One copy of the tree per side, at paths of the same length."""
    roots = {}
    for s in sides:
        root = where.parent / f"{where.name}.{s.label}"
        root.parent.mkdir(parents=True, exist_ok=True)
        cp_a(src_tree, root)
        roots[s.label] = root
    return roots


def run_case(
    tree: str,
    case: Case,
    sides: list[Side],
    roots: dict[str, Path],
    work: Path,
    timeout: float,
    own_copies: bool,
) -> Outcome:
    """Run ``case`` for each side on that side's copy of the tree, steps interleaved (base
    then new, step by step). ``own_copies``: the copies are the case's and go at the end."""
    texts: dict[str, list[str]] = {s.label: [] for s in sides}
    run_ids: dict[str, str | None] = {s.label: None for s in sides}
    seen: dict[str, dict[str, str]] = {s.label: {} for s in sides}
    same = True
    for step in case.steps:
        recs: dict[str, Record] = {}
        for s in sides:
            root = roots[s.label]
            if step == [PUSHED]:
                n = spread_pushed_at(root)
                now = time.time()
                recs[s.label] = Record(
                    f"$ (pushed-at times of {n} tags spread)\n", [], now, now,
                    Result([], 0, "", "", now, now),
                )  # fmt: skip
                continue
            if step == ["LIST"]:
                text = listing(root).replace(str(root), "<ROOT>")
                # sorted after numbering: run ids made in the same second sort by their
                # random part
                text = "".join(sorted(number_run_ids(text, seen[s.label]).splitlines(True)))
                now = time.time()
                recs[s.label] = Record(
                    "$ (listing of ROOT)\n" + text, [], now, now, Result([], 0, "", "", now, now)
                )
                continue
            args = [
                a.replace("{run_id}", run_ids[s.label] or "NO-RUN-ID").replace(
                    "{policy}", str(policy_path(work, tree))
                )
                for a in step
            ]
            # ROOT first: every command accepts it there (rm and restore: with a target after).
            if args[0] == "trash":
                argv = [args[0], args[1], str(root), *args[2:]]
            else:
                argv = [args[0], str(root), *args[1:]]
            res = run_regfs(s, argv, work, timeout)
            if run_ids[s.label] is None and "--dry-run" not in args:
                # A dry run prints a run id too, but nothing is made under it to restore.
                m = RUN_ID_RE.search(res.stdout)
                if m and args[0] in ("gc", "rm", "retain"):
                    run_ids[s.label] = m.group(0)
            res.run_ids = seen[s.label]
            recs[s.label] = make_record(res, root)
        a, b = (recs[s.label] for s in sides)
        if a.text != b.text or not ages_agree(a, b):
            same = False
        for s in sides:
            r = recs[s.label]
            texts[s.label].append(r.text + (f"ages {r.ages}\n" if r.ages else ""))
    if own_copies:
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)
    files = {s.label: texts[s.label] for s in sides}
    diff = ""
    if not same:
        la, lb = ("".join(texts[s.label]).splitlines(keepends=True) for s in sides)
        diff = "".join(
            difflib.unified_diff(
                la,
                lb,
                f"{sides[0].label}/{tree}/{case.name}",
                f"{sides[1].label}/{tree}/{case.name}",
            )
        )
        if not diff:  # only the ages disagree
            diff = f"ages disagree beyond the runs' time spans: {la[-1:]} vs {lb[-1:]}\n"
    return Outcome(tree, case.name, same, diff, files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--base", default=BASE_REV, help=f"revision or checkout (default {BASE_REV})")
    ap.add_argument("--new", default=str(REPO), help="revision or checkout (default: this one)")
    ap.add_argument("--fixtures", help="comma-separated tree names (fixtures and 'gen'; globs)")
    ap.add_argument("--commands", help="comma-separated case names or globs (see --list)")
    ap.add_argument("--no-gen", action="store_true", help="skip the generated tree")
    ap.add_argument("--gen-repos", type=int, default=2000)
    ap.add_argument("--gen-tags", type=int, default=10)
    ap.add_argument("--keep", metavar="DIR", help="write every normalised output under DIR")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--workdir", help="scratch space (default /dev/shm when present, else TMP)")
    ap.add_argument("--timeout", type=float, default=600.0, help="per regfs run, seconds")
    ap.add_argument("--list", action="store_true", help="list trees and cases, run nothing")
    opts = ap.parse_args(argv)

    def pick(names: list[str], patterns: str | None) -> list[str]:
        if not patterns:
            return names
        pats = [p.strip() for p in patterns.split(",") if p.strip()]
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]

    all_trees = [*realreg.ALL_FIXTURES, *([] if opts.no_gen else [GEN_NAME])]
    tree_names = pick(all_trees, opts.fixtures)
    if not tree_names:
        print(f"json_diff: no tree matches {opts.fixtures!r} (have: {', '.join(all_trees)})")
        return 2
    scratch = opts.workdir or default_workdir(GEN_NAME in tree_names)
    work = Path(tempfile.mkdtemp(prefix="regfs-json-diff-", dir=scratch))
    t0 = time.time()
    try:
        fixtures = [n for n in tree_names if n != GEN_NAME]
        gen = (opts.gen_repos, opts.gen_tags) if GEN_NAME in tree_names else None
        trees = prepare_trees(fixtures, gen, work)
        plan: list[tuple[str, Case]] = []
        for name, root in trees.items():
            targets = find_targets(root)
            write_policy(work, name, targets)
            big = name == GEN_NAME
            cases = [
                *read_only_cases(targets),
                *real_cases(targets, big=big),
                *retain_cases(targets, big=big),
            ]
            wanted = set(pick([c.name for c in cases], opts.commands))
            plan += [(name, c) for c in cases if c.name in wanted]
        if opts.list:
            for name, c in plan:
                print(f"{name:10} {c.name:28} " + " ; ".join(" ".join(s) for s in c.steps))
            return 0
        if not plan:
            print(f"json_diff: no case matches {opts.commands!r} (see --list)")
            return 2
        sides = [prepare_side("base", opts.base, work), prepare_side("new", opts.new, work)]
        print(f"json_diff: base = {sides[0].spec}, new = {sides[1].spec}", file=sys.stderr)
        print(
            f"json_diff: {len(plan)} cases on {len(trees)} trees ({', '.join(trees)}), "
            f"trees ready in {time.time() - t0:.1f}s",
            file=sys.stderr,
        )
        outcomes: list[Outcome] = []
        # Read-only cases share one copy per tree and side (a listing of it afterwards, the
        # case "read-only-unchanged", proves they wrote nothing); each real case has its own.
        shared: dict[str, dict[str, Path]] = {}
        for name in trees:
            if any(n == name and (c.on_shared or not c.mutating) for n, c in plan):
                shared[name] = side_copies(trees[name], sides, work / "runs" / f"{name}.shared")
            if not any(n == name and c.mutating and not c.on_shared for n, c in plan):
                shutil.rmtree(trees[name])  # not copied again: give the space back

        def unit(name: str, c: Case) -> Outcome:
            if c.mutating:
                roots = side_copies(trees[name], sides, work / "runs" / f"{name}.{c.name}")
                return run_case(name, c, sides, roots, work, opts.timeout, own_copies=True)
            return run_case(name, c, sides, shared[name], work, opts.timeout, own_copies=False)

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            futs = [pool.submit(unit, name, c) for name, c in plan if not (c.on_shared or c.alone)]
            for fut in concurrent.futures.as_completed(futs):
                outcomes.append(fut.result())
        for name, roots in shared.items():
            for n, c in plan:
                if n == name and c.alone:
                    outcomes.append(run_case(name, c, sides, roots, work, opts.timeout, False))
            if any(n == name and not c.mutating for n, c in plan):
                unchanged = Case("read-only-unchanged", [["LIST"]])
                outcomes.append(run_case(name, unchanged, sides, roots, work, opts.timeout, False))
            for n, c in plan:
                if n == name and c.on_shared:
                    outcomes.append(run_case(name, c, sides, roots, work, opts.timeout, False))
            for root in roots.values():
                shutil.rmtree(root, ignore_errors=True)
        outcomes.sort(key=lambda o: (tree_names.index(o.tree), o.case))
        if opts.keep:
            keep = Path(opts.keep)
            for o in outcomes:
                for label, parts in o.files.items():
                    f = keep / label / o.tree / f"{o.case}.txt"
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_text("".join(parts), encoding="utf-8")
                if o.diff:
                    f = keep / "diff" / o.tree / f"{o.case}.diff"
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_text(o.diff, encoding="utf-8")
        differ = [o for o in outcomes if not o.same]
        for o in differ:
            sys.stdout.write(f"=== {o.tree} / {o.case}: DIFFERENT\n{o.diff}\n")
        runs = sum(len(c.steps) for _, c in plan)
        print(
            f"json_diff: {len(outcomes) - len(differ)} of {len(outcomes)} cases identical "
            f"({runs} steps per side), {len(differ)} different; {time.time() - t0:.1f}s",
            file=sys.stderr,
        )
        return 1 if differ else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
