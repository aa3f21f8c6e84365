"""The replica's rules, one at a time, with a hand-driven cluster (tests/consensus/harness.py)."""

from __future__ import annotations

import pytest

from consensus import events as ev
from consensus import messages as m
from consensus.actions import Broadcast, Persist
from consensus.certificate import verify_certificate
from consensus.config import ReplicaTimeouts
from consensus.encoding import pack
from consensus.replica import HostProtocolError
from tests.consensus.harness import CHAIN_ID, Cluster, batch


def kinds(cluster: Cluster, src: str) -> list[str]:
    return [x.text.split("(")[0] for x in cluster.queue if x.src == src]


def test_normal_case_commits_everywhere_with_a_valid_certificate() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    for name in c.names:
        assert c.height(name) == 1, c.dump()
    assert len({tuple(c.digests(n)) for n in c.names}) == 1
    _, _, _, cert = c.stores["r2"].blocks[0]
    assert verify_certificate(cert, CHAIN_ID, c.validators)
    assert len(cert.commits) >= 3


def test_pipelined_batches_execute_in_sequence_order() -> None:
    c = Cluster()
    for i in range(5):
        c.propose(batch(f"t{i}"))
    # Deliver commits for later sequence numbers first: execution must still be in order.
    c.deliver(lambda x: "COMMIT" not in x.text)
    c.deliver(lambda x: "n=1" not in x.text)
    assert c.height("r1") == 0, c.dump()
    c.deliver()
    for name in c.names:
        assert [s for s, *_ in c.stores[name].blocks] == [1, 2, 3, 4, 5], c.dump()


def test_votes_leave_only_after_their_persist_is_acknowledged() -> None:
    c = Cluster()
    c.auto_persist["r1"] = False
    c.propose(batch("a"))
    c.deliver(lambda x: x.dst == "r1")
    assert "PREPARE" not in kinds(c, "r1"), "PREPARE sent before Persisted"
    assert c.stores["r1"].unacked, "r1 must have asked to persist its vote"
    c.ack_persist("r1")
    assert "PREPARE" in kinds(c, "r1")


def test_primary_does_not_send_pre_prepare_before_persist() -> None:
    c = Cluster()
    c.auto_persist["r0"] = False
    actions = c.replica("r0").step(ev.ProposeBatch(payload=batch("a")))
    assert any(isinstance(a, Persist) for a in actions)
    assert not any(isinstance(a, Broadcast) for a in actions)


def test_restarted_replica_never_prepares_a_conflicting_digest() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver(lambda x: x.dst == "r1" and "PRE-PREPARE" in x.text)
    assert c.replica("r1")._my_prepares[1].digest == m.digest(batch("a"))
    c.crash("r1")
    c.start("r1")
    # The faulty primary signs a second proposal for the same (view, seq).
    other = m.make_pre_prepare(c.keys["r0"], CHAIN_ID, "r0", view=0, seq=1, payload=batch("b"))
    c.queue.clear()
    c.step("r1", ev.MessageReceived(sender="r0", data=m.encode_message(other)))
    assert "PREPARE" not in kinds(c, "r1")
    assert c.replica("r1").counters.get("conflicts_own_vote") == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "undecodable"),
        (pack([99, 1]), "unknown_kind"),
        (pack([2, 0, 1, b"x" * 32]), "bad_shape"),
        (pack([2, 0, 1, b"x" * 31, "r0", b"s" * 64]), "bad_field"),
        (pack([2, 2**63, 1, b"x" * 32, "r0", b"s" * 64]), "out_of_range"),
        (pack([2, 0, 1, b"x" * 32, "mallory", b"s" * 64]), "unknown_replica"),
        (pack([2, 0, 1, b"x" * 32, "r2", b"s" * 64]), "bad_signature"),
    ],
)
def test_byzantine_bytes_are_counted_and_dropped(data: bytes, reason: str) -> None:
    c = Cluster()
    actions = c.step("r1", ev.MessageReceived(sender="r2", data=data))
    assert actions == []
    assert c.replica("r1").counters == {reason: 1}


