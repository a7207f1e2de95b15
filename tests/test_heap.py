"""regfs.heap: the cyclic collector is paused inside, and restored exactly as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from regfs.heap import collector_paused, without_collector


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


def test_decorator_pauses_and_passes_arguments_and_result_through() -> None:
    seen: list[bool] = []

    @without_collector
    def work(a: int, *, b: int) -> int:
        """Doc kept."""
        seen.append(gc.isenabled())
        return a + b

    assert work(2, b=3) == 5
    assert seen == [False]
    assert gc.isenabled()
    assert work.__doc__ == "Doc kept."
    assert work.__name__ == "work"


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
