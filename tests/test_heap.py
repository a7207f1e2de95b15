"""regfs.parallel.heap: the cyclic collector is paused inside, restored exactly as it was; and
only the console script pauses it (or leaves with ``os._exit``)."""

from __future__ import annotations

import ast
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from regfs.parallel.heap import collector_paused

PKG = Path(__file__).resolve().parent.parent / "regfs"


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_resumed_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nesting_resumes_only_at_the_outermost_block() -> None:
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_resumed_after_an_exception() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_cycles_made_while_paused_are_collected_after() -> None:
    import weakref

    class Node:
        other: object

    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        del a, b
    gc.collect()
    assert ref() is None


def _uses(tree: ast.AST) -> set[str]:
    """``gc.<name>`` and ``os._exit`` calls, and imports of the collector pause."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "gc" and node.attr in ("disable", "enable", "freeze"):
                found.add(f"gc.{node.attr}")
            if node.value.id == "os" and node.attr == "_exit":
                found.add("os._exit")
        if isinstance(node, ast.ImportFrom) and node.module == "regfs.parallel.heap":
            found.add("collector_paused")
        if isinstance(node, ast.ImportFrom) and node.module == "gc":
            found.add("from gc")
    return found


def test_only_the_console_script_pauses_the_collector_or_skips_teardown() -> None:
    # The pool's forked helpers end with os._exit (nothing of the parent may run twice);
    # heap is where the pause is defined. Everything else leaves both to cli/main.py.
    allowed = {
        "cli/main.py": {"collector_paused", "os._exit"},
        "parallel/heap.py": {"gc.disable", "gc.enable"},
        "parallel/pool.py": {"os._exit"},
    }
    seen = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        uses = _uses(ast.parse(path.read_text()))
        if uses:
            seen[rel] = uses
    assert seen == allowed
