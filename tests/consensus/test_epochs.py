"""Epochs (consensus/epochs.py, Replica's vote limit, EpochReplica E1-E3), rule by rule.

Replica-level rules use the plain hand-driven cluster (tests/consensus/harness.py); the
EpochReplica rules and the end-to-end switch use tests/consensus/epoch_harness.py, whose toy
ledger derives epochs from its own blocks as the real one does. K = 4, W = 8 throughout, so
a set change committed in block 1 ends epoch 0 at B = 12.
"""

from __future__ import annotations

import dataclasses

import pytest

from consensus import events as ev
from consensus import messages as m
from consensus.actions import Action, Broadcast, Execute, FetchBlocks, Send
from consensus.certificate import CommitCertificate, verify_certificate
from consensus.config import ReplicaConfig
from consensus.epoch_replica import EpochReplica, frame
from consensus.epochs import Epoch, epoch_last_seq, signing_domain
from consensus.replica import EPOCH_FILL_OUTSTANDING_MAX, HostProtocolError, Replica
from consensus.signing import Purpose, verify
from tests.consensus import epoch_harness as eh
from tests.consensus.harness import CHAIN_ID, Cluster, FixedRandom, NodeStore, batch, key

K, W = 4, 8
B = epoch_last_seq(1, checkpoint_interval_seqs=K, log_window_seqs=W)


def test_the_epoch_end_rule() -> None:
    assert B == 12
    # The smallest multiple of K at or after s + W.
    cases = {1: 12, 4: 12, 5: 16, 8: 16, 9: 20}
    for s, end in cases.items():
        assert epoch_last_seq(s, checkpoint_interval_seqs=K, log_window_seqs=W) == end
    assert signing_domain(CHAIN_ID, 0) == CHAIN_ID
    assert signing_domain(CHAIN_ID, 1) != signing_domain(CHAIN_ID, 2)


# ---------------------------------------------------------------------- Replica


class EndingCluster(Cluster):
    """A Cluster whose host ledger committed a set change in block `change_seq`: from that
    block on, every Executed announces the epoch end (the host never switches here)."""

    def __init__(self, change_seq: int = 1) -> None:
        self.change_seq = change_seq
        self.end = epoch_last_seq(change_seq, checkpoint_interval_seqs=K, log_window_seqs=W)
        super().__init__()

    def step(self, name: str, event: ev.Event) -> list[Action]:
        if isinstance(event, ev.Executed) and event.seq >= self.change_seq:
            event = dataclasses.replace(event, epoch_last_seq=self.end)
        return super().step(name, event)


def sent(c: Cluster, src: str, kind: str) -> list[int]:
    """Sequence numbers of `kind` messages `src` has queued."""
    return sorted(
        {
            int(x.text.split("n=")[1].split(",")[0].rstrip(")"))
            for x in c.queue
            if x.src == src and x.text.startswith(kind + "(")
        }
    )


def deliver_pre_prepare(c: Cluster, to: str, seq: int) -> None:
    pp = m.make_pre_prepare(c.keys["r0"], CHAIN_ID, "r0", view=0, seq=seq, payload=batch(f"x{seq}"))
    c.step(to, ev.MessageReceived(sender="r0", data=m.encode_message(pp)))


def test_votes_wait_until_execution_is_within_a_window() -> None:
    """r3 has a stable checkpoint at 4 but executed nothing: it may vote up to 0 + W only."""
    c = Cluster()
    for i in range(4):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: x.dst != "r3" or "CHECKPOINT" in x.text)
        c.drop(lambda x: x.dst == "r3")
    r3 = c.replica("r3")
    assert (r3.checkpoint_seq, r3.executed_seq) == (4, 0), c.dump()
    for i in range(4, 12):
        c.propose(batch(f"t{i}"), to="r0")  # seqs 5..12, inside r3's watermarks (4, 12]
    c.deliver(lambda x: x.dst == "r3" and x.text.startswith("PRE-PREPARE"))
    assert sent(c, "r3", "PREPARE") == [5, 6, 7, 8], c.dump()
    assert r3.counters["vote_deferred"] == 4
    c.serve_fetch("r3", "r0")  # executing 1..4 lifts the limit to 12: the deferred votes go
    assert c.height("r3") == 4
    assert sent(c, "r3", "PREPARE") == list(range(5, 13)), c.dump()
    c.deliver()
    assert all(c.height(n) == 12 for n in c.names), c.dump()