def test_equivocating_primary_triggers_a_view_change() -> None:
    c = Cluster()
    for payload in (batch("a"), batch("b")):
        pp = m.make_pre_prepare(c.keys["r0"], CHAIN_ID, "r0", view=0, seq=1, payload=payload)
        c.step("r1", ev.MessageReceived(sender="r0", data=m.encode_message(pp)))
    r1 = c.replica("r1")
    assert r1.counters["primary_equivocation"] == 1
    assert r1.view == 1 and not r1.view_active
    assert "VIEW-CHANGE" in kinds(c, "r1")


def test_invalid_proposal_triggers_a_view_change() -> None:
    c = Cluster()
    c.verdict = lambda name, payload: name != "r2"
    c.propose(batch("a"))
    c.deliver(lambda x: x.dst == "r2")
    assert c.replica("r2").counters["invalid_proposal"] == 1
    assert c.replica("r2").view == 1


def test_view_change_after_primary_crash_then_progress_in_the_new_view() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    c.crash("r0")
    for name in ("r1", "r2", "r3"):
        c.step(name, ev.ProposeBatch(payload=batch("b")))  # backups now wait for a request
    for _ in range(12):
        c.tick(names=["r1", "r2", "r3"])
        c.deliver()
    for name in ("r1", "r2", "r3"):
        assert c.replica(name).view == 1 and c.replica(name).view_active, c.dump()
    c.propose(batch("b"), to="r1")
    c.deliver()
    for name in ("r1", "r2", "r3"):
        assert c.height(name) == 2, c.dump()


def test_f_plus_one_view_changes_pull_a_replica_into_the_higher_view() -> None:
    c = Cluster()
    for name in ("r1", "r2"):
        c.replica(name)  # r1 and r2 time out; r3 has no pending work
        c.step(name, ev.ProposeBatch(payload=batch("x")))
    c.tick(11, names=["r1", "r2"])
    c.deliver(lambda x: x.dst == "r3")
    assert c.replica("r3").view == 1, c.dump()


def test_checkpoint_becomes_stable_and_log_is_collected() -> None:
    c = Cluster()
    for i in range(4):
        c.propose(batch(f"t{i}"))
    c.deliver()
    for name in c.names:
        r = c.replica(name)
        assert r.checkpoint_seq == 4, c.dump()
        assert not r._slots and not r._prepared
    assert c.replica("r0").snapshot().checkpoint_seq == 4


def test_lagging_replica_catches_up_by_state_transfer_with_verified_certificates() -> None:
    c = Cluster()
    for i in range(5):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: x.dst != "r3" or "CHECKPOINT" in x.text)
        c.drop(lambda x: x.dst == "r3")
    r3 = c.replica("r3")
    assert r3.checkpoint_seq == 4 and c.height("r3") == 0, c.dump()
    assert c.stores["r3"].fetches[-1].from_seq == 1
    # A tampered block is refused; a correct answer is executed.
    good = c.stores["r0"].blocks
    bad = ev.FetchedBlock(seq=1, payload=good[1][2], certificate=good[0][3])
    c.step("r3", ev.BlocksFetched(blocks=(bad,)))
    assert r3.counters["fetch_certificate_mismatch"] == 1 and c.height("r3") == 0
    c.serve_fetch("r3", "r0")
    assert c.digests("r3") == c.digests("r0")[:4], c.dump()


def test_state_digest_mismatch_halts_loudly() -> None:
    c = Cluster()
    c.stores["r3"].chain = b"\x01" * 32  # r3's application state has diverged
    for i in range(4):
        c.propose(batch(f"t{i}"))
    c.deliver()
    assert c.replica("r3").halted, c.dump()
    assert c.stores["r3"].mismatches and c.stores["r3"].mismatches[0].seq == 4
    before = len(c.queue)
    c.propose(batch("later"))
    c.deliver()
    assert c.replica("r3").counters["halted"] > 0
    assert not [x for x in c.queue[before:] if x.src == "r3"]


