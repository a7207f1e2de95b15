"""Pausing Python's cyclic garbage collector while large, acyclic structures are built.

A scan allocates hundreds of thousands of small container objects (links, blobs, descriptors)
that live until the command ends. Each allocation burst triggers generation-0/1/2 collections
that walk everything allocated so far, which measured as a fifth of ``regfs gc``'s wall time on
a 200k-file tree (and, re-measured for issue 12, a quarter more user CPU without the pause:
``benchmarks/README.md``). None of these structures form reference cycles, so pausing the
collector loses nothing; whatever cycles do appear meanwhile are collected when it resumes.

The pause is the program's decision, not a library function's: only the console script
(:mod:`regfs.cli.main`) takes it, around the whole command (a script calling
:mod:`regfs.api` decides for itself). ``tests/test_heap.py`` holds that rule. Forked helpers
inherit the paused collector, so they do not touch (and copy) the parent's shared objects.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block; nesting is fine, the outermost resumes it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