def test_no_proposal_or_vote_beyond_the_epoch_end() -> None:
    c = EndingCluster()
    c.propose(batch("change"))
    c.deliver()
    assert all(c.replica(n).last_seq == B for n in c.names)
    for _ in range(4 * B):  # bounded: a replica that ignored the end would propose forever
        if not c.replica("r0").can_propose:
            break
        c.propose(batch(f"t{c.replica('r0').proposed_seq}"), to="r0")
        c.deliver()
    r0 = c.replica("r0")
    assert r0.proposed_seq == B and all(c.height(n) == B for n in c.names), c.dump()
    assert r0.checkpoint_seq == B  # the watermark would allow B + W ...
    c.step("r0", ev.ProposeBatch(payload=batch("late")))
    assert r0.counters["propose_window_full"] == 1  # ... the epoch end does not
    # A (faulty) pre-prepare beyond B is kept, never voted on, whatever else happens.
    deliver_pre_prepare(c, "r1", B + 1)
    c.tick(30)
    c.deliver()
    r1 = c.replica("r1")
    assert r1.counters["vote_deferred"] == 1 and B + 1 in r1._deferred
    assert sent(c, "r1", "PREPARE") == [], c.dump()
    assert all(c.height(n) == B for n in c.names)


@pytest.mark.parametrize("end", [6, 0, 13])
def test_an_epoch_end_that_is_not_a_checkpoint_at_or_after_the_block_is_loud(end: int) -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    block = c.stores["r0"].blocks[0]
    fresh = Replica(c.configs["r3"], signing_key=c.keys["r3"], rng=FixedRandom())
    fetched = ev.FetchedBlock(seq=1, payload=block[2], certificate=block[3])
    assert any(isinstance(a, Execute) for a in fresh.step(ev.BlocksFetched(blocks=(fetched,))))
    with pytest.raises(HostProtocolError, match="not a checkpoint"):
        fresh.step(ev.Executed(seq=1, state_digest=bytes(32), epoch_last_seq=end))


def test_an_epoch_end_at_a_checkpoint_is_scheduled() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    block = c.stores["r0"].blocks[0]
    fresh = Replica(c.configs["r3"], signing_key=c.keys["r3"], rng=FixedRandom())
    fetched = ev.FetchedBlock(seq=1, payload=block[2], certificate=block[3])
    fresh.step(ev.BlocksFetched(blocks=(fetched,)))
    fresh.step(ev.Executed(seq=1, state_digest=bytes(32), epoch_last_seq=4))
    assert fresh.last_seq == 4 and fresh.counters["epoch_end_scheduled"] == 1


def test_the_primary_closes_an_idle_epoch_with_null_requests() -> None:
    c = EndingCluster()
    c.propose(batch("change"))
    c.deliver()
    r0 = c.replica("r0")
    c.tick(5, names=["r0"])  # nothing delivered: at most EPOCH_FILL_OUTSTANDING_MAX in flight
    assert r0.proposed_seq == 1 + EPOCH_FILL_OUTSTANDING_MAX, c.dump()
    for _ in range(40):
        c.tick(names=["r0"])
        c.deliver()
    assert all(c.height(n) == B for n in c.names), c.dump()
    assert [p for _, _, p, _ in c.stores["r2"].blocks[1:]] == [m.NULL_PAYLOAD] * (B - 1)
    assert r0.counters["epoch_fill_proposed"] == B - 1
    c.tick(50)
    assert r0.proposed_seq == B and not c.queue, c.dump()  # nothing past the epoch end


def test_backups_replace_a_primary_that_does_not_close_the_epoch() -> None:
    c = EndingCluster()
    c.propose(batch("change"))
    c.deliver()
    c.crash("r0")  # the primary of view 0 goes silent: no transactions arrive either
    backups = ["r1", "r2", "r3"]
    for _ in range(60):
        c.tick(names=backups)
        c.deliver()
    for name in backups:
        r = c.replica(name)
        assert r.view == 1 and r.view_active, c.dump()
        assert c.height(name) == B, c.dump()  # r1 closed the epoch with null requests


def test_idle_backups_without_a_pending_epoch_end_keep_their_view() -> None:
    """The control for the test above: no epoch end, no pending work, no view change."""
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    c.crash("r0")
    for _ in range(60):
        c.tick(names=["r1", "r2", "r3"])
        c.deliver()
    assert all(c.replica(n).view == 0 for n in ("r1", "r2", "r3")), c.dump()


