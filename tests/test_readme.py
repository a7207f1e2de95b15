"""The README's examples are what regfs prints on the demo storage (tools/readme_examples.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "readme_examples", REPO / "tools" / "readme_examples.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_examples_match_real_runs() -> None:
    tool = _tool()
    readme = tool.readme_block((REPO / "README.md").read_text())
    assert tool.normalize(readme) == tool.normalize(tool.block()), (
        "README examples are stale: run `python tools/readme_examples.py --write`"
    )


def test_readme_examples_cover_the_everyday_commands() -> None:
    tool = _tool()
    readme = tool.readme_block((REPO / "README.md").read_text())
    for cmd in ("tree", "orphans", "du", "check", "rm"):
        assert f"$ regfs {cmd} demo/registry" in readme
