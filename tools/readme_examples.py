"""Regenerate the README's "Examples (demo storage)" block from real runs of regfs.

    python tools/readme_examples.py          # print the block
    python tools/readme_examples.py --write  # replace it in README.md

Each command runs as ``python -m regfs`` from the repository root on ``demo/registry`` (the
storage written by the real registry), at 80 columns. tests/test_readme.py checks that the
README holds exactly what this prints (ages such as "2 years ago" compared as "<age> ago").
gc is left out and the guard's notes in rm's output are dropped: they describe the registry
processes running on this host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BEGIN = "<!-- examples:begin (tools/readme_examples.py --write) -->"
END = "<!-- examples:end -->"
# The worked examples of the "Retention" section: a block of their own.
RETAIN_BEGIN = "<!-- retain-examples:begin (tools/readme_examples.py --write) -->"
RETAIN_END = "<!-- retain-examples:end -->"

COMMANDS: list[list[str]] = [
    ["tree", "demo/registry"],
    ["orphans", "demo/registry"],
    ["du", "demo/registry"],
    ["check", "demo/registry"],
    ["rm", "demo/registry", "library/python:3.12", "--dry-run", "--min-age", "0"],
]
# Ordered by the image config's `created` (fixed in the demo store), so that the output does not
# depend on when the repository was checked out.
RETAIN_COMMANDS: list[list[str]] = [
    [
        "retain",
        "demo/registry",
        "--repo",
        "library/*",
        "--tags",
        "3\\..*",
        "--older-than",
        "30d",
        "--by",
        "created",
        "--min-age",
        "0",
        "--dry-run",
    ],
    [
        "retain",
        "demo/registry",
        "--repo",
        "library/alpine",
        "--keep-tags",
        "",
        "--keep-last",
        "1",
        "--by",
        "created",
        "--min-age",
        "0",
        "--dry-run",
    ],
    ["retain", "demo/registry", "--policy", "demo/retention.toml", "--min-age", "0", "--dry-run"],
]

_AGE = re.compile(r"\b(?:(?:an?|\d+) (?:second|minute|hour|day|month|year)s?|\d+[smhd]) ago\b")
_RUN_ID = re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]{8}\b")


def normalize(text: str) -> str:
    """What may differ between two runs on the same tree: ages and run ids."""
    return _RUN_ID.sub("RUN-ID", _AGE.sub("<age> ago", text))


def run(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("REGFS_ROOT", "NO_COLOR")}
    env.update(COLUMNS="80", PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, "-m", "regfs", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # The tree's first line is the absolute v2 folder: shown relative to the repository.
    return without_guard(res.stdout.rstrip("\n").replace(f"{REPO}/", ""))


def without_guard(text: str) -> str:
    """Drop the live-registry guard's notes: they describe the processes of this host."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("Live-registry guard:"):
            skipping = True
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


def _shown(arg: str) -> str:
    """An argument as typed in a shell: quoted when it holds a glob or a backslash."""
    return f"'{arg}'" if not arg or any(c in arg for c in "*?[\\") else arg


def block(commands: list[list[str]] | None = None) -> str:
    parts = [
        f"$ regfs {' '.join(_shown(a) for a in args)}\n{run(args)}"
        for args in (COMMANDS if commands is None else commands)
    ]
    return "```\n" + "\n\n".join(parts) + "\n```"


def readme_block(text: str, begin: str = BEGIN, end: str = END) -> str:
    start = text.index(begin) + len(begin)
    return text[start : text.index(end, start)].strip("\n")


def main() -> int:
    blocks = [(BEGIN, END, block()), (RETAIN_BEGIN, RETAIN_END, block(RETAIN_COMMANDS))]
    if "--write" not in sys.argv[1:]:
        print("\n\n".join(new for _, _, new in blocks))
        return 0
    text = README.read_text()
    for begin, end, new in blocks:
        start = text.index(begin) + len(begin)
        stop = text.index(end, start)
        text = text[:start] + "\n" + new + "\n" + text[stop:]
    README.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