def test_restarted_backups_with_a_pending_epoch_end_replace_a_silent_primary() -> None:
    c = EndingCluster()
    c.propose(batch("change"))
    c.deliver()
    c.crash("r0")
    for name in ("r1", "r2", "r3"):  # restarted: the host passes the known end as last_seq
        c.replicas[name] = Replica(
            c.configs[name],
            signing_key=c.keys[name],
            rng=FixedRandom(),
            restored=c.stores[name].persisted,
            executed_seq=c.height(name),
            last_seq=B,
        )
    for _ in range(60):
        c.tick(names=["r1", "r2", "r3"])
        c.deliver()
    assert all(c.replica(n).view >= 1 for n in ("r1", "r2", "r3")), c.dump()


def _add_observer(c: Cluster, config: ReplicaConfig) -> Replica:
    name = config.name
    if name not in c.names:
        c.names.append(name)  # receives every broadcast
    c.stores[name] = NodeStore()
    c.auto_persist[name] = True
    observer = Replica(config, signing_key=key(99), rng=FixedRandom())
    c.replicas[name] = observer
    return observer


@pytest.mark.parametrize("kind", ["outsider", "observe_only"])
def test_an_observer_never_votes_and_follows_by_state_transfer(kind: str) -> None:
    c = Cluster()
    base = c.configs["r0"]
    if kind == "outsider":
        config = dataclasses.replace(base, name="x", observer_ok=True)
    else:  # r3 is in the set but does not hold its key here
        config = dataclasses.replace(base, name="r3", observer_ok=True, observe_only=True)
    observer = _add_observer(c, config)
    name = config.name
    assert not observer.member
    c.step(name, ev.ProposeBatch(payload=batch("x")))
    assert observer.counters["propose_observer"] == 1
    for i in range(5):
        c.propose(batch(f"t{i}"), to="r0")
        c.deliver()
    c.tick(1001, names=[name])  # retransmission time: an observer has nothing to resend
    assert not [x for x in c.queue if x.src == name]
    assert not [line for line in c.trace if line.startswith(f"{name} ->")], c.dump()
    assert c.height(name) == 0 and c.stores[name].fetches, c.dump()
    assert (c.stores[name].fetches[0].from_seq, c.stores[name].fetches[0].to_seq) == (1, 4)
    c.serve_fetch(name, "r0")
    assert c.height(name) >= 4 and c.digests(name) == c.digests("r0")[: c.height(name)]
    assert not [x for x in c.queue if x.src == name], "an observer sent its checkpoint"
    assert all(c.height(n) == 5 for n in ("r0", "r1", "r2"))


def _commit_certificate(c: Cluster, epoch: int, seq: int, payload: bytes) -> CommitCertificate:
    domain = signing_domain(CHAIN_ID, epoch)
    d = m.digest(payload)
    commits = [m.make_commit(c.keys[n], domain, n, view=0, seq=seq, d=d) for n in c.names[:3]]
    return CommitCertificate(
        view=0,
        seq=seq,
        digest=d,
        commits=tuple(sorted((x.replica, x.signature) for x in commits)),
        epoch=epoch,
    )


def test_certificates_carry_their_epoch_and_another_epochs_are_refused() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver()
    _, _, payload, cert = c.stores["r0"].blocks[0]
    assert cert.epoch == 0 and verify_certificate(cert, CHAIN_ID, c.validators, epoch=0)
    assert not verify_certificate(cert, CHAIN_ID, c.validators, epoch=1)
    epoch1 = dataclasses.replace(c.configs["r3"], epoch=1)
    relabelled = dataclasses.replace(cert, epoch=1)  # epoch-0 signatures, epoch 1 claimed
    signed1 = _commit_certificate(c, 1, 1, payload)
    cases = [
        (epoch1, cert, False),
        (epoch1, relabelled, False),
        (epoch1, signed1, True),
        (c.configs["r3"], signed1, False),
        (c.configs["r3"], cert, True),
    ]
    for config, certificate, accepted in cases:
        fresh = Replica(config, signing_key=c.keys["r3"], rng=FixedRandom())
        block = ev.FetchedBlock(seq=1, payload=payload, certificate=certificate)
        actions = fresh.step(ev.BlocksFetched(blocks=(block,)))
        executed = [a for a in actions if isinstance(a, Execute)]
        assert bool(executed) is accepted, (config.epoch, certificate.epoch)
        if not accepted:
            expected = (
                "fetch_other_epoch"
                if certificate.epoch != config.epoch
                else "fetch_bad_certificate"
            )
            assert fresh.counters == {expected: 1}


