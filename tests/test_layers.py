"""The one-way import rule: a module imports only from its own layer or the layers below.

model -> storage layout and path algebra -> storage access -> manifest parsing -> scan ->
graph (reachability) -> reports -> GC plan -> GC execution -> API -> rendering and the CLI
(docs/architecture.md). Every regfs import must name a module of a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "regfs"

LAYERS: list[set[str]] = [
    {"errors", "duration", "defaults", "pattern", "retain.policy"},  # foundations
    # how much runs at once (machine, tuning), the fork pool, the collector pause
    {"parallel.machine", "parallel.tuning", "parallel.pool", "parallel.heap", "parallel"},
    {"model.digest", "model.findings", "model.manifest", "model.snapshot"},  # the model
    {"layout", "layout.folders", "layout.state"},  # path algebra, both ways; regfs state
    {"storage.errors", "storage.base"},  # the storage seam: protocols, entry kinds, errors
    # The only I/O on registry data and regfs state.
    {"storage.root", "storage.fds", "storage.localstate", "storage.local"},
    {"storage.memfs", "storage.memory"},
    {"storage.listed"},  # a store's read side from one recursive listing
    # a registry in an S3 bucket
    {"storage.s3client", "storage.s3fast", "storage.s3base", "storage.s3", "storage.s3batch"},
    {"storage.s3state"},  # regfs's own state in a bucket (built on storage.s3)
    {"storage.regyaml", "storage.config"},  # the registry's CONFIG and the store it names
    {"storage.locate", "storage.names"},  # ROOT / --config / --endpoint-url -> the store; names
    {"manifests"},  # manifest parsing: bytes -> model types
    {"scan.out", "scan.interpret", "scan.codec"},  # scan: interpret (no I/O)
    {"scan.walk", "scan.links", "scan.uploads", "scan.tree", "scan.blobs", "scan.repository"},
    {
        "scan.loader",
        "scan.shard",
        "scan.refresh",
        "scan.listing",
        "scan",
    },  # scan: enumerate, shard, refresh
    {"graph.unread", "graph.mark", "graph.servable"},  # reachability
    {
        "reports.orphans",
        "reports.treeview",
        "reports.du",
        "reports.hashing",
        "reports.verify",
        "reports.check",
        "reports.multipart",
        "retain.select",
    },
    {"gc.steps"},  # the gc protocol: steps, statuses, actions, results
    {"gc.plan", "gc.folders"},  # a plan and its parts; the folders a plan leaves empty
    {"gc.targets", "gc.garbage", "gc.compose", "gc.rm", "gc.multipart"},  # GC plans (pure)
    {"retain.freed", "retain.plan", "retain.created"},  # retention plans (pure)
    {"gc.regconfig", "gc.procs", "gc.probe", "gc.bucketroot", "gc.registries"},  # guard evidence
    {"gc.journal", "gc.lock", "gc.live", "gc.trash", "gc.relinks", "gc.execute", "gc.refresh"},
    {"gc.s3relinks", "gc.s3exec"},  # GC execution on a bucket (built on the generic one)
    # one run per deleting command: lock, scan, plan, guard, execute
    {
        "gc.outcome",
        "gc.rules",
        "gc.finish",
        "gc.run",
        "gc.runoptions",
        "gc.removal",
        "gc.trashrun",
        "retain.run",
    },
    {"rootargs", "api"},  # the library: Registry (and which argument is ROOT)
    {  # rendering: text and JSON from report values
        "render",
        "render.base",
        "render.findings",
        "render.tables",
        "render.tree",
        "render.json_inspect",
        "render.json_gc",
        "render.text_inspect",
        "render.text_gc",
        "render.text_trash",
        "render.retain",
    },
    {  # the CLI
        "cli",
        "cli.app",
        "cli.completion",
        "cli.console",
        "cli.gc",
        "cli.helpfmt",
        "cli.inspect",
        "cli.main",
        "cli.options",
        "cli.trash",
        "cli.retain",
        "__main__",
    },
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def modules() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        if rel.name == "__init__":
            if rel.parent == Path(".") or len(path.read_text().splitlines()) <= 3:
                continue  # a package's docstring only
            rel = rel.parent
        out.append(".".join(rel.parts))
    return out


def imports_of(name: str) -> set[str]:
    path = PKG.joinpath(*name.split(".")).with_suffix(".py")
    if not path.exists():
        path = PKG.joinpath(*name.split("."), "__init__.py")
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "regfs":
                found.update(a.name for a in node.names if a.name in RANK)
            elif node.module.startswith("regfs."):
                base = node.module.removeprefix("regfs.")
                subs = {f"{base}.{a.name}" for a in node.names} & set(RANK)
                found.update(subs or {base})
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("regfs.") for a in node.names if a.name.startswith("regfs.")
            )
    return found


@pytest.mark.parametrize("name", modules())
def test_imports_name_known_modules(name: str) -> None:
    assert sorted(m for m in imports_of(name) if m not in RANK) == []


def test_every_module_has_a_layer() -> None:
    assert sorted(set(modules()) - set(RANK)) == []


@pytest.mark.parametrize("name", modules())
def test_imports_point_down(name: str) -> None:
    upward = sorted(m for m in imports_of(name) if RANK.get(m, -1) > RANK[name])
    assert upward == [], f"{name} (layer {RANK[name]}) imports from higher layers: {upward}"
