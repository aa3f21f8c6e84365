"""A replica restarted at a checkpoint re-signs it (R7, R13), so the window can move again.

Its CHECKPOINT is soft state: only an Executed makes one. Restarted at height n (n mod K = 0)
above the stable checkpoint, it used to have none to resend, so with one replica silent the
other two honest ones could never collect q matching CHECKPOINTs for n: the low watermark
stayed put, the window (R3) was full, no primary could order seq n + 1, and view changes
followed one another forever (simulation seed 230195, scenario byzantine: v2 silent, v1
restarted at height 12 with the stable checkpoint at 4). The host now says the state digest
of its last block (`executed_digest`), and the replica rebuilds its vote from it.
"""

from __future__ import annotations

from consensus.config import ReplicaTimeouts
from tests.consensus.harness import Cluster, InFlight, batch


def _lost(x: InFlight) -> bool:
    """Every CHECKPOINT to or from r2 while it orders the window."""
    return "r2" in (x.src, x.dst) and x.text.startswith("CHECKPOINT")


def _fill_the_window(c: Cluster) -> None:
    """r3 is down (the one faulty replica); r0, r1, r2 order seqs 1..8 = the whole window
    above the genesis checkpoint, and every CHECKPOINT to or from r2 is lost."""
    c.crash("r3")
    for i in range(8):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: not _lost(x))
        c.drop(_lost)
    assert all(c.height(n) == 8 for n in ("r0", "r1", "r2")), c.dump()
    assert all(c.replica(n).checkpoint_seq == 0 for n in ("r0", "r1", "r2")), c.dump()
    assert not c.replica("r0").can_propose, c.dump()  # the window is full


def _cluster() -> Cluster:
    return Cluster(
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=100, retransmit_interval_ticks=3, fetch_retry_ticks=5
        )
    )


def test_a_replica_restarted_at_a_checkpoint_resends_it_and_the_window_moves() -> None:
    c = _cluster()
    _fill_the_window(c)
    c.crash("r2")
    c.start("r2")  # from its store: height 8, stable checkpoint still 0
    r2 = c.replica("r2")
    assert r2.own_checkpoint(8) is not None, c.dump()
    for _ in range(3):
        c.tick(3)
        c.deliver()
    assert all(c.replica(n).checkpoint_seq == 8 for n in ("r0", "r1", "r2")), c.dump()
    assert c.replica("r0").can_propose, c.dump()
    c.propose(batch("t8"))
    c.deliver()
    assert all(c.height(n) == 9 for n in ("r0", "r1", "r2")), c.dump()
    assert all(c.replica(n).view == 0 for n in ("r0", "r1", "r2")), c.dump()


def test_its_rebuilt_vote_counts_with_the_others_it_already_holds() -> None:
    """Restarted, it receives the two CHECKPOINT(8)s before it ever resends its own: with its
    own vote it has the quorum at once."""
    c = _cluster()
    _fill_the_window(c)
    c.crash("r2")
    c.start("r2")
    c.tick(3, names=["r0", "r1"])  # r0 and r1 resend their CHECKPOINT(8) (R13)
    c.deliver(lambda x: x.dst == "r2" and x.text.startswith("CHECKPOINT(n=8"))
    assert c.replica("r2").checkpoint_seq == 8, c.dump()


def test_no_vote_is_rebuilt_off_a_checkpoint() -> None:
    c = _cluster()
    c.crash("r3")
    for i in range(6):
        c.propose(batch(f"t{i}"))
        c.deliver()
    assert c.replica("r2").checkpoint_seq == 4, c.dump()
    c.crash("r2")
    c.start("r2")  # height 6: no checkpoint there
    r2 = c.replica("r2")
    assert r2.own_checkpoint(4) is None and r2.own_checkpoint(6) is None, c.dump()
    c.tick(3, names=["r2"])
    sent: list[InFlight] = [x for x in c.queue if x.src == "r2"]
    assert not [x for x in sent if x.text.startswith("CHECKPOINT")], c.dump()
