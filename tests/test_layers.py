"""The one-way import rule: a module imports only from its own layer or the layers below.

storage layout and path algebra -> storage access -> manifest parsing -> scan -> graph/mark ->
analysis -> GC plan -> GC execution -> rendering and the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "regfs"

LAYERS: list[set[str]] = [
    # foundations, path algebra, globs
    {"errors", "digest", "layout", "duration", "heap", "forkpool", "pattern"},
    {"storage"},  # the only filesystem access
    {"manifests"},  # manifest parsing
    {"findings", "snapshot", "codec", "scan", "hashing"},  # scan
    {"unread", "graph"},  # graph / mark (unread: what unreadable parts force gc to keep)
    {"analysis", "servable", "treeview", "du", "check"},  # analysis and reports
    {"gc.plan", "gc.rm"},  # GC plans (pure)
    {"gc.regconfig", "gc.procs", "gc.probe"},  # the live guard's evidence
    {"gc.journal", "gc.lock", "gc.live", "gc.trash", "gc.execute"},  # GC execution
    {"gc.run", "api"},  # one call per command
    {"render"},  # rendering
    {"cli", "__main__"},  # the CLI
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def modules() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        if rel.name == "__init__":
            continue
        out.append(".".join(rel.parts))
    return out


def imports_of(name: str) -> set[str]:
    path = PKG.joinpath(*name.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "regfs":
                found.update(a.name for a in node.names if a.name in RANK)
            elif node.module.startswith("regfs."):
                found.add(node.module.removeprefix("regfs."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("regfs.") for a in node.names if a.name.startswith("regfs.")
            )
    return found


def test_every_module_has_a_layer() -> None:
    assert sorted(set(modules()) - set(RANK)) == []


@pytest.mark.parametrize("name", modules())
def test_imports_point_down(name: str) -> None:
    upward = sorted(m for m in imports_of(name) if RANK.get(m, -1) > RANK[name])
    assert upward == [], f"{name} (layer {RANK[name]}) imports from higher layers: {upward}"