def test_restored_state_of_another_epoch_is_ignored() -> None:
    c = Cluster()
    c.propose(batch("a"))
    c.deliver(lambda x: x.text.startswith("PRE-PREPARE"))
    state = dataclasses.replace(c.replica("r1").snapshot(), view=3, view_active=False)
    assert state.epoch == 0 and state.prepares
    same = Replica(c.configs["r1"], signing_key=c.keys["r1"], rng=FixedRandom(), restored=state)
    assert (same.view, same.view_active) == (3, False)
    config1 = dataclasses.replace(c.configs["r1"], epoch=1)
    other = Replica(config1, signing_key=c.keys["r1"], rng=FixedRandom(), restored=state)
    assert (other.view, other.view_active) == (0, True)
    assert other.counters == {"restored_state_of_other_epoch": 1}
    assert other.snapshot().epoch == 1 and not other.snapshot().prepares


# ---------------------------------------------------------------------- EpochReplica


def change_set(c: eh.EpochCluster, *txs: bytes, rounds_max: int = 60) -> None:
    """Commit `txs` in block 1 (from v0) and run until every running node is in epoch 1."""
    c.propose(eh.batch(*txs), to="v0")
    c.settle()
    for _ in range(rounds_max):
        if all(c.replica(n).epoch.number == 1 for n in c.up()):
            return
        c.run(1)
    raise AssertionError("the epoch did not switch\n" + c.dump())


def add_v4_remove_v0() -> tuple[bytes, bytes]:
    return eh.gov("add", "v4", eh.public(key(4))), eh.gov("remove", "v0", eh.public(key(0)))


def test_outgoing_frames_carry_the_epoch() -> None:
    c = eh.EpochCluster(4, others=1)
    c.propose(eh.batch(*add_v4_remove_v0()), to="v0")
    assert {x.epoch for x in c.queue} == {0}
    change_set(c)
    c.propose(eh.batch(b"later"), to="v1")
    assert c.queue and {x.epoch for x in c.queue if x.src == "v1"} == {1}
    c.settle()
    assert not c.violations, c.violations  # every message's epoch matched its sender's


def _prepare(signer: int, name: str, epoch: int, seq: int, view: int = 0) -> bytes:
    vote = m.make_prepare(
        key(signer), signing_domain(CHAIN_ID, epoch), name, view=view, seq=seq, d=b"\x42" * 32
    )
    return frame(epoch, m.encode_message(vote))


def test_next_epoch_messages_are_buffered_per_sender_and_replayed_at_the_switch() -> None:
    c = eh.EpochCluster(4)
    v1 = c.replica("v1")
    limit = c.limits.future_view_messages_per_peer_max
    far = B + 100  # outside the new epoch's window: counted when replayed
    for _ in range(limit + 4):
        c.step("v1", ev.MessageReceived(sender="v2", data=_prepare(2, "v2", 1, far)))
    c.step("v1", ev.MessageReceived(sender="v2", data=_prepare(2, "v2", 1, B + 1)))
    c.step("v1", ev.MessageReceived(sender="v3", data=_prepare(3, "v3", 2, B + 1)))  # too far
    assert v1.counters["future_epoch_message"] == limit + 6
    assert v1.counters["future_epoch_buffer_full"] == 5
    assert len(v1._future["v2"]) == limit and "v3" not in v1._future
    change_set(c, eh.gov("rotate", "v3", eh.public(key(3 + eh.ROTATED))))
    new = c.replica("v1").replica
    assert new.epoch == 1
    assert new.counters["outside_window"] == limit - 1  # the newest `limit` were replayed
    assert "v2" in new._slots[B + 1].prepares  # ... and the last one was accepted
    assert not c.replica("v1")._future


