"""A replica that cannot reach a quorum does not time out into a view change (R8b).

Alone, its VIEW-CHANGE could never gather a quorum, and it would commit it to a later view
it cannot leave: after the partition heals it would wait there, out of the others' view,
until they changed view too, leaving them a bare quorum (seen as "Alone in a later view").
The host says which peers it hears from (`PeersReachable`); a replica whose host never says
behaves as before, as if every peer were reachable.
"""

from __future__ import annotations

from consensus import events as ev
from consensus.config import ReplicaTimeouts
from consensus.replica import HostProtocolError
from tests.consensus.harness import Cluster, batch

EVERYONE_ELSE = frozenset({"r0", "r1", "r2"})


def _pending_work(c: Cluster, name: str) -> None:
    """The host holds transactions the primary has not ordered: the R8 timer runs."""
    c.step(name, ev.ProposeBatch(payload=b""))


def _new_primary_fails(c: Cluster, backups: list[str]) -> None:
    """r0 (view 0's primary) crashes, the backups time out into view 1, and r1 (view 1's
    primary) sends no NEW-VIEW: they wait in view 1's view change, its timer running."""
    c.crash("r0")
    for name in backups:
        _pending_work(c, name)
    c.tick(11, names=backups)
    c.drop(lambda x: x.src == "r1" and x.text.startswith("NEW-VIEW"))
    c.deliver(lambda x: x.text.startswith("VIEW-CHANGE"))
    c.drop(lambda x: x.src == "r1")


def test_an_isolated_replica_defers_its_view_change() -> None:
    c = Cluster()
    r3 = c.replica("r3")
    c.step("r3", ev.PeersReachable(names=frozenset()))
    _pending_work(c, "r3")
    c.tick(35, names=["r3"])  # three timeouts' worth
    assert r3.view == 0 and r3.view_active, c.dump()
    assert "view_change_timeout" not in r3.counters, c.dump()
    assert r3.counters["view_change_timeout_isolated"] >= 3, c.dump()
    assert not [x for x in c.queue if x.src == "r3"], c.dump()  # no VIEW-CHANGE sent


def test_after_the_heal_it_catches_up_in_the_view_the_others_kept() -> None:
    """The scenario of "Alone in a later view": the others order the work meanwhile; after
    the heal their retransmitted COMMITs (R13) tell the replica it is behind, it fetches the
    block (R12), and its work is done: it never leaves view 0."""
    c = Cluster(
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10, retransmit_interval_ticks=3, fetch_retry_ticks=5
        )
    )
    r3 = c.replica("r3")
    c.step("r3", ev.PeersReachable(names=frozenset()))
    c.propose(batch("t0"))
    _pending_work(c, "r3")  # its host holds t0 too
    c.deliver(lambda x: x.dst != "r3")
    c.drop(lambda x: x.dst == "r3")  # the partition
    c.tick(25, names=["r3"])
    c.drop(lambda x: True)  # what r3 sent meanwhile was lost as well
    assert r3.view == 0 and r3.view_active and c.height("r3") == 0, c.dump()
    assert c.height("r0") == 1, c.dump()
    c.step("r3", ev.PeersReachable(names=EVERYONE_ELSE))  # the heal
    for _ in range(4):
        c.tick(3)
        c.deliver()
    c.serve_fetch("r3", "r0")
    c.deliver()
    assert c.height("r3") == 1, c.dump()
    assert r3.view == 0 and r3.view_active, c.dump()
    assert "view_change_timeout" not in r3.counters, c.dump()
    assert all(c.replica(n).view == 0 for n in c.names), c.dump()


def test_a_quorum_with_itself_is_enough_to_change_view() -> None:
    """n = 4, f = 1: itself and two others make the quorum of three a NEW-VIEW needs."""
    c = Cluster()
    r3 = c.replica("r3")
    c.step("r3", ev.PeersReachable(names=frozenset({"r1", "r2"})))  # the primary is gone
    _pending_work(c, "r3")
    c.tick(11, names=["r3"])
    assert r3.view == 1 and not r3.view_active, c.dump()
    assert r3.counters["view_change_timeout"] == 1, c.dump()


def test_one_peer_short_of_a_quorum_defers() -> None:
    c = Cluster()
    r3 = c.replica("r3")
    c.step("r3", ev.PeersReachable(names=frozenset({"r0", "r2"})))
    c.step("r3", ev.PeersReachable(names=frozenset({"r2", "mallory"})))  # the latest counts
    _pending_work(c, "r3")
    c.tick(11, names=["r3"])
    assert r3.view == 0, c.dump()  # a name outside the validator set is no vote
    assert r3.counters["view_change_timeout_isolated"] == 1, c.dump()
    # Reachable again: the next expiry changes view.
    c.step("r3", ev.PeersReachable(names=frozenset({"r2", "r1"})))
    c.tick(25, names=["r3"])
    assert r3.view == 1, c.dump()


def test_a_host_that_never_reports_keeps_the_old_behaviour() -> None:
    c = Cluster()
    r3 = c.replica("r3")
    _pending_work(c, "r3")
    c.tick(11, names=["r3"])
    assert r3.view == 1 and r3.counters["view_change_timeout"] == 1, c.dump()


def test_a_malformed_report_is_a_host_protocol_error() -> None:
    c = Cluster()
    for bad in (["r1", "r2"], frozenset({b"r1"})):
        try:
            c.step("r3", ev.PeersReachable(names=bad))  # type: ignore[arg-type]
        except HostProtocolError as exc:
            assert "PeersReachable" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert c.replica("r3").view == 0


