"""The engineering standards, enforced: ruff clean, formatted, mypy strict on regfs/ and tests/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_and_format() -> None:
    res = _run(sys.executable, "-m", "ruff", "check", "regfs", "tests", "benchmarks")
    assert res.returncode == 0, res.stdout + res.stderr
    res = _run(sys.executable, "-m", "ruff", "format", "--check", "regfs", "tests/", "benchmarks")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict() -> None:
    # pyproject.toml [tool.mypy]: strict, files = regfs and tests.
    res = _run(sys.executable, "-m", "mypy")
    assert res.returncode == 0, res.stdout + res.stderr


def _ruff_stdin(filename: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename", filename, "-"],
        cwd=ROOT,
        input=source,
        capture_output=True,
        text=True,
    )


def test_public_definitions_need_docstrings() -> None:
    # pyproject.toml selects D100-D104 and D106 for regfs/ only (issue 12).
    source = (
        "class Thing:\n"
        "    def size(self) -> int:\n"
        "        return 0\n"
        "\n"
        "\n"
        "def make() -> None:\n"
        "    pass\n"
    )
    lib = _ruff_stdin("regfs/thing.py", source)
    assert lib.returncode == 1, lib.stdout + lib.stderr
    for code in ("D100", "D101", "D102", "D103"):
        assert code in lib.stdout, lib.stdout
    private = "def _helper() -> None:\n    pass\n"
    assert "D103" not in _ruff_stdin("regfs/thing.py", private).stdout
    test = _ruff_stdin("tests/test_thing.py", source)
    assert test.returncode == 0, test.stdout + test.stderr