def test_an_old_epoch_message_is_answered_with_our_epoch_and_final_checkpoint() -> None:
    c = eh.EpochCluster(4, others=1)
    change_set(c, *add_v4_remove_v0())
    interval = c.timeouts.retransmit_interval_ticks
    c.tick(interval, names=["v1", "v4"])  # forget the answers given during the switch
    before = c.replica("v1").counters["old_epoch_message"]
    old = _prepare(3, "v3", 0, 5)
    out = c.step("v1", ev.MessageReceived(sender="v3", data=old))
    sends = [a for a in out if isinstance(a, Send)]
    assert [a.to for a in sends] == ["v3", "v3"]
    assert sends[0].data == frame(1, b"")  # "we are in epoch 1"
    number, inner = eh.unframe(sends[1].data)
    ck = m.decode_message(inner, limits=m.DecodeLimits(), n=8, window=8)
    assert number == 0 and isinstance(ck, m.Checkpoint)
    assert (ck.seq, ck.replica, ck.state_digest) == (B, "v1", c.nodes["v1"].chain_at(B))
    body = m.checkpoint_body(ck.seq, ck.state_digest)
    assert verify(eh.public(key(1)), ck.signature, Purpose.CHECKPOINT, CHAIN_ID, body)
    # At most once per retransmit interval per sender.
    assert c.step("v1", ev.MessageReceived(sender="v3", data=old)) == []
    assert len([a for a in c.step("v1", ev.MessageReceived(sender="v2", data=old))]) == 2
    c.tick(interval, names=["v1"])
    assert len(c.step("v1", ev.MessageReceived(sender="v3", data=old))) == 2
    # v4 was not in epoch 0: it has no final checkpoint to give, only the hint.
    out = c.step("v4", ev.MessageReceived(sender="v3", data=old))
    assert [a.data for a in out if isinstance(a, Send)] == [frame(1, b"")]
    assert c.replica("v1").counters["old_epoch_message"] == before + 4


def test_one_peer_ahead_starts_a_catch_up_fetch_at_most_once_per_retry_interval() -> None:
    """E3: one authenticated peer in a later epoch is enough (it may hold the only copy of the
    epoch's last certificate); fetched blocks are verified, so a liar costs one fetch."""
    c = eh.EpochCluster(4)
    hint = frame(1, b"")
    c.step("v1", ev.MessageReceived(sender="v2", data=hint))
    c.tick(names=["v1"])
    [fetch] = c.nodes["v1"].fetches
    assert isinstance(fetch, FetchBlocks)
    assert (fetch.from_seq, fetch.peers) == (1, ("v2",))
    c.step("v1", ev.MessageReceived(sender="v3", data=hint))
    c.tick(names=["v1"])
    assert len(c.nodes["v1"].fetches) == 1  # not again before fetch_retry_ticks
    retry = c.replica("v1").replica.config.timeouts.fetch_retry_ticks
    c.tick(retry, names=["v1"])
    assert c.nodes["v1"].fetches[-1].peers == ("v2", "v3")


def test_the_switch_starts_the_new_epoch_at_its_boundary_in_view_0() -> None:
    c = eh.EpochCluster(4, others=1)
    c.propose(eh.batch(*add_v4_remove_v0()), to="v0")
    c.settle()
    c.crash("v0")  # epoch 0 ends in view 1: v1 closes it
    change_set(c)
    for name in ("v1", "v2", "v3", "v4"):
        er = c.replica(name)
        r = er.replica
        assert er.epoch == c.nodes[name].epochs[1]
        assert (er.epoch.first_seq, r.base_seq, r.checkpoint_seq, r.executed_seq) == (
            B + 1,
            B,
            B,
            B,
        )
        assert (r.view, r.view_active, r.last_seq) == (0, True, None)
        assert r._ck_digest == c.nodes[name].chain_at(B)
    assert c.replica("v1").counters["view_entered"] >= 1  # it did change view in epoch 0
    assert c.primary() == "v1"
    c.propose(eh.batch(b"after"), to="v1")
    c.settle()
    assert all(c.nodes[n].height == B + 1 for n in ("v1", "v2", "v3", "v4")), c.dump()


def test_a_removed_validator_is_no_longer_heard() -> None:
    c = eh.EpochCluster(4, others=1)
    change_set(c, *add_v4_remove_v0())
    v1 = c.replica("v1")
    before = v1.counters.get("unknown_replica", 0)
    c.step("v1", ev.MessageReceived(sender="v0", data=_prepare(0, "v0", 1, B + 1)))
    assert v1.counters["unknown_replica"] == before + 1
    assert B + 1 not in v1.replica._slots