def test_propose_is_refused_by_backups_and_when_the_window_is_full() -> None:
    c = Cluster()
    c.step("r1", ev.ProposeBatch(payload=batch("a")))
    assert c.replica("r1").counters["propose_not_primary"] == 1
    c.step("r0", ev.ProposeBatch(payload=b"x" * 2000))
    assert c.replica("r0").counters["propose_batch_too_large"] == 1
    c.step("r0", ev.ProposeBatch(payload=b""))
    assert c.replica("r0").counters["propose_empty"] == 1
    for i in range(9):
        c.step("r0", ev.ProposeBatch(payload=batch(f"t{i}")))
    assert c.replica("r0").counters["propose_window_full"] == 1
    assert not c.replica("r0").can_propose


def test_host_protocol_errors_are_loud() -> None:
    c = Cluster()
    with pytest.raises(HostProtocolError):
        c.replica("r1").step(ev.Executed(seq=1, state_digest=b"\x00" * 32))
    with pytest.raises(HostProtocolError):
        c.replica("r1").step(ev.Persisted(token=5))


def test_future_view_messages_are_bounded_per_sender() -> None:
    c = Cluster()
    r1 = c.replica("r1")
    limit = c.configs["r1"].limits.future_view_messages_per_peer_max
    for seq in range(1, limit + 10):
        vote = m.make_prepare(c.keys["r2"], CHAIN_ID, "r2", view=7, seq=seq, d=b"d" * 32)
        c.step("r1", ev.MessageReceived(sender="r2", data=m.encode_message(vote)))
    assert len(r1._future["r2"]) == limit
    assert r1.counters["future_buffer_full"] == 9
    assert r1.view == 0  # one replica alone cannot move us (R11)


def test_restarted_primary_does_not_reuse_a_sequence_number() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.propose(batch("b"))
    c.queue.clear()  # nobody heard of them
    c.crash("r0")
    c.start("r0")
    assert c.replica("r0").proposed_seq == 2
    c.propose(batch("c"), to="r0")
    assert "n=3" in c.queue[-1].text


def test_restart_in_the_middle_of_a_view_change_resumes_it() -> None:
    c = Cluster()
    c.step("r1", ev.ProposeBatch(payload=batch("x")))
    c.tick(11, names=["r1"])
    assert c.replica("r1").view == 1 and not c.replica("r1").view_active
    c.crash("r1")
    c.start("r1")
    r1 = c.replica("r1")
    assert r1.view == 1 and not r1.view_active
    # It keeps asking for view 1 and accepts nothing from view 0.
    pp = m.make_pre_prepare(c.keys["r0"], CHAIN_ID, "r0", view=0, seq=1, payload=batch("y"))
    c.step("r1", ev.MessageReceived(sender="r0", data=m.encode_message(pp)))
    assert r1.counters["old_view"] == 1
    for name in ("r2", "r3"):
        c.step(name, ev.ProposeBatch(payload=batch("x")))
    c.tick(11, names=["r2", "r3"])
    c.deliver()
    assert all(c.replica(n).view == 1 and c.replica(n).view_active for n in c.names), c.dump()


def test_a_replica_alone_in_a_view_change_waits_instead_of_leapfrogging() -> None:
    c = Cluster()
    c.step("r1", ev.ProposeBatch(payload=batch("x")))
    c.tick(11, names=["r1"])
    assert c.replica("r1").view == 1
    c.tick(500, names=["r1"])  # nobody else is changing view: no timer for view 2
    assert c.replica("r1").view == 1, c.dump()
    for name in ("r2", "r3"):  # once a quorum has left view 0, the timer runs again
        c.step(name, ev.ProposeBatch(payload=batch("x")))
    c.tick(11, names=["r2", "r3"])
    c.crash("r1")  # ... and view 1's primary is gone, so view 2 must follow
    c.deliver()
    c.tick(60, names=["r2", "r3"])
    assert c.replica("r2").view >= 2 and c.replica("r3").view >= 2, c.dump()


def test_a_restarted_replica_with_nothing_pending_keeps_its_view() -> None:
    """Restored pre-prepares the host already executed are done: they must not arm the
    view-change timer, or an idle restarted replica would time out alone into view 1."""
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    assert all(c.height(n) == 1 for n in c.names), c.dump()
    c.crash("r1")
    c.start("r1")
    c.tick(200)
    c.deliver()
    assert all(c.replica(n).view == 0 for n in c.names), c.dump()