def test_in_a_view_change_it_does_not_move_on_alone_but_still_joins() -> None:
    """Isolation only holds back what the replica would do by itself: when the timer of its
    view change expires (the new primary's NEW-VIEW never came) it stays in that view
    change, but f + 1 VIEW-CHANGEs for a later view still make it join (R9), and a report
    cannot stop that. n = 7 (f = 2), so that others can move on without it."""
    c = Cluster(7)
    backups = [f"r{i}" for i in range(1, 7)]
    _new_primary_fails(c, backups)
    r6 = c.replica("r6")
    assert r6.view == 1 and not r6.view_active and r6._deadline is not None, c.dump()
    c.step("r6", ev.PeersReachable(names=frozenset()))
    c.tick(60, names=backups)
    assert r6.view == 1, c.dump()  # its own timer expired: it did not move on alone
    assert r6.counters["view_change_timeout_isolated"] >= 1, c.dump()
    assert all(c.replica(n).view >= 2 for n in ("r2", "r3", "r4", "r5")), c.dump()
    c.deliver(lambda x: x.dst == "r6" and x.text.startswith("VIEW-CHANGE"))
    assert r6.view >= 2, c.dump()  # joined the others (R9) whatever its host reported


def test_after_the_heal_the_timer_starts_over() -> None:
    """The timer ran while the replica could not reach anyone: its next expiry may fall just
    after the heal, before the others could order its work (the primary never got it). So
    the heal gives them a full timeout; only if nothing is done by then does it move on.
    Without this, a replica healed just before its expiry changed view alone (the stranding
    R8b exists to prevent)."""
    c = Cluster(
        timeouts=ReplicaTimeouts(view_change_timeout_ticks=10, retransmit_interval_ticks=1000)
    )
    r3 = c.replica("r3")
    c.step("r3", ev.PeersReachable(names=frozenset()))
    _pending_work(c, "r3")
    c.tick(25, names=["r3"])  # expired, isolated, re-armed: the next expiry is near
    assert r3._deadline is not None and r3._deadline - r3._now <= 13, c.dump()
    c.step("r3", ev.PeersReachable(names=EVERYONE_ELSE))  # the heal
    c.tick(9, names=["r3"])  # less than a full timeout since the heal
    assert r3.view == 0 and r3.view_active, c.dump()
    assert "view_change_timeout" not in r3.counters, c.dump()
    c.tick(5, names=["r3"])  # a full timeout (plus jitter) without progress: the primary's fault
    assert r3.view == 1 and r3.counters["view_change_timeout"] == 1, c.dump()


def test_an_isolated_replica_does_not_blame_the_primary_for_censorship() -> None:
    """R8a too: its oldest transaction waited the request timeout, but alone it could not
    replace the primary anyway. And after the heal: that wait was never the primary's to
    cut short (it could not hear of the transaction), so the wait that blames it starts at
    the heal."""
    c = Cluster(
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10,
            request_timeout_ticks=20,
            retransmit_interval_ticks=1000,
            fetch_retry_ticks=5,
        )
    )
    r3 = c.replica("r3")
    c.step("r3", ev.PeersReachable(names=frozenset({"r0"})))
    c.tick(25, names=["r3"])  # the view is older than the request timeout
    c.step("r3", ev.ProposeBatch(payload=b"", oldest_wait_ticks=30))
    assert r3.view == 0, c.dump()
    assert r3.counters["request_timeout_isolated"] == 1, c.dump()
    c.step("r3", ev.PeersReachable(names=EVERYONE_ELSE))  # the heal
    c.step("r3", ev.ProposeBatch(payload=b"", oldest_wait_ticks=31))
    assert r3.view == 0 and "request_timeout" not in r3.counters, c.dump()
    c.tick(9, names=["r3"])
    c.step("r3", ev.ProposeBatch(payload=b"", oldest_wait_ticks=40))
    assert r3.view == 0, c.dump()
    # Still nothing done a full view-change timeout after the heal: R8 replaces the primary.
    c.tick(5, names=["r3"])
    assert r3.view == 1 and r3.counters["view_change_timeout"] == 1, c.dump()


def test_a_report_that_flaps_faster_than_the_timeout_does_not_hold_the_timer_back() -> None:
    """Only a cut long enough for a timer to have run out in it counts as a heal: a flaky
    link that drops the quorum for a few ticks at a time must not keep postponing a view
    change away from a primary that does nothing."""
    c = Cluster(
        timeouts=ReplicaTimeouts(view_change_timeout_ticks=10, retransmit_interval_ticks=1000)
    )
    r3 = c.replica("r3")
    _pending_work(c, "r3")
    for _ in range(8):  # reachable and cut off in turns, 3 ticks each
        c.step("r3", ev.PeersReachable(names=frozenset()))
        c.tick(3, names=["r3"])
        c.step("r3", ev.PeersReachable(names=EVERYONE_ELSE))
        c.tick(3, names=["r3"])
        if r3.view == 1:
            break
    assert r3.view == 1 and r3.counters["view_change_timeout"] == 1, c.dump()


def test_a_heal_in_a_view_change_leaves_the_new_view_timer_alone() -> None:
    """In a view change the timer waits for the new primary's NEW-VIEW, not for anyone to
    order our work: a heal gives that primary no extra time."""
    c = Cluster()
    _new_primary_fails(c, ["r1", "r2", "r3"])
    r3 = c.replica("r3")
    assert r3.view == 1 and not r3.view_active and r3._deadline is not None, c.dump()
    c.step("r3", ev.PeersReachable(names=frozenset()))
    c.tick(12, names=["r3"])  # cut off for more than a base timeout
    deadline = r3._deadline
    c.step("r3", ev.PeersReachable(names=frozenset({"r1", "r2"})))  # the heal
    assert r3._deadline == deadline, c.dump()