def test_after_a_rotation_only_the_new_key_counts() -> None:
    c = eh.EpochCluster(4)
    change_set(c, eh.gov("rotate", "v1", eh.public(key(1 + eh.ROTATED))))
    v2 = c.replica("v2")
    before = v2.counters.get("bad_signature", 0)
    c.step("v2", ev.MessageReceived(sender="v1", data=_prepare(1, "v1", 1, B + 1)))
    assert v2.counters["bad_signature"] == before + 1
    slot = v2.replica._slots.get(B + 1)
    assert slot is None or "v1" not in slot.prepares
    c.step("v2", ev.MessageReceived(sender="v1", data=_prepare(1 + eh.ROTATED, "v1", 1, B + 1)))
    assert v2.counters["bad_signature"] == before + 1
    assert "v1" in v2.replica._slots[B + 1].prepares
    # v1 holds both keys and signs with the new one: blocks of epoch 1 verify with it.
    assert c.replica("v1").member
    c.propose(eh.batch(b"after"), to="v0")
    c.settle()
    block = c.nodes["v3"].blocks[B]
    epoch1 = c.nodes["v3"].epochs[1]
    assert dict(epoch1.validators)["v1"] == eh.public(key(1 + eh.ROTATED))
    assert verify_certificate(block.certificate, CHAIN_ID, epoch1.validators, epoch=1)


def test_a_validator_without_its_key_of_the_epoch_only_observes() -> None:
    rotated = eh.public(key(1 + eh.ROTATED))
    epoch = Epoch(
        number=0,
        first_seq=1,
        validators=(("v1", rotated), *((f"v{i}", eh.public(key(i))) for i in (0, 2, 3))),
    )
    er = EpochReplica(
        chain_id=CHAIN_ID,
        name="v1",
        keys={eh.public(key(1)): key(1)},  # the old key only
        rng=FixedRandom(),
        epoch=epoch,
        base_digest=bytes(32),
        executed_seq=0,
        limits=eh.LIMITS,
        timeouts=eh.TIMEOUTS,
    )
    assert not er.member and not er.is_primary and not er.can_propose
    assert er.replica.primary == "v1"  # it would be the primary...
    assert er.counters["own_key_missing"] == 1
    assert er.step(ev.ProposeBatch(payload=eh.batch(b"x"))) == []  # ... but never proposes
    assert not any(isinstance(a, Broadcast | Send) for a in er.step(ev.Tick()))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00"])
def test_a_frame_without_an_epoch_prefix_is_counted_and_dropped(data: bytes) -> None:
    c = eh.EpochCluster(4)
    v1 = c.replica("v1")
    assert v1.step(ev.MessageReceived(sender="v2", data=data)) == []
    assert v1.counters == {"no_epoch_prefix": 1}


def test_a_far_future_epoch_marks_its_sender_ahead_but_is_not_buffered() -> None:
    c = eh.EpochCluster(4)
    v1 = c.replica("v1")
    far = frame(2**32 - 1, _prepare(2, "v2", 0, 1)[4:])
    assert v1.step(ev.MessageReceived(sender="v2", data=far)) == []
    assert v1.counters == {"future_epoch_message": 1}
    assert not v1._future and set(v1._ahead) == {"v2"}


def test_an_empty_frame_of_our_own_epoch_is_not_counted_as_garbage() -> None:
    c = eh.EpochCluster(4)
    v1 = c.replica("v1")
    assert v1.step(ev.MessageReceived(sender="v2", data=frame(0, b""))) == []
    assert "undecodable" not in v1.counters


# ---------------------------------------------------------------------- end to end