def test_state_transfer_past_the_pending_slots_stops_the_view_change_timer() -> None:
    """A replica waiting on a slot that the others committed without it is done waiting once
    it fetched the certified block: its timer must not fire and send it alone into a view
    change while the others stay in the current view (seen in an end-to-end heal test)."""
    c = Cluster()
    c.propose(batch("t0"))
    c.deliver(lambda x: x.dst != "r3" or x.text.startswith("PRE-PREPARE"))
    c.drop(lambda x: x.dst == "r3")
    r3 = c.replica("r3")
    assert r3._deadline is not None and c.height("r3") == 0, c.dump()
    for i in range(1, 4):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: x.dst != "r3" or x.text.startswith("CHECKPOINT"))
        c.drop(lambda x: x.dst == "r3")
    assert r3.checkpoint_seq == 4, c.dump()
    c.serve_fetch("r3", "r0")
    assert c.height("r3") == 4, c.dump()
    c.tick(100, names=["r3"])
    assert r3.view == 0 and r3.view_active, c.dump()
    assert "view_change_timeout" not in r3.counters, c.dump()


def test_blocks_handed_over_during_a_view_change_leave_its_timer_alone() -> None:
    """In a view change, the timer for the next view runs once a quorum is in it (R8) and
    its backoff grows per failed view. Executing old blocks meanwhile (here: a fetched gap
    that releases a block committed earlier) is no reason to stop it: a replica without it
    never gives up on a faulty new primary by itself."""
    c = Cluster()
    c.propose(batch("t0"))
    c.propose(batch("t1"))
    c.drop(lambda x: x.dst == "r3" and x.text.startswith("PRE-PREPARE(v=0, n=1"))
    c.deliver()
    r3 = c.replica("r3")
    assert c.height("r3") == 0 and 2 in r3._committed, c.dump()  # n=2 waits for n=1
    for name in ("r1", "r2"):
        c.step(name, ev.ProposeBatch(payload=b""))
    c.tick(40, names=["r1", "r2", "r3"])
    c.deliver(lambda x: x.dst == "r3" and x.text.startswith("VIEW-CHANGE"))
    c.drop(lambda x: True)
    assert r3.view == 1 and not r3.view_active, c.dump()
    deadline, attempts = r3._deadline, r3._vc_attempts
    assert deadline is not None, c.dump()  # a quorum is in the view change
    c.tick(6, names=["r3"])  # asks for the missing block
    c.serve_fetch("r3", "r0")
    assert c.height("r3") == 2, c.dump()
    assert (r3._deadline, r3._vc_attempts) == (deadline, attempts), c.dump()


def test_a_replica_behind_the_others_does_not_time_out_into_a_view_change() -> None:
    """Its host offers transactions the others already committed (it has not fetched them
    yet): f + 1 COMMITs it could not use say the system is progressing without it. Timing
    out would strand it alone in a later view (seen in an end-to-end heal test)."""
    c = Cluster()
    c.propose(batch("t0"))
    c.deliver(lambda x: x.dst != "r3" or x.text.startswith("COMMIT"))
    c.drop(lambda x: x.dst == "r3")
    r3 = c.replica("r3")
    assert c.height("r3") == 0 and c.height("r1") == 1, c.dump()
    c.step("r3", ev.ProposeBatch(payload=b""))
    c.tick(25, names=["r3"])
    assert r3.view == 0 and r3.view_active, c.dump()
    assert "view_change_timeout" not in r3.counters, c.dump()
    assert r3.counters["view_change_timeout_while_behind"] >= 1, c.dump()


def _retransmitting_cluster() -> Cluster:
    # The node's ratio: votes resent every 500 ms, the view-change timer at 1-2 s.
    return Cluster(
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10, retransmit_interval_ticks=3, fetch_retry_ticks=5
        )
    )


def _run(c: Cluster, ticks: int) -> None:
    for _ in range(ticks):
        c.tick()
        c.deliver()


