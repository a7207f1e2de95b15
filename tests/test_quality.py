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
