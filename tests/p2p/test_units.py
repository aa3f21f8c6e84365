"""Send queue, backoff and configuration validation."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from p2p import PeerInfo, TransportLimits, TransportTimeouts
from p2p.backoff import Backoff
from p2p.send_queue import SendQueue


def test_queue_tail_drops_when_full_by_count() -> None:
    queue = SendQueue(messages_max=2, bytes_max=1000)
    assert queue.put_nowait(b"a") and queue.put_nowait(b"b")
    assert not queue.put_nowait(b"c")  # the new one is refused, the old ones kept
    assert queue.take_batch(1000) == [b"a", b"b"]


def test_queue_bounded_by_bytes_but_always_takes_one() -> None:
    queue = SendQueue(messages_max=10, bytes_max=10)
    assert queue.put_nowait(b"x" * 50)  # empty queue: one oversize-for-queue message fits
    assert not queue.put_nowait(b"y")
    queue.take_batch(100)
    assert queue.put_nowait(b"y" * 6) and not queue.put_nowait(b"z" * 5)
    assert queue.queued_bytes == 6


def test_queue_batch_respects_coalesce_bound() -> None:
    queue = SendQueue(messages_max=100, bytes_max=10_000)
    for _ in range(10):
        queue.put_nowait(b"m" * 96)  # 100 bytes each with the record header
    assert len(queue.take_batch(350)) == 3
    assert len(queue.take_batch(1)) == 1  # never stalls on a large head message
    assert len(queue) == 6 and queue.queued_bytes == 6 * 96


async def test_queue_put_wait_is_backpressure() -> None:
    queue = SendQueue(messages_max=1, bytes_max=100)
    queue.put_nowait(b"first")
    done = trio.Event()

    async def producer() -> None:
        await queue.put_wait(b"second")
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert queue.take_batch(100) == [b"first"]
        await done.wait()
    assert queue.take_batch(100) == [b"second"]


async def test_closed_queue_refuses_and_releases_waiters() -> None:
    queue = SendQueue(messages_max=1, bytes_max=100)
    queue.put_nowait(b"first")
    results: list[bool] = []

    async def producer() -> None:
        results.append(await queue.put_wait(b"second"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.close() == 1
    assert results == [False]
    assert not queue.put_nowait(b"third") and len(queue) == 0


def test_backoff_doubles_with_jitter_and_caps() -> None:
    backoff = Backoff(min_ms=100, max_ms=1000, rng=random.Random(7))
    ceilings = [100, 200, 400, 800, 1000, 1000]
    for ceiling in ceilings:
        delay = backoff.next_delay_s() * 1000
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert 50 <= backoff.next_delay_s() * 1000 <= 100


def test_backoff_is_reproducible_from_the_seed() -> None:
    a = Backoff(min_ms=10, max_ms=10_000, rng=random.Random(1))
    b = Backoff(min_ms=10, max_ms=10_000, rng=random.Random(1))
    assert [a.next_delay_s() for _ in range(8)] == [b.next_delay_s() for _ in range(8)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frame_bytes_max": 0},
        {"frame_bytes_max": 1 << 32},
        {"frame_bytes_max": 20},  # cannot carry a message
        {"send_queue_messages_max": -1},
        {"coalesce_bytes_max": 8 << 20},  # above the frame limit
        {"incoming_messages_max": True},
    ],
)
def test_limits_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TransportLimits(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"handshake_timeout_ms": 0},
        {"keepalive_interval_ms": 5000, "peer_dead_after_ms": 5000},
        {"reconnect_backoff_min_ms": 500, "reconnect_backoff_max_ms": 100},
    ],
)
def test_timeouts_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TransportTimeouts(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "public_key": bytes(32), "address": ("h", 1)},
        {"name": "a", "public_key": bytes(31), "address": ("h", 1)},
        {"name": "a", "public_key": bytes(32), "address": ("h", 0)},
        {"name": "a", "public_key": bytes(32), "address": ("", 1)},
    ],
)
def test_peer_info_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PeerInfo(**kwargs)  # type: ignore[arg-type]