def test_a_primary_restarted_before_it_saw_its_slot_commit_finishes_it_without_a_view_change() -> (
    None
):
    """Killed after its COMMIT vote but before the others' COMMITs reached it, the primary
    restarts with the slot pending, which arms its timer. The others' resent COMMITs let it
    commit the slot before the timer fires: no view change."""
    c = _retransmitting_cluster()
    c.propose(batch("t0"))
    c.deliver(lambda x: not (x.dst == "r0" and x.text.startswith("COMMIT")))
    c.drop(lambda x: x.dst == "r0")
    assert c.height("r0") == 0 and [c.height(n) for n in ("r1", "r2", "r3")] == [1, 1, 1]
    c.crash("r0")
    c.start("r0")
    r0 = c.replica("r0")
    assert r0._deadline is not None, c.dump()  # the pending slot armed the timer
    _run(c, 30)
    assert c.height("r0") == 1 and c.digests("r0") == c.digests("r1"), c.dump()
    assert all(c.replica(n).view == 0 for n in c.names), c.dump()
    assert "view_change_timeout" not in r0.counters, c.dump()


def test_a_primary_restarted_behind_a_stable_checkpoint_catches_up_without_a_view_change() -> None:
    """As above, but the others made the slot's sequence number a stable checkpoint and
    dropped the slot, so no COMMIT for it comes back. Their resent CHECKPOINTs show the
    restarted primary that the others are ahead (R8: behind is not blocked): it fetches the
    block instead of timing out into a view change alone."""
    c = _retransmitting_cluster()
    for i in range(3):
        c.propose(batch(f"t{i}"))
        c.deliver()
    c.propose(batch("t3"))  # seq 4, the checkpoint (interval 4)
    c.deliver(lambda x: x.dst != "r0" or x.text.startswith("PRE-PREPARE"))
    c.drop(lambda x: x.dst == "r0")
    others = ("r1", "r2", "r3")
    assert c.height("r0") == 3 and [c.height(n) for n in others] == [4, 4, 4], c.dump()
    assert all(c.replica(n).checkpoint_seq == 4 for n in others), c.dump()
    c.crash("r0")
    c.start("r0")
    r0 = c.replica("r0")
    assert r0._deadline is not None, c.dump()
    for _ in range(30):
        _run(c, 1)
        if c.stores["r0"].fetches and c.height("r0") < 4:
            c.serve_fetch("r0", "r1")
    assert c.height("r0") == 4 and c.digests("r0") == c.digests("r1"), c.dump()
    assert all(c.replica(n).view == 0 for n in c.names), c.dump()
    assert "view_change_timeout" not in r0.counters, c.dump()


def test_blocks_beyond_the_stable_checkpoint_are_fetched_from_those_that_committed_them() -> None:
    """The stable checkpoint's signers executed the blocks up to it, not necessarily beyond.
    Here r3's checkpoint proof is r1's, r2's and its own, and r0, r1 and r2 commit seq 5: r3
    asks all three. The old rule asked only the checkpoint's signers. In a simulation seed
    (296, mixed) those were a byzantine replica and a laggard, and the only replica with the
    blocks was never asked."""
    c = Cluster()
    for i in range(4):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: not (x.src == "r0" and x.dst == "r3" and "CHECKPOINT" in x.text))
    c.drop(lambda x: x.src == "r0" and x.dst == "r3")
    r3 = c.replica("r3")
    assert r3.checkpoint_seq == 4 and {n for n, _ in r3._ck_proof} == {"r1", "r2", "r3"}
    c.propose(batch("t4"))
    c.deliver(lambda x: x.dst != "r3" or x.text.startswith("COMMIT"))
    c.drop(lambda x: x.dst == "r3")
    assert c.height("r3") == 4 and c.height("r0") == 5, c.dump()
    c.tick(6, names=["r3"])  # the evidence settles (fetch_retry_ticks)
    fetch = c.stores["r3"].fetches[-1]
    assert (fetch.from_seq, fetch.to_seq) == (5, 5), c.dump()
    assert set(fetch.peers) == {"r0", "r1", "r2"}, fetch
    c.serve_fetch("r3", "r0")
    assert c.height("r3") == 5 and c.digests("r3") == c.digests("r0"), c.dump()
