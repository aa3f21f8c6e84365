"""A primary that keeps ordering blocks but never orders one request is replaced (R8a).

The view-change timer measures "no progress at all", so it cannot catch a primary that
censors: every block it orders restarts the timer. PBFT's answer is a per-request timer.
Here the host reports, with every offer, how long the oldest transaction ready at this node
has waited (`ProposeBatch.oldest_wait_ticks`), and the replica blames the primary once that
wait, counted from no earlier than the start of the view, reaches the request timeout.
"""

from __future__ import annotations

import pytest

from consensus import events as ev
from consensus.config import ConfigError, ReplicaTimeouts
from consensus.replica import HostProtocolError
from tests.consensus.harness import Cluster, batch

BACKUPS = ["r1", "r2", "r3"]
REQUEST_TIMEOUT_TICKS = 30


def cluster() -> Cluster:
    return Cluster(
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10,
            request_timeout_ticks=REQUEST_TIMEOUT_TICKS,
            retransmit_interval_ticks=1000,  # off: deliveries are explicit
            fetch_retry_ticks=5,
        )
    )


def offer(c: Cluster, names: list[str], waited_ticks: int) -> None:
    """The hosts of `names` offer work whose oldest ready transaction waited this long."""
    for name in names:
        c.step(name, ev.ProposeBatch(payload=b"", oldest_wait_ticks=waited_ticks))


def order_while_one_waits(
    c: Cluster, *, primary: str, ticks: int, waited_from: int = 0, names: list[str] = BACKUPS
) -> int:
    """Each tick the primary orders a fresh block while one request keeps waiting at the
    backups `names`. Stops early once a backup left the view; returns the ticks run."""
    view = c.replica(primary).view
    for t in range(ticks):
        if any(c.replica(n).view != view for n in names):
            return t
        c.propose(batch(f"v{view}-b{t}"), to=primary)
        c.deliver()
        offer(c, names, waited_from + t)
        c.tick()
        c.deliver()
    return ticks


def settle(c: Cluster, rounds: int = 5) -> None:
    """Deliver the VIEW-CHANGEs and the NEW-VIEW."""
    for _ in range(rounds):
        c.tick()
        c.deliver()


def censor_replaced_in_view_0(c: Cluster) -> None:
    order_while_one_waits(c, primary="r0", ticks=3 * REQUEST_TIMEOUT_TICKS)
    settle(c)
    assert all(c.replica(n).view == 1 and c.replica(n).view_active for n in c.names), c.dump()


def test_a_primary_that_orders_others_but_not_the_waiting_request_is_replaced() -> None:
    c = cluster()
    ran = order_while_one_waits(c, primary="r0", ticks=3 * REQUEST_TIMEOUT_TICKS)
    assert ran <= REQUEST_TIMEOUT_TICKS + 1, c.dump()
    assert c.height("r1") >= REQUEST_TIMEOUT_TICKS - 1, c.dump()  # r0 kept ordering others
    settle(c)
    for name in c.names:
        assert c.replica(name).view == 1 and c.replica(name).view_active, c.dump()
    for name in BACKUPS:
        assert c.replica(name).counters["request_timeout"] == 1, c.dump()
    # The new primary orders the request that waited.
    before = c.height("r2")
    c.propose(batch("the-censored-one"), to="r1")
    c.deliver()
    assert all(c.height(n) == before + 1 for n in c.names), c.dump()


def test_requests_that_are_ordered_in_time_keep_the_view() -> None:
    c = cluster()
    for t in range(4 * REQUEST_TIMEOUT_TICKS):
        c.propose(batch(f"b{t}"), to="r0")
        c.deliver()
        offer(c, BACKUPS, t % (REQUEST_TIMEOUT_TICKS - 1))  # each waits less than the timeout
        c.tick()
        c.deliver()
    for name in c.names:
        r = c.replica(name)
        assert r.view == 0 and r.view_active and "request_timeout" not in r.counters, c.dump()
    assert c.height("r3") == 4 * REQUEST_TIMEOUT_TICKS, c.dump()


def test_the_wait_counts_from_the_start_of_the_view() -> None:
    """A request that waited through view 0 gives the new primary a full timeout."""
    c = cluster()
    censor_replaced_in_view_0(c)
    # The new primary censors too; the request has now waited far longer than the timeout.
    ran = order_while_one_waits(
        c,
        primary="r1",
        ticks=4 * REQUEST_TIMEOUT_TICKS,
        waited_from=2 * REQUEST_TIMEOUT_TICKS,
        names=["r0", "r2", "r3"],
    )
    # Not at once, and not one by one: the wait already spanned a timeout when view 1 began,
    # so every backup (r0 too, the old primary, which blamed nobody) waits twice as long
    # in view 1, and they give up together.
    assert 2 * REQUEST_TIMEOUT_TICKS - 6 <= ran <= 2 * REQUEST_TIMEOUT_TICKS + 1, c.dump()
    settle(c)
    for name in ("r0", "r2", "r3"):
        assert c.replica(name).view == 2 and c.replica(name).view_active, c.dump()
    assert [c.replica(n).counters["request_timeout"] for n in ("r0", "r2", "r3")] == [1, 2, 2]


