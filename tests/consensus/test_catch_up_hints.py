"""A "later epoch" hint that state transfer never confirms stops holding back view changes.

E3 lets one authenticated peer say it is in a later epoch: we fetch blocks from it (one peer
is enough, it may hold the only copy of an epoch's last certificate). Until now the hint
also counted as "behind" for R8 and R8a for as long as the peer kept sending it, so one
byzantine validator, the primary say, could keep every honest replica from ever replacing
it. Now:

- a hint from fewer than f + 1 members says "behind" for the settle time plus
  BEHIND_EVIDENCE_FETCH_ROUNDS fetch rounds from when its run of hints began (a pause of
  more than a fetch retry interval starts a new run), and fetched blocks do not renew it: a
  byzantine primary can hand out real certified blocks (it withholds a pre-prepare from one
  backup, the others certify the block), so they prove nothing about the hint;
- a hint from f + 1 members (one of them honest: we really are an epoch behind) is evidence
  like f + 1 COMMITs, renewed by every block state transfer delivers;
- fetching goes on either way, and whenever our stable checkpoint or f + 1 COMMITs name
  peers, they are asked as well as the hinting peers, never replaced by them.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus import events as ev
from consensus.config import ReplicaLimits, ReplicaTimeouts
from consensus.epoch_replica import frame
from consensus.replica import BEHIND_EVIDENCE_FETCH_ROUNDS
from tests.consensus import epoch_harness as eh
from tests.consensus.harness import Cluster, batch

BACKUPS = ["v1", "v2", "v3"]
# The settle time and the fetch rounds, with room to spare for the view change itself.
HINT_CREDIBLE_TICKS = eh.TIMEOUTS.fetch_retry_ticks * (1 + BEHIND_EVIDENCE_FETCH_ROUNDS)
ENOUGH_TICKS = HINT_CREDIBLE_TICKS + 6 * eh.TIMEOUTS.view_change_timeout_ticks
# R8a's request timeout is the R8 timeout, and the primary's progress keeps R8 quiet.
R8A_ONLY = ReplicaTimeouts(
    view_change_timeout_ticks=20,
    request_timeout_ticks=20,
    retransmit_interval_ticks=1000,
    fetch_retry_ticks=5,
)


def test_a_byzantine_primarys_epoch_hints_do_not_keep_it_in_office() -> None:
    """v0 orders nothing and tells everyone, every tick, that it is in epoch 1."""
    c = eh.EpochCluster(4)
    c.crash("v0")  # silent but for the hints below
    for name in BACKUPS:
        c.step(name, ev.ProposeBatch(payload=b""))  # their hosts hold work v0 never orders
    for _ in range(ENOUGH_TICKS):
        for name in BACKUPS:
            c.step(name, ev.MessageReceived(sender="v0", data=frame(1, b"")))
        c.tick(names=BACKUPS)
        c.settle()
    for name in BACKUPS:
        r = c.replica(name)
        assert r.replica.view >= 1 and r.replica.view_active, c.dump()
        assert r.counters["view_change_timeout_while_behind"] >= 1, c.dump()  # hint tried first
        assert r.counters["fetch_requested"] >= BEHIND_EVIDENCE_FETCH_ROUNDS, c.dump()
    c.propose(eh.batch(b"work"), to=c.primary())
    c.settle()
    assert all(c.nodes[name].height == 1 for name in BACKUPS), c.dump()


def test_hints_alone_do_not_defer_a_censorship_timeout_forever() -> None:
    """R8a: r0 orders every batch but one transaction r1's host holds, and keeps telling r1
    it is in a later epoch. The progress restarts the R8 timer, so only R8a can blame r0; the
    hint delays that only for the bounded number of fetch rounds."""
    c = Cluster(timeouts=R8A_ONLY)
    r1 = c.replica("r1")
    for tick in range(200):
        c.step("r1", ev.CatchUp(target_seq=r1.handed_seq + 64, peers=("r0",)))
        c.step("r1", ev.ProposeBatch(payload=b"", oldest_wait_ticks=tick))  # censored since 0
        if r1.view > 0:
            break
        if tick % 5 == 0:  # r0 orders everything else
            c.propose(batch(f"other{tick}"))
            c.deliver()
        c.tick(names=["r1"])
        c.stores["r1"].fetches.clear()  # r0 never answers a fetch
    assert r1.view == 1 and r1.counters["request_timeout"] == 1, c.dump()
    assert "view_change_timeout" not in r1.counters, c.dump()  # progress kept R8 quiet
    assert r1.counters["request_wait_while_behind"] >= 1, c.dump()  # the hint was honoured
    assert c.height("r1") >= 3, c.dump()


def test_a_hint_whose_fetches_keep_delivering_keeps_deferring() -> None:
    """Honest case, unchanged: f + 1 members are in a later epoch, so we really are behind,
    and a slow state transfer (each fetch answered with one block of the 64 asked) keeps
    the hint credible for as long as blocks keep arriving, however long it takes."""
    blocks = 12
    c = Cluster(
        limits=ReplicaLimits(checkpoint_interval_seqs=4, log_window_seqs=8, fetch_blocks_max=64),
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10, retransmit_interval_ticks=1000, fetch_retry_ticks=5
        ),
    )
    for i in range(blocks):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: x.dst != "r3")
    c.drop(lambda x: x.dst == "r3")
    assert c.height("r0") == blocks and c.height("r3") == 0, c.dump()
    r3 = c.replica("r3")
    ticks = served_at = 0
    while c.height("r3") < blocks:
        ticks += 1
        assert ticks < 40 * blocks, c.dump()
        # What EpochReplica sends while a peer is in a later epoch: a target that moves on.
        c.step("r3", ev.CatchUp(target_seq=r3.handed_seq + 64, peers=("r0", "r1")))
        c.step("r3", ev.ProposeBatch(payload=b""))  # its host holds work: the R8 timer runs
        c.tick(names=["r3"])
        fetches = c.stores["r3"].fetches
        # One block every other fetch round: slower than the R8 timeout.
        if fetches and ticks - served_at >= 2 * 5:
            seq, _, payload, certificate = c.stores["r0"].blocks[fetches[-1].from_seq - 1]
            one = ev.FetchedBlock(seq=seq, payload=payload, certificate=certificate)
            c.step("r3", ev.BlocksFetched(blocks=(one,)))
            served_at = ticks
        fetches.clear()
    assert ticks > HINT_CREDIBLE_TICKS, "the transfer must outlast one credible window"
    assert r3.view == 0 and r3.view_active, c.dump()
    assert "view_change_timeout" not in r3.counters, c.dump()
    assert c.digests("r3") == c.digests("r0"), c.dump()


def _pre_prepare_to(victim: str) -> Callable[[eh.InFlight], bool]:
    return lambda x: x.dst == victim and x.src == "v0" and "PRE-PREPARE" in x.text


def test_a_byzantine_primary_feeding_real_blocks_does_not_renew_its_own_hint() -> None:
    """The primary withholds each pre-prepare from one honest backup in turn (the other two
    certify the block with it), serves that backup's fetch with the real block, and tells
    everyone it is in epoch 1. Blocks keep arriving by state transfer, but one member's
    hint is not renewed by them, so R8a replaces the primary that censors a transaction."""
    c = eh.EpochCluster(4)
    turn = 0
    for tick in range(1500):
        for name in BACKUPS:
            c.step(name, ev.MessageReceived(sender="v0", data=frame(1, b"")))
            c.step(name, ev.ProposeBatch(payload=b"", oldest_wait_ticks=tick))  # censored
        if all(c.replica(name).replica.view >= 1 for name in BACKUPS):
            break
        if tick % 5 == 0:
            victim = BACKUPS[turn % len(BACKUPS)]
            turn += 1
            c.propose(eh.batch(f"other{tick}".encode()), to="v0")
            c.drop(_pre_prepare_to(victim))
        c.tick()
        c.settle()  # serves the victims' fetches (v0 answers them)
    for name in BACKUPS:
        assert c.replica(name).replica.view >= 1, c.dump()
        assert c.nodes[name].height >= 30, c.dump()  # the others' blocks did arrive
    # At R8a's own timeout: the hint had expired long before, and the blocks did not renew it.
    assert tick == eh.TIMEOUTS.request_timeout_ticks, c.dump()


def test_a_hint_does_not_narrow_state_transfer_to_the_hinting_peer() -> None:
    """r3 missed blocks 1-6 but saw the checkpoint at 4 become stable, so it knows whom to
    ask (its signers). A byzantine r1 that keeps hinting "later epoch" and never answers
    must not become the only peer it asks."""
    c = Cluster(
        limits=ReplicaLimits(checkpoint_interval_seqs=4, log_window_seqs=8, fetch_blocks_max=64),
        timeouts=ReplicaTimeouts(
            view_change_timeout_ticks=10, retransmit_interval_ticks=1000, fetch_retry_ticks=5
        ),
    )
    for i in range(6):
        c.propose(batch(f"t{i}"))
        c.deliver(lambda x: x.dst != "r3" or "COMMIT" in x.text or "CHECKPOINT" in x.text)
    c.drop(lambda x: x.dst == "r3")
    r3 = c.replica("r3")
    assert (c.height("r3"), r3.checkpoint_seq) == (0, 4), c.dump()
    for _ in range(30):
        c.step("r3", ev.CatchUp(target_seq=r3.handed_seq + 64, peers=("r1",)))
        c.tick(names=["r3"])
    fetches = c.stores["r3"].fetches
    assert fetches and all(set(f.peers) - {"r1"} for f in fetches), c.dump()
    c.serve_fetch("r3", next(p for p in fetches[-1].peers if p != "r1"))
    assert c.height("r3") == 6 and c.digests("r3") == c.digests("r0"), c.dump()


def test_a_primary_ordering_past_each_hints_target_does_not_restart_it() -> None:
    """The hint's target is `fetch_blocks_max` past what we handed over. A censoring primary
    that orders that many blocks a tick reaches every target, which clears the hint; hinting
    again at once must not count as a new hint with a fresh window (it did, every tick)."""
    blocks_per_tick = 2
    c = Cluster(
        limits=ReplicaLimits(
            checkpoint_interval_seqs=4, log_window_seqs=8, fetch_blocks_max=blocks_per_tick
        ),
        timeouts=R8A_ONLY,
    )
    r1 = c.replica("r1")
    blocks = 0
    for tick in range(60):
        c.step("r1", ev.CatchUp(target_seq=r1.handed_seq + blocks_per_tick, peers=("r0",)))
        c.step("r1", ev.ProposeBatch(payload=b"", oldest_wait_ticks=tick))  # censored
        if r1.view > 0:
            break
        for _ in range(blocks_per_tick):  # everything else, ordered at once
            blocks += 1
            c.propose(batch(f"other{blocks}"))
            c.deliver()
        c.tick(names=["r1"])
        c.stores["r1"].fetches.clear()
    assert r1.view == 1 and r1.counters["request_timeout"] == 1, c.dump()
    assert r1.counters["request_wait_while_behind"] >= 1, c.dump()  # the first window counted
    assert c.height("r1") >= 2 * blocks_per_tick, c.dump()
