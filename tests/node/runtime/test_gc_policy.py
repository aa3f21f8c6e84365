"""The node process's GC settings (node/runtime/gc_policy.py), applied and then undone."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from node.runtime.gc_policy import YOUNG_OBJECTS_MAX, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_young_collections_are_rarer_and_startup_objects_frozen() -> None:
    _, middle, old = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == (YOUNG_OBJECTS_MAX, middle, old)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_gc")
def test_cyclic_garbage_is_still_collected() -> None:
    """Rarer, not off: a cycle dies at the next young collection."""
    tune_gc()
    collected = []

    class Node:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            collected.append(True)

    Node()
    assert not collected  # a cycle: reference counting alone cannot free it
    # Net allocations past the threshold.
    young: list[list[object]] = [[] for _ in range(YOUNG_OBJECTS_MAX + 1)]
    assert collected == [True] and gc.isenabled()
    del young
