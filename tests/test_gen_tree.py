"""benchmarks/gen_tree.py: deterministic trees, and --layer-kib changes sizes, not the graph."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent


def _gen_tree() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_tree", REPO_ROOT / "benchmarks" / "gen_tree.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_tree", mod)
    spec.loader.exec_module(mod)
    return mod


def _layer_sizes(root: Path) -> list[int]:
    """Sizes of the blobs that are neither manifests nor configs (JSON documents)."""
    sizes = []
    for data in (root / "docker/registry/v2/blobs").rglob("data"):
        head = data.read_bytes()[:4]
        if head == b"\x1f\x8b\x08\x00":  # the generator's layer marker
            sizes.append(data.stat().st_size)
    return sizes


def test_layer_kib_changes_sizes_not_the_graph(tmp_path: Path) -> None:
    gen = _gen_tree()
    small = gen.generate(str(tmp_path / "a"), 12, 3, seed=7, jobs=1)
    big = gen.generate(str(tmp_path / "b"), 12, 3, seed=7, jobs=1, layer_kib=8)
    again = gen.generate(str(tmp_path / "c"), 12, 3, seed=7, jobs=1, layer_kib=8)
    # (not "dirs": other digests fall into other two-hex prefix folders)
    keys = ("repos", "tags", "manifests", "blobs", "files", "gc_eligible")
    assert {k: small["counts"][k] for k in keys} == {k: big["counts"][k] for k in keys}
    assert big["gc_default_eligible"] == again["gc_default_eligible"]  # deterministic
    small_layers = _layer_sizes(tmp_path / "a")
    big_layers = _layer_sizes(tmp_path / "b")
    assert len(small_layers) == len(big_layers) > 0
    assert max(small_layers) <= 4 + 303
    assert all(4 + 4 * 1024 <= n <= 4 + 12 * 1024 for n in big_layers)  # K/2 .. 3K/2 KiB
