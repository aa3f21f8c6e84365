"""Named PBFT edge cases, scripted message by message. Each failure prints the trace.

Read them like the paper: who sends what to whom, who crashes, what must hold afterwards.
"""

from __future__ import annotations

from consensus import events as ev
from consensus.config import ReplicaTimeouts
from consensus.encoding import digest
from tests.consensus.harness import Cluster, batch

BACKUPS = ["r1", "r2", "r3"]


def wait_for_request(c: Cluster, names: list[str]) -> None:
    """Clients hand a request to the backups: they now expect the primary to order it."""
    for name in names:
        c.step(name, ev.ProposeBatch(payload=batch("pending")))


def run_until(c: Cluster, cond, *, ticks_max: int = 200, names: list[str] | None = None) -> None:
    for _ in range(ticks_max):
        if cond():
            return
        c.tick(names=names)
        c.deliver()
    assert cond(), c.dump()


def test_primary_crashes_after_pre_prepare_to_a_minority() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()  # block 1 everywhere
    c.propose(batch("b"))
    # The PRE-PREPARE for 2 reaches r1 only; then the primary dies.
    c.deliver(lambda x: x.src == "r0" and x.dst == "r1")
    c.drop(lambda x: x.src == "r0")
    c.crash("r0")
    c.drop(lambda x: True)  # r1's PREPARE is lost too: nothing prepared anywhere
    wait_for_request(c, BACKUPS)
    run_until(c, lambda: all(c.replica(n).view_active and c.replica(n).view == 1 for n in BACKUPS))
    # Not prepared at a quorum, so the new view may fill 2 with anything; it must agree.
    c.propose(batch("c"), to="r1")
    run_until(c, lambda: all(c.height(n) >= 2 for n in BACKUPS))
    assert len({tuple(c.digests(n)) for n in BACKUPS}) == 1, c.dump()


def test_request_prepared_at_a_quorum_survives_the_primary_crash() -> None:
    c = Cluster()
    c.propose(batch("a"))
    # Everyone gets the PRE-PREPARE and the PREPAREs, but every COMMIT is lost.
    c.deliver(lambda x: "COMMIT" not in x.text)
    c.drop(lambda x: "COMMIT" in x.text)
    for n in BACKUPS:
        assert c.replica(n)._prepared, c.dump()
    c.crash("r0")
    wait_for_request(c, BACKUPS)
    run_until(c, lambda: all(c.height(n) == 1 for n in BACKUPS))
    for n in BACKUPS:
        assert c.digests(n) == [digest(batch("a"))], c.dump()
        assert c.replica(n).view == 1


def test_view_change_during_view_change_keeps_prepared_requests() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver(lambda x: "COMMIT" not in x.text)
    c.drop(lambda x: "COMMIT" in x.text)
    c.crash("r0")
    wait_for_request(c, BACKUPS)
    # View 1's primary r1 dies before its NEW-VIEW leaves.
    c.tick(10)
    c.crash("r1")
    c.deliver()
    assert all(c.replica(n).view == 1 and not c.replica(n).view_active for n in ("r2", "r3"))
    ticks_to_second = 0
    while c.replica("r2").view == 1:
        c.tick()
        ticks_to_second += 1
        assert ticks_to_second < 100, c.dump()
    assert ticks_to_second >= 2 * 10, "the view-change timeout must back off"
    # r2 is primary of view 2 and needs a third view change: restart r0 to make a quorum.
    c.start("r0")
    run_until(c, lambda: all(c.height(n) == 1 for n in ("r0", "r2", "r3")))
    for n in ("r0", "r2", "r3"):
        assert c.digests(n) == [digest(batch("a"))], c.dump()
        assert c.replica(n).view == 2 and c.replica(n).view_active


def test_checkpoint_becomes_stable_during_a_view_change() -> None:
    c = Cluster()
    for i in range(4):
        c.propose(batch(f"t{i}"))
    c.deliver(lambda x: "CHECKPOINT" not in x.text)  # blocks 1..4 executed everywhere
    held = [x for x in c.queue if "CHECKPOINT" in x.text and x.src != "r0"]
    c.queue = [x for x in c.queue if x not in held]
    c.crash("r0")
    wait_for_request(c, BACKUPS)
    c.tick(10)  # VIEW-CHANGEs for view 1 are in flight with h = 0
    assert all(c.replica(n).view == 1 and not c.replica(n).view_active for n in BACKUPS)
    assert all(c.replica(n).checkpoint_seq == 0 for n in BACKUPS)
    c.queue = held + c.queue  # the checkpoints arrive in the middle of the view change
    c.deliver()
    for n in BACKUPS:
        r = c.replica(n)
        assert r.checkpoint_seq == 4 and r.view == 1 and r.view_active, c.dump()
    c.propose(batch("after"), to="r1")
    c.deliver()
    for n in BACKUPS:
        assert [s for s, *_ in c.stores[n].blocks] == [1, 2, 3, 4, 5], c.dump()


def test_lagging_replica_with_stale_log_catches_up_and_takes_part() -> None:
    c = Cluster(
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10, retransmit_interval_ticks=3, fetch_retry_ticks=4
        )
    )
    c.propose(batch("first"))
    # r3 gets the first PRE-PREPARE only (a stale log entry), then is cut off.
    c.deliver(lambda x: x.dst != "r3" or "PRE-PREPARE" in x.text)
    cut = lambda x: x.dst == "r3" or x.src == "r3"  # noqa: E731
    c.drop(cut)
    for i in range(9):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: not cut(x))
        c.drop(cut)
    # And a view change it also misses.
    c.crash("r0")
    wait_for_request(c, ["r1", "r2"])
    for _ in range(40):
        c.tick(names=["r1", "r2"])
        c.deliver(lambda x: not cut(x))
        c.drop(cut)
    c.start("r0")
    run_until(c, lambda: all(c.replica(n).view_active for n in ("r0", "r1", "r2")))
    assert c.height("r3") == 0 and c.height("r1") == 10, c.dump()

    # r3 is reconnected: it learns the stable checkpoint, fetches certified blocks, and joins
    # the current view through a forwarded NEW-VIEW.
    def caught_up() -> bool:
        if c.stores["r3"].fetches and c.height("r3") < c.replica("r3").checkpoint_seq:
            c.serve_fetch("r3", "r1")
        return c.height("r3") == c.height("r1") and c.replica("r3").view == c.replica("r1").view

    run_until(c, caught_up, ticks_max=300)
    assert c.digests("r3") == c.digests("r1"), c.dump()
    # It takes part: with r0 down, r3's votes are needed for the next block.
    view = c.replica("r1").view
    primary = c.names[view % 4]
    down = next(n for n in ("r0", "r1", "r2") if n != primary)
    c.crash(down)
    c.propose(batch("needs-r3"), to=primary)
    run_until(c, lambda: c.height("r3") == 11 and c.height(primary) == 11)
