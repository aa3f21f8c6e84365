"""The node process's garbage-collector settings: young collections 140 times rarer.

Evaluating a block allocates tens of thousands of short-lived tuples, lists and records,
nearly all freed at once by reference counting. With CPython's default young threshold
(700 net allocations of tracked objects) the cyclic collector still ran ~10 times per block
of 1,000 transfers, and at 1M accounts, where the state cache keeps taking in new records,
it promoted enough of them to trigger full collections that walk the whole heap: 0.7 ms of
GC per block at 10k accounts and ~2 ms at 1M, against 0.0 and 0.14 ms with this setting
(docs/benchmarks.md, round 7). And they found nothing: the 1,046 collections during the
bench's 120 blocks at 10k freed 0 objects; reference counting frees the ledger's garbage.
Cycles do occur elsewhere, rarely (a failed dial's exception holds its traceback, whose
frames hold the exception), so a rarer young collection delays freeing them until 100,000
tracked objects were allocated; `python_gc_objects_collected_total` in the node's metrics
shows how much they ever hold.

The objects alive at startup (modules, config, genesis) are frozen: they live as long as
the process, and full collections need not walk them.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS_MAX = 100_000  # net allocations of tracked objects between young collections


def tune_gc() -> None:
    """Apply the settings above to this process; call once, when startup is done."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS_MAX, middle, old)
