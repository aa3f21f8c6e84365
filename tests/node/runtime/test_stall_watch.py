"""The driver's stall watch: a gap between ticks long enough to mean this node itself was
not running (SIGSTOP, a paused VM, a starved loop) restarts the mempool's waits (R8a)."""

from __future__ import annotations

from node.runtime.driver import STALL_MS_MIN, STALL_TICKS, StallWatch


def test_a_gap_of_many_ticks_is_a_stall_and_ordinary_jitter_is_not() -> None:
    watch = StallWatch(tick_interval_ms=200)
    assert watch.threshold_ms == STALL_TICKS * 200
    assert watch.stalled_ms(10_000) is None  # the first tick has nothing to compare with
    assert watch.stalled_ms(10_250) is None
    assert watch.stalled_ms(10_250 + 2_000) is None  # exactly the threshold: not yet
    assert watch.stalled_ms(12_250 + 2_001) == 2_001
    assert watch.stalled_ms(14_451 + 200) is None  # measured from the last tick, not the first


def test_short_ticks_still_allow_a_second_of_jitter() -> None:
    watch = StallWatch(tick_interval_ms=20)
    assert watch.threshold_ms == STALL_MS_MIN
    watch.stalled_ms(0)
    assert watch.stalled_ms(900) is None
    assert watch.stalled_ms(900 + STALL_MS_MIN + 1) == STALL_MS_MIN + 1