def test_end_to_end_a_changed_set_takes_over_and_keeps_committing() -> None:
    """v4 joins and v0 leaves in one change: v4 follows epoch 0 as an observer, the switch
    happens at B on every node, epoch 1 is ordered by v1..v4 with their certificates."""
    c = eh.EpochCluster(4, others=1)
    assert not c.replica("v4").member
    tokens_before = {n: list(c.nodes[n].tokens) for n in c.names}
    c.propose(eh.batch(b"t0", *add_v4_remove_v0()), to="v0")
    c.settle()
    assert c.epoch_ends == {0: B}
    change_set(c)
    assert all(c.nodes[n].height == B for n in c.names), c.heights()
    members = {n: [s.member for s in c.nodes[n].started] for n in c.names}
    assert members == {"v0": [False], "v1": [True], "v2": [True], "v3": [True], "v4": [True]}
    epoch1 = c.nodes["v1"].started[0].epoch
    assert [name for name, _ in epoch1.validators] == ["v1", "v2", "v3", "v4"]
    # A crash right after the switch: its durable state is still epoch 0's (votes void now).
    c.crash("v2")
    c.start("v2")
    assert c.replica("v2").counters["restored_state_of_other_epoch"] == 1
    for i in range(6):
        c.propose(eh.batch(f"e1-{i}".encode()), to=c.primary())
        c.settle()
    c.run(20)
    live = ["v1", "v2", "v3", "v4"]
    assert all(c.nodes[n].height == B + 6 for n in live), c.heights()
    assert not c.agreement() and not c.violations, (c.agreement(), c.violations)
    for n in live:
        for block in c.nodes[n].blocks:
            epoch = c.nodes[n].epoch_of(block.seq)
            assert block.certificate.epoch == epoch.number
            assert verify_certificate(
                block.certificate, CHAIN_ID, epoch.validators, epoch=epoch.number
            )
    assert "v0" not in dict(c.nodes["v1"].blocks[-1].certificate.commits)
    # Persist tokens went on from the old epoch's replica's (the harness checks each Persist).
    for n in ("v1", "v3", "v4"):
        tokens = c.nodes[n].tokens
        assert tokens == sorted(set(tokens)) and len(tokens) > len(tokens_before[n])
    # v0 (removed) still follows as an observer, and never signs anything of epoch 1.
    assert not c.replica("v0").member
    assert not [x for x in c.queue if x.src == "v0" and x.epoch == 1]


def test_a_replica_that_slept_through_the_switch_catches_up_across_it() -> None:
    c = eh.EpochCluster(4, others=1)
    c.crash("v3")
    change_set(c, eh.gov("add", "v4", eh.public(key(4))))
    for i in range(3):
        c.propose(eh.batch(f"e1-{i}".encode()), to=c.primary())
        c.settle()
    assert c.nodes["v3"].height == 0
    c.start("v3")
    for i in range(3, 8):  # epoch-1 traffic reaches v3: f + 1 peers ahead (E3)
        c.propose(eh.batch(f"e1-{i}".encode()), to=c.primary())
        c.run(10)
    c.run(30)
    assert c.replica("v3").epoch.number == 1, c.dump()
    assert c.nodes["v3"].height == c.nodes["v1"].height == B + 8, c.heights()
    assert not c.agreement() and not c.violations, c.violations


def test_persist_tokens_continue_across_the_switch() -> None:
    """The host acknowledges Persists of the old epoch's replica after the switch: the new
    replica's tokens go on from the old one's, so those acks are neither unknown nor lost."""
    c = eh.EpochCluster(4)
    c.nodes["v1"].auto_persist = False  # v1's disk is slow: nothing acknowledged
    change_set(c, eh.gov("rotate", "v3", eh.public(key(3 + eh.ROTATED))))
    v1 = c.replica("v1")
    old_tokens = [token for token, _ in c.nodes["v1"].unacked]
    assert old_tokens and v1.replica.persist_token == old_tokens[-1]
    c.ack_persist("v1")  # acks for the retired replica's tokens: accepted
    c.nodes["v1"].auto_persist = True
    c.propose(eh.batch(b"after"), to="v0")
    c.settle()
    assert c.nodes["v1"].height == B + 1, c.dump()
    assert c.nodes["v1"].tokens[len(old_tokens)] == old_tokens[-1] + 1
    assert not c.violations, c.violations