def test_a_fresh_wait_gets_the_base_timeout_again() -> None:
    c = cluster()
    censor_replaced_in_view_0(c)
    # That request was ordered; one that starts waiting now is blamed after one timeout,
    # not two: the doubling is about the wait, not about the views before.
    backups = ["r0", "r2", "r3"]
    ran = order_while_one_waits(c, primary="r1", ticks=4 * REQUEST_TIMEOUT_TICKS, names=backups)
    assert ran <= REQUEST_TIMEOUT_TICKS + 1, c.dump()


def test_a_replica_that_is_catching_up_does_not_blame_the_primary() -> None:
    """Behind the others, a replica's oldest transactions may sit in blocks it has not
    fetched yet: their age says nothing about the primary."""
    c = cluster()
    c.tick(2 * REQUEST_TIMEOUT_TICKS)  # nothing pending: the view is old, no timer runs
    c.propose(batch("t0"))
    c.deliver(lambda x: x.dst != "r3")
    c.drop(lambda x: x.dst == "r3")
    for i in range(1, 4):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: x.dst != "r3" or x.text.startswith("CHECKPOINT"))
        c.drop(lambda x: x.dst == "r3")
    r3 = c.replica("r3")
    assert r3.checkpoint_seq == 4 and c.height("r3") == 0, c.dump()
    waited = 2 * REQUEST_TIMEOUT_TICKS  # since the start of the view
    offer(c, ["r3"], waited)
    assert r3.view == 0 and "request_timeout" not in r3.counters, c.dump()
    assert r3.counters["request_wait_while_behind"] == 1, c.dump()
    # Caught up, the same wait is the primary's doing.
    c.serve_fetch("r3", "r0")
    assert c.height("r3") == 4, c.dump()
    offer(c, ["r3"], waited)
    assert r3.view == 1 and r3.counters["request_timeout"] == 1, c.dump()


def test_a_replica_whose_host_has_not_applied_its_blocks_does_not_blame() -> None:
    """Blocks handed over but not yet applied (no Executed back) may hold the oldest
    transactions: the host's pool still has them until it applies the blocks."""
    c = cluster()
    c.tick(2 * REQUEST_TIMEOUT_TICKS)
    c.hold_executed.add("r1")
    c.propose(batch("t0"))
    c.deliver()
    r1 = c.replica("r1")
    assert c.height("r1") == 1 and r1.executed_seq == 0, c.dump()
    offer(c, ["r1"], 2 * REQUEST_TIMEOUT_TICKS)
    assert r1.view == 0 and r1.counters["request_wait_while_behind"] == 1, c.dump()
    c.release_executed("r1")
    offer(c, ["r1"], 2 * REQUEST_TIMEOUT_TICKS)
    assert r1.counters["request_timeout"] == 1, c.dump()


def test_a_restarted_replica_does_not_blame_for_a_wait_older_than_itself() -> None:
    """Just restarted, a replica cannot tell how many primaries a long wait already spanned:
    it allows for them (the doubling), so it does not give up alone before the others."""
    c = cluster()
    c.tick(REQUEST_TIMEOUT_TICKS + 5)  # r1's view (its life, after a restart) began this long ago
    # The wait began 4 timeouts before that view: doubled twice, the limit is 4 timeouts.
    ran = order_while_one_waits(
        c, primary="r0", ticks=8 * REQUEST_TIMEOUT_TICKS, waited_from=150, names=["r1"]
    )
    assert 4 * REQUEST_TIMEOUT_TICKS - 36 <= ran <= 4 * REQUEST_TIMEOUT_TICKS - 34, c.dump()
    assert c.replica("r1").counters["request_timeout"] == 1, c.dump()


def test_the_primary_ignores_the_wait_of_its_own_offers() -> None:
    c = cluster()
    c.tick(2 * REQUEST_TIMEOUT_TICKS)
    c.step("r0", ev.ProposeBatch(payload=batch("a"), oldest_wait_ticks=5 * REQUEST_TIMEOUT_TICKS))
    assert c.replica("r0").view == 0 and c.replica("r0").proposed_seq == 1, c.dump()


def test_a_negative_wait_is_a_host_protocol_error() -> None:
    c = cluster()
    with pytest.raises(HostProtocolError):
        c.replica("r1").step(ev.ProposeBatch(payload=b"", oldest_wait_ticks=-1))


def test_the_request_timeout_is_not_below_the_view_change_timeout() -> None:
    with pytest.raises(ConfigError, match="request_timeout_ticks"):
        ReplicaTimeouts(view_change_timeout_ticks=40, request_timeout_ticks=39)