def test_a_halted_replica_stays_halted_across_the_switch() -> None:
    """Blocks up to B were handed over (pipelined) before our checkpoint at 4 turned out to
    differ from the stable one; the host then reports executing them, B included."""
    c = eh.EpochCluster(4)
    change_set(c, eh.gov("rotate", "v3", eh.public(key(3 + eh.ROTATED))))
    src = c.nodes["v0"]
    er = EpochReplica(
        chain_id=CHAIN_ID,
        name="v3",
        keys=c.nodes["v3"].keys,
        rng=FixedRandom(),
        epoch=src.epochs[0],
        base_digest=bytes(32),
        executed_seq=0,
        limits=eh.LIMITS,
        timeouts=eh.TIMEOUTS,
    )
    blocks = tuple(
        ev.FetchedBlock(seq=b.seq, payload=b.payload, certificate=b.certificate)
        for b in src.blocks[:B]
    )
    assert sum(isinstance(a, Execute) for a in er.step(ev.BlocksFetched(blocks=blocks))) == B
    for i in range(3):  # checkpoint 4 becomes stable with the others' digest
        ck = m.make_checkpoint(key(i), CHAIN_ID, f"v{i}", 4, src.chain_at(4))
        er.step(ev.MessageReceived(sender=f"v{i}", data=frame(0, m.encode_message(ck))))
    for seq in range(1, B + 1):
        er.step(
            ev.Executed(
                seq=seq,
                state_digest=src.chain_at(seq) if seq < 4 else b"\x66" * 32,  # diverged at 4
                epoch_last_seq=B if seq < B else None,
                next_epoch=src.epochs[1] if seq == B else None,
            )
        )
    assert er.counters["state_digest_mismatch"] == 1
    assert er.halted


def test_a_restarted_laggard_catches_up_across_a_switch_on_an_idle_chain() -> None:
    timeouts = dataclasses.replace(eh.TIMEOUTS, retransmit_interval_ticks=10)
    c = eh.EpochCluster(4, others=1, timeouts=timeouts)
    c.crash("v3")
    change_set(c, eh.gov("add", "v4", eh.public(key(4))))
    c.start("v3")
    c.run(300)
    assert c.nodes["v3"].height == B and c.replica("v3").epoch.number == 1, c.heights()


def test_within_one_epoch_an_idle_laggard_catches_up_by_retransmitted_checkpoints() -> None:
    """The control for the test above: R13 brings it back when no switch is involved."""
    timeouts = dataclasses.replace(eh.TIMEOUTS, retransmit_interval_ticks=10)
    c = eh.EpochCluster(4, timeouts=timeouts)
    c.crash("v3")
    for i in range(B):
        c.propose(eh.batch(f"t{i}".encode()), to="v0")
        c.settle()
    c.start("v3")
    c.run(300)
    assert c.nodes["v3"].height == B, c.heights()


def test_one_crash_right_after_the_switch_does_not_strand_the_others() -> None:
    timeouts = dataclasses.replace(eh.TIMEOUTS, retransmit_interval_ticks=10)
    c = eh.EpochCluster(4, timeouts=timeouts)
    c.propose(eh.batch(eh.gov("rotate", "v3", eh.public(key(3 + eh.ROTATED)))), to="v0")
    c.settle()

    def lost(x: eh.InFlight) -> bool:
        # v1 and v2 miss the COMMITs for B; v3 says nothing in epoch 1 before it crashes.
        late = x.dst in ("v1", "v2") and x.text.startswith(f"e0:COMMIT(v=0, n={B},")
        return late or (x.src == "v3" and x.epoch >= 1)

    for _ in range(60):
        c.tick()
        c.drop(lost)
        c.deliver(lambda x: not lost(x))
        c.drop(lost)
        c.serve_fetches()
        if c.replica("v0").epoch.number == 1:
            break
    assert c.heights() == {"v0": B, "v1": B - 1, "v2": B - 1, "v3": B}, c.dump()
    c.crash("v3")  # the one fault
    c.run(400)
    assert all(c.replica(n).epoch.number == 1 for n in ("v0", "v1", "v2")), c.heights()
    c.propose(eh.batch(b"after"), to=c.primary())
    c.settle()
    assert all(c.nodes[n].height == B + 1 for n in ("v0", "v1", "v2")), c.heights()


def test_the_hosts_reachability_report_carries_across_the_switch() -> None:
    """The host reports changes only (R8b): the new epoch's replica starts from the last."""
    c = eh.EpochCluster(4)
    c.step("v1", ev.PeersReachable(names=frozenset({"v0"})))
    change_set(c, eh.gov("rotate", "v3", eh.public(key(3 + eh.ROTATED))))
    v1 = c.replica("v1")
    assert v1.epoch.number == 1
    assert v1.replica._reachable == frozenset({"v0"}), c.dump()
    assert not v1.replica._quorum_reachable()
    c.step("v1", ev.PeersReachable(names=frozenset({"v0", "v2", "v3"})))
    assert v1.replica._quorum_reachable()
