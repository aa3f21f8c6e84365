"""The PBFT replica: a sans-I/O state machine (Castro & Liskov, OSDI'99 / TOCS'02).

Rules (numbered so that tests, docs and comments can point at them):

 R1  n validators in a fixed order; f = (n - 1) // 3; quorum q = 2f + 1 (for n = 3f + 1).
     The primary of view v is validators[v mod n].
 R2  Every consensus message is Ed25519-signed with a purpose tag and the chain id
     (consensus.signing); a message whose signature, signer, view or sequence number does
     not check out is dropped and counted in `counters[reason]`. Untrusted input never
     raises; a broken internal invariant does (AssertionError / HostProtocolError).
 R3  Watermarks: only sequence numbers in (h, h + log_window_seqs] are accepted, where h is
     the last stable checkpoint.
 R4  Normal case. The primary assigns the next sequence number to a batch and broadcasts
     PRE-PREPARE(v, n, d, payload). A backup accepts it if it has no other pre-prepare for
     (v, n), asks the host to validate the payload, and if valid broadcasts PREPARE(v, n, d).
     (v, n, d) is *prepared* at a replica with the pre-prepare and q - 1 matching PREPAREs
     from other replicas; it then broadcasts COMMIT(v, n, d). It is *committed* with q
     matching COMMITs; those signatures form the CommitCertificate.
 R5  Execution is strictly in sequence order: Execute(n) is emitted once n is committed and
     every n' < n was handed to the host (or fetched by state transfer).
 R6  Persistence: a PRE-PREPARE, PREPARE, COMMIT, VIEW-CHANGE or NEW-VIEW leaves only after
     the Persist covering it is acknowledged (see consensus.actions). A replica votes at most
     once per (view, seq), and restarted from its persisted state it remembers those votes.
 R7  Checkpoints. After executing n with n mod K == 0 a replica broadcasts CHECKPOINT(n, state
     digest). q matching CHECKPOINTs make it stable: h moves to n and the log below is
     discarded. If our own digest at n differs from a stable checkpoint, the replica halts
     (stops voting) and emits StateDigestMismatch.
 R8  View change. A backup with pending work (an accepted pre-prepare not yet executed, or a
     batch offered by its host) that sees no execution progress for the timeout moves to
     v + 1: it stops accepting normal-case messages of v and broadcasts VIEW-CHANGE(v + 1)
     carrying its stable checkpoint proof and its prepared certificates above it. The timer
     for v + 2 starts only once a quorum has left v (their VIEW-CHANGEs are for v + 1 or
     later); it doubles for every consecutive failed view (capped). An invalid proposal or an
     equivocating primary also starts a view change.
 R8a Censorship. Progress restarts the R8 timer, so a primary that orders everything but one
     request is caught by the host's offers instead: a backup whose host reports that its
     oldest ready transaction has waited the request timeout (counted from no earlier than
     the start of the view; doubled for each timeout the wait already spanned when the view
     began) moves to v + 1, unless it is behind the others (state transfer pending).
 R8b Isolation. A replica whose host reports (PeersReachable) that it hears fewer than q - 1
     other validators does not start a view change when the R8/R8a timer expires, nor move on
     to the next view when its view change's timer expires; it re-arms the timer. Its
     VIEW-CHANGE could not gather a quorum, and would commit it to a view the others, still
     progressing, may never take: after the heal it stays in the others' view and catches up
     (R12). At the heal, after a cut of at least one base timeout, its R8 timer gets one
     base timeout more and R8a's wait counts from the heal: the others could not order work
     they never heard of. It still joins (R9) and follows NEW-VIEW (R10) whatever the
     report says.
 R9  A replica that has valid VIEW-CHANGEs for views above its own from f + 1 others joins
     the smallest view among them (one slow replica cannot hold the others back, and f
     faulty ones cannot push anyone forward).
 R10 The primary of v, holding q valid VIEW-CHANGEs for v, broadcasts NEW-VIEW(v) with them
     and pre-prepares for the set computed by consensus.view_change.plan_new_view. Every
     replica recomputes that set and accepts the NEW-VIEW only if it matches (R2). NEW-VIEW is
     self-certifying: a replica already in view v answers a VIEW-CHANGE for v or lower with
     its NEW-VIEW, so a replica that missed it catches up.
 R11 Messages of a future view are verified and buffered (bounded per sender), replayed when
     that view becomes active. Valid future-view messages from f + 1 replicas start a view
     change (that is how a replica that slept through one learns of it).
 R12 State transfer. A replica whose stable checkpoint is above what it executed asks the
     host to FetchBlocks; every fetched block must come with a valid commit certificate for
     exactly that (seq, digest) before it is executed.
 R13 Retransmission. Every retransmit interval a replica resends its own votes for the open
     window (or its VIEW-CHANGE) and its latest checkpoint. Receivers drop exact duplicates
     before verifying anything.

Theory of operation. `step(event)` runs one handler to completion and returns actions in the
order the host must perform them. Within a step, attesting messages are queued; at the end,
if any persisted field changed, one Persist(token, snapshot) is emitted and the queued
messages are released only when Persisted(token) arrives (R6). Everything that is not part of
PersistedState (others' votes, buffers, timers) is soft state rebuilt after a restart by
retransmission (R13), view change (R8-R10) and state transfer (R12).
"""

from __future__ import annotations

from collections import deque
from typing import Literal, Protocol, TypeVar

import nacl.signing

from consensus import messages as msg
from consensus.actions import (
    Action,
    Broadcast,
    EquivocationDetected,
    Execute,
    FetchBlocks,
    Persist,
    Send,
    StateDigestMismatch,
    ValidateProposal,
    ViewChanged,
)
from consensus.certificate import CommitCertificate, certificate_problem
from consensus.config import ReplicaConfig
from consensus.encoding import DecodeLimits, digest
from consensus.epochs import signing_domain
from consensus.events import (
    BlocksFetched,
    CatchUp,
    Event,
    Executed,
    MessageReceived,
    PeersReachable,
    Persisted,
    ProposalValidated,
    ProposeBatch,
    Tick,
)
from consensus.evidence import evidence_form
from consensus.log import Slot
from consensus.signing import Purpose
from consensus.state import PersistedState, VoteRecord
from consensus.verifier import Verifier
from consensus.view_change import (
    checkpoint_proof_problem,
    find_payload,
    plan_new_view,
    primary_of,
    view_change_problem,
)

RETRANSMIT_HELD_BATCHES_MAX = 4  # bound on held (unpersisted) message batches from resends
EPOCH_FILL_OUTSTANDING_MAX = 2  # null requests in flight while the primary closes an epoch
EVIDENCE_REPORTED_MAX = 1024  # (validator, kind, view, seq) already reported, per epoch
# Fetch rounds (after the settle time) for which COMMIT evidence alone says we are behind (R8).
BEHIND_EVIDENCE_FETCH_ROUNDS = 4
HintUse = Literal["always", "if_credible", "never"]  # see Replica._fetch_target


_Vote = TypeVar("_Vote", msg.Prepare, msg.Commit)


class RandomSource(Protocol):
    def random(self) -> float: ...
    def randrange(self, start: int, stop: int | None = ..., step: int = ...) -> int: ...


class HostProtocolError(RuntimeError):
    """The host broke the step() contract (e.g. Executed out of order). Our bug: loud."""


class Replica:
    # Test-only hooks for the simulator's planted-bug negative controls. Production code never
    # changes them; tests/simulation/bugs.py subclasses Replica to flip them.
    _quorum_shrink = 0  # planted bug: use a quorum smaller by this much
    _check_prepared_proofs = True  # planted bug: accept unproven prepared claims
    _gate_attesting = True  # planted bug: send votes before they are persisted

    def __init__(
        self,
        config: ReplicaConfig,
        *,
        signing_key: nacl.signing.SigningKey,
        rng: RandomSource,
        restored: PersistedState | None = None,
        executed_seq: int = 0,
        executed_digest: bytes | None = None,
        base: tuple[int, bytes] | None = None,
        last_seq: int | None = None,
        persist_token: int = 0,
    ) -> None:
        """`executed_digest` is the state digest after block `executed_seq` (None: unknown);
        `base` is the epoch's starting checkpoint (the last block of the previous epoch and
        the state digest after it; None for epoch 0); `last_seq` the epoch's end if already
        known (a validator-set change is pending); `persist_token` the previous epoch's
        replica's last Persist token, so the host's acknowledgements stay one sequence."""
        keys = dict(config.validators)
        self.member = config.member
        if self.member and bytes(signing_key.verify_key) != keys[config.name]:
            raise ValueError(f"signing key does not match validator {config.name}")
        base_seq, base_digest = base if base is not None else (0, msg.GENESIS_STATE_DIGEST)
        if executed_seq < base_seq:
            raise ValueError(f"executed_seq {executed_seq} is below the epoch start {base_seq}")
        self.config = config
        self.name = config.name
        self.epoch = config.epoch
        self.base_seq = base_seq
        self.last_seq = last_seq
        self._key = signing_key
        self._rng = rng
        self._chain = signing_domain(config.chain_id, config.epoch)
        self._names = tuple(name for name, _ in config.validators)
        self._peers = tuple(n for n in self._names if n != self.name)
        self._members = frozenset(self._peers)  # whose word counts towards f + 1
        self._f = config.f
        self._q = config.quorum - self._quorum_shrink
        self._k = config.limits.checkpoint_interval_seqs
        self._window = config.limits.log_window_seqs
        self._verifier = Verifier(
            self._chain,
            config.validators,
            config.limits.verify_cache_entries_max,
            base_seq=base_seq,
            base_digest=base_digest,
        )
        self._decode_limits = DecodeLimits(
            buffer_bytes_max=config.limits.message_bytes_max,
            bin_bytes_max=config.limits.message_bytes_max,
            array_items_max=max(1024, 4 * self._window * config.n),
        )
        self.counters: dict[str, int] = {}

        # -- persisted (R6) --
        self.view = 0
        self.view_active = True
        self._vc_attempts = 0
        self.checkpoint_seq = base_seq
        self._ck_digest = base_digest
        self._ck_proof: tuple[msg.Signer, ...] = ()
        self._my_pps: dict[int, msg.PrePrepare] = {}
        self._my_prepares: dict[int, VoteRecord] = {}
        self._my_commits: dict[int, VoteRecord] = {}
        self._prepared: dict[int, tuple[msg.PreparedProof, bytes]] = {}

        # -- soft state --
        self._slots: dict[int, Slot] = {}
        self._next_seq = base_seq + 1
        self.executed_seq = executed_seq  # acknowledged by Executed
        self._handed_seq = executed_seq  # Execute emitted
        self._committed: dict[int, tuple[bytes, CommitCertificate]] = {}
        self._own_checkpoints: dict[int, bytes] = {}
        self._ck_votes: dict[int, dict[str, msg.Checkpoint]] = {}
        self._vc_latest: dict[str, msg.ViewChange] = {}
        self._last_new_view: msg.NewView | None = None
        self._nv_replied: dict[str, int] = {}
        self._future: dict[str, deque[msg.PrePrepare | msg.Prepare | msg.Commit]] = {}
        self._future_views: dict[str, int] = {}
        self._now = 0
        self._deadline: int | None = None  # view-change timer (R8)
        # Peers the host hears from (R8b); None until it says: then every peer counts.
        self._reachable: frozenset[str] | None = None
        self._work_offered = False  # host offered a batch while we are a backup
        self._view_since = 0  # tick the current view became active here (R8a)
        self._healed_at = 0  # tick our host last reported a quorum reachable again (R8b)
        self._cut_at = 0  # tick it last reported a quorum out of reach (R8b)
        self._last_retransmit = 0
        self._fetch_asked_at: int | None = None
        self._fetch_progress_at = 0  # tick state transfer last handed over a block
        self._commit_evidence: dict[int, tuple[int, set[str]]] = {}
        self._catch_up: tuple[int, tuple[str, ...]] | None = None  # (target, peers) from CatchUp
        self._catch_up_since = 0  # tick the current run of CatchUp hints began
        self._catch_up_last: int | None = None  # tick of the last CatchUp
        self._reported: set[tuple[str, str, int, int]] = set()
        self._deferred: set[int] = set()  # slots waiting for the vote limit to move up
        self.halted = False

        # -- persistence gate (R6) --
        self._token = persist_token
        self._acked = persist_token
        self._dirty = False
        self._gated: deque[tuple[int, list[Action]]] = deque()
        self._out: list[Action] = []
        self._attest: list[Action] = []

        if restored is not None and restored.epoch != config.epoch:
            # Votes of an epoch that has ended: every block of it is executed, so they can
            # never matter again (a restart right after the epoch switch lands here).
            self._count("restored_state_of_other_epoch")
        elif restored is not None:
            self._restore(restored)
        if executed_digest is not None:
            self._restore_own_checkpoint(executed_seq, executed_digest)
        if (
            last_seq is not None
            and self.member
            and self.view_active
            and executed_seq < last_seq
            and self._deadline is None
        ):
            self._deadline = self._timeout()  # closing the epoch is pending work (R8)

    # ---------------------------------------------------------------- public properties

    @property
    def primary(self) -> str:
        return primary_of(self.view, self._names)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.name

    @property
    def can_propose(self) -> bool:
        """True if a ProposeBatch now would be accepted (primary, active view, window room)."""
        return (
            not self.halted
            and self.view_active
            and self.is_primary
            and self._next_seq <= self._vote_limit()
        )

    @property
    def proposed_seq(self) -> int:
        """Highest sequence number assigned so far (as primary, or by a NEW-VIEW)."""
        return self._next_seq - 1

    def own_checkpoint(self, seq: int) -> bytes | None:
        """Our encoded CHECKPOINT for `seq` if we executed it as a member (else None)."""
        state_digest = self._own_checkpoints.get(seq)
        if state_digest is None or not self.member:
            return None
        ck = msg.make_checkpoint(self._key, self._chain, self.name, seq, state_digest)
        return msg.encode_message(ck)

    @property
    def persist_token(self) -> int:
        """The newest Persist token handed out."""
        return self._token

    @property
    def handed_seq(self) -> int:
        """Highest sequence number handed to the host with Execute."""
        return self._handed_seq

    # ---------------------------------------------------------------- step

    def step(self, event: Event) -> list[Action]:
        """Process one event to completion; return the actions for the host, in order."""
        self._out = []
        self._attest = []
        if self.halted and not isinstance(event, Persisted):
            self._count("halted")
            return []
        if isinstance(event, MessageReceived):
            self._on_message(event)
        elif isinstance(event, Tick):
            self._on_tick()
        elif isinstance(event, ProposeBatch):
            self._on_propose(event)
        elif isinstance(event, ProposalValidated):
            self._on_validated(event)
        elif isinstance(event, Persisted):
            self._on_persisted(event)
        elif isinstance(event, Executed):
            self._on_executed(event)
        elif isinstance(event, BlocksFetched):
            self._on_blocks_fetched(event)
        elif isinstance(event, CatchUp):
            self._on_catch_up(event)
        elif isinstance(event, PeersReachable):
            self._on_peers_reachable(event)
        else:
            raise HostProtocolError(f"unknown event {event!r}")
        self._flush()
        return self._out

    def snapshot(self) -> PersistedState:
        prepared = sorted(self._prepared.items())
        return PersistedState(
            view=self.view,
            view_active=self.view_active,
            view_change_attempts=self._vc_attempts,
            checkpoint_seq=self.checkpoint_seq,
            checkpoint_digest=self._ck_digest,
            checkpoint_proof=self._ck_proof,
            pre_prepares=tuple(pp for _, pp in sorted(self._my_pps.items())),
            prepares=tuple(v for _, v in sorted(self._my_prepares.items())),
            commits=tuple(v for _, v in sorted(self._my_commits.items())),
            prepared=tuple(p for _, (p, _) in prepared),
            prepared_payloads=tuple(payload for _, (_, payload) in prepared),
            epoch=self.epoch,
        )

    # ---------------------------------------------------------------- plumbing

    def _count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _flush(self) -> None:
        if self._dirty:
            self._dirty = False
            self._token += 1
            self._out.append(Persist(token=self._token, state=self.snapshot()))
        if not self._attest:
            return
        if self._token > self._acked and self._gate_attesting:
            # The newest Persist covers every vote queued so far: release with its ack.
            self._gated.append((self._token, self._attest))
        else:
            self._out.extend(self._attest)
        self._attest = []

    def _on_persisted(self, event: Persisted) -> None:
        if event.token > self._token:
            raise HostProtocolError(f"Persisted({event.token}) was never asked for")
        self._acked = max(self._acked, event.token)
        while self._gated and self._gated[0][0] <= self._acked:
            self._out.extend(self._gated.popleft()[1])

    def _broadcast_attesting(self, m: msg.Message) -> None:
        self._attest.append(Broadcast(data=msg.encode_message(m)))

    def _send_attesting(self, to: str, m: msg.Message) -> None:
        self._attest.append(Send(to=to, data=msg.encode_message(m)))

    def _in_window(self, seq: int) -> bool:
        return self.checkpoint_seq < seq <= self.checkpoint_seq + self._window

    def _vote_limit(self) -> int:
        """The highest sequence number we may vote on (or propose) now.

        Besides the watermark (R3): never more than a window beyond what we executed, so a
        vote for seq always comes from a replica that executed every block up to seq - W and
        therefore knows whether the epoch ends before seq (consensus.epochs); and never past
        the epoch's last block once that is known."""
        limit = min(self.checkpoint_seq, self.executed_seq) + self._window
        if self.last_seq is not None:
            limit = min(limit, self.last_seq)
        return limit

    def _timeout(self) -> int:
        """View-change timeout: doubles per failed view (capped), plus up to a quarter of the
        base as jitter from the injected generator, so replicas that started waiting
        together do not all give up on the same tick."""
        base = self.config.timeouts.view_change_timeout_ticks
        backoff = base << min(self._vc_attempts, self.config.timeouts.view_change_backoff_max)
        return backoff + self._rng.randrange(0, base // 4 + 1)

    def _arm_timer(self) -> None:
        if self._deadline is None:
            self._deadline = self._now + self._timeout()

    # ---------------------------------------------------------------- messages (R2)

    def _on_message(self, event: MessageReceived) -> None:
        if len(event.data) > self.config.limits.message_bytes_max:
            self._count("message_too_large")
            return
        try:
            m = msg.decode_message(
                event.data, limits=self._decode_limits, n=self.config.n, window=self._window
            )
        except msg.MessageError as exc:
            self._count(exc.reason)
            return
        if m.replica not in self._verifier.keys:
            self._count("unknown_replica")
            return
        if m.replica == self.name:
            self._count("own_message")  # a replay of ours, or a twin
            return
        self._dispatch(m)

    def _dispatch(self, m: msg.Message) -> None:
        if not self.member:
            # An observer only follows: stable checkpoints and COMMITs tell it what to fetch.
            if isinstance(m, msg.Checkpoint):
                self.on_checkpoint(m)
            elif isinstance(m, msg.Commit) and m.seq > self._handed_seq:
                self._note_commit_evidence(m)
            else:
                self._count("observer_ignored")
            return
        if isinstance(m, msg.PrePrepare):
            self.on_pre_prepare(m)
        elif isinstance(m, msg.Prepare):
            self.on_prepare(m)
        elif isinstance(m, msg.Commit):
            self.on_commit(m)
        elif isinstance(m, msg.Checkpoint):
            self.on_checkpoint(m)
        elif isinstance(m, msg.ViewChange):
            self.on_view_change(m)
        else:
            self.on_new_view(m)

    def _normal_case_filter(self, m: msg.PrePrepare | msg.Prepare | msg.Commit) -> bool:
        """Common checks for view-scoped messages; buffers future ones (R11)."""
        if m.view < self.view:
            self._count("old_view")
            return False
        if m.view > self.view or not self.view_active:
            self._buffer_future(m)
            return False
        if not self._in_window(m.seq):
            self._count("outside_window")
            return False
        return True

    def _verify_vote(self, m: msg.PrePrepare | msg.Prepare | msg.Commit) -> bool:
        purpose = (
            Purpose.PRE_PREPARE
            if isinstance(m, msg.PrePrepare)
            else Purpose.PREPARE
            if isinstance(m, msg.Prepare)
            else Purpose.COMMIT
        )
        return self._verifier.check(
            purpose, m.replica, msg.vote_body(m.view, m.seq, m.digest), m.signature
        )

    def _buffer_future(self, m: msg.PrePrepare | msg.Prepare | msg.Commit) -> None:
        if not self._verify_vote(m):
            self._count("bad_signature")
            return
        queue = self._future.setdefault(m.replica, deque())
        if len(queue) >= self.config.limits.future_view_messages_per_peer_max:
            queue.popleft()
            self._count("future_buffer_full")
        queue.append(m)
        self._count("future_buffered")
        if m.view > self.view:
            self._future_views[m.replica] = max(self._future_views.get(m.replica, 0), m.view)
            ahead = [v for v in self._future_views.values() if v > self.view]
            if len(ahead) >= self._f + 1 and self.view_active:
                # R11: f + 1 replicas are in a later view; we slept through a view change.
                self._start_view_change(self.view + 1)

    def _replay_future(self) -> None:
        replay: list[msg.Message] = []
        for queue in self._future.values():
            keep = deque(m for m in queue if m.view > self.view)
            replay.extend(m for m in queue if m.view == self.view)
            queue.clear()
            queue.extend(keep)
        self._future_views = {r: v for r, v in self._future_views.items() if v > self.view}
        for m in replay:
            self._dispatch(m)

    # ---------------------------------------------------------------- normal case (R4)

    def _on_propose(self, event: ProposeBatch) -> None:
        waited = event.oldest_wait_ticks
        if not isinstance(waited, int) or isinstance(waited, bool) or waited < 0:
            raise HostProtocolError(f"oldest_wait_ticks must be a non-negative int, not {waited!r}")
        if not self.member:
            self._count("propose_observer")
            return
        if not self.is_primary or not self.view_active:
            self._count("propose_not_primary")
            if self.view_active:
                # PBFT's "backup waiting for a request": if the primary never orders it,
                # the timer fires and we change view (R8).
                self._work_offered = True
                self._arm_timer()
                self._check_request_wait(waited)
            return
        if not event.payload:
            self._count("propose_empty")  # the empty payload is reserved for null requests
            return
        if len(event.payload) > self.config.limits.batch_bytes_max:
            self._count("propose_batch_too_large")
            return
        if self._next_seq > self._vote_limit():
            self._count("propose_window_full")
            return
        self._pre_prepare(event.payload)

    def _check_request_wait(self, waited: int) -> None:
        """R8a: the oldest transaction ready at our host has waited `waited` ticks. Progress
        restarts the R8 timer, so only this catches a primary that orders everything else.

        The wait counts from no earlier than the start of this view, or the last heal (R8b):
        a new primary gets a full timeout, and so does one that could not hear us. The
        timeout doubles for each earlier timeout the same wait already spans when this view
        began or the heal came (capped like R8's backoff), so an overloaded honest primary
        is not replaced over and over. That doubling is read off the wait itself, not
        remembered, so every replica holding the transaction (the old primary, one that
        joined the view late or restarted) reaches the same limit, and they give up together
        rather than one alone (a replica just healed reaches it later: it waits, harmlessly).
        Not while we are behind: our oldest transactions may be in blocks we have not
        fetched, or not yet applied."""
        base = self.config.timeouts.request_timeout_ticks
        in_view = self._now - max(self._view_since, self._healed_at)
        if waited < base or in_view < base:
            return
        before_view = max(0, waited - in_view)  # the wait when this view began
        # floor(log2(1 + before_view / base)): 0 for a fresh wait, 1 after one timeout, ...
        doublings = (before_view // base + 1).bit_length() - 1
        limit = base << min(doublings, self.config.timeouts.view_change_backoff_max)
        if min(waited, in_view) < limit:
            return
        # The stable checkpoint and every COMMIT target, credible or not: R8a has no timer
        # that execution progress restarts, so between two rounds of a slow state transfer it
        # would fire alone. A CatchUp hint only while credible: one byzantine peer can
        # repeat it forever (`_hint_credible`).
        behind = self._handed_seq < self._fetch_target(hint="if_credible")
        if behind or self.executed_seq < self._handed_seq:
            # Blocks not fetched yet, or handed over and not yet applied by the host: the
            # oldest transactions may be in them.
            self._count("request_wait_while_behind")
            return
        if not self._quorum_reachable():
            self._count("request_timeout_isolated")  # R8b
            return
        self._count("request_timeout")
        self._start_view_change(self.view + 1)

    def _pre_prepare(self, payload: bytes) -> None:
        seq = self._next_seq
        self._next_seq += 1
        pp = msg.make_pre_prepare(
            self._key, self._chain, self.name, view=self.view, seq=seq, payload=payload
        )
        assert seq not in self._my_pps, "primary reused a sequence number"
        self._my_pps[seq] = pp
        self._dirty = True
        slot = self._slots.setdefault(seq, Slot())
        slot.pre_prepare = pp
        slot.validated = True
        self._arm_timer()
        self._broadcast_attesting(pp)
        self._progress(seq)

    def on_pre_prepare(self, m: msg.PrePrepare) -> None:
        if not self._normal_case_filter(m):
            return
        if m.replica != self.primary:
            self._count("pre_prepare_not_from_primary")
            return
        slot = self._slots.setdefault(m.seq, Slot())
        if (
            slot.pre_prepare is not None
            and slot.pre_prepare.signature == m.signature
            and slot.pre_prepare.digest == m.digest
        ):
            self._count("duplicate")
            return
        if len(m.payload) > self.config.limits.batch_bytes_max:
            self._count("batch_too_large")
            return
        if digest(m.payload) != m.digest:
            self._count("payload_digest_mismatch")
            return
        if not self._verify_vote(m):
            self._count("bad_signature")
            return
        if slot.pre_prepare is not None:
            if slot.pre_prepare.digest == m.digest:
                self._count("duplicate")  # same proposal, another valid signature
                return
            # Two signed pre-prepares for one (view, seq): proof the primary is faulty.
            self._count("primary_equivocation")
            self._report(slot.pre_prepare, m)
            self._start_view_change(self.view + 1)
            return
        mine = self._my_prepares.get(m.seq)
        if mine is not None and mine.view == self.view and mine.digest != m.digest:
            self._count("conflicts_own_vote")
            return
        slot.pre_prepare = m
        self._arm_timer()
        if mine is not None and mine.view == self.view:
            slot.validated = True  # we validated it before a restart
        elif m.digest == msg.NULL_DIGEST:
            slot.validated = True  # a null request (from a NEW-VIEW) has nothing to check
        elif not slot.validation_requested:
            slot.validation_requested = True
            self._out.append(
                ValidateProposal(view=m.view, seq=m.seq, digest=m.digest, payload=m.payload)
            )
        self._progress(m.seq)

    def _on_validated(self, event: ProposalValidated) -> None:
        slot = self._slots.get(event.seq)
        if (
            event.view != self.view
            or not self.view_active
            or slot is None
            or slot.digest != event.digest
        ):
            self._count("stale_validation")
            return
        if not event.valid:
            # R8: an invalid proposal is evidence against the primary.
            self._count("invalid_proposal")
            self._start_view_change(self.view + 1)
            return
        slot.validated = True
        self._progress(event.seq)

    def on_prepare(self, m: msg.Prepare) -> None:
        if not self._normal_case_filter(m):
            return
        if m.replica == self.primary:
            self._count("prepare_from_primary")
            return
        self._record_vote(self._slots.setdefault(m.seq, Slot()).prepares, m)

    def on_commit(self, m: msg.Commit) -> None:
        if m.seq > self._handed_seq:
            slot = self._slots.get(m.seq)
            if (
                m.view != self.view
                or not self.view_active
                or not self._in_window(m.seq)
                or slot is None
                or slot.pre_prepare is None
            ):
                self._note_commit_evidence(m)
        if not self._normal_case_filter(m):
            return
        self._record_vote(self._slots.setdefault(m.seq, Slot()).commits, m)

    def _record_vote(self, votes: dict[str, _Vote], m: _Vote) -> None:
        """Add a PREPARE or COMMIT to its slot's votes: once per replica, signature checked."""
        old = votes.get(m.replica)
        if old is not None:
            self._on_repeated_vote(old, m)
            return
        if not self._verify_vote(m):
            self._count("bad_signature")
            return
        votes[m.replica] = m
        self._progress(m.seq)

    def _on_repeated_vote(self, old: msg.Prepare | msg.Commit, m: msg.Prepare | msg.Commit) -> None:
        if old.digest == m.digest:
            self._count("duplicate")
            return
        self._count("conflicting_vote")
        if self._verify_vote(m):
            self._report(old, m)

    def _report(self, first: msg.Message, second: msg.Message) -> None:
        """Both messages are verified and conflict: hand the proof to the host, once."""
        assert isinstance(first, msg.PrePrepare | msg.Prepare | msg.Commit | msg.Checkpoint)
        kind = type(first).__name__
        view = 0 if isinstance(first, msg.Checkpoint) else first.view
        key = (first.replica, kind, view, first.seq)
        if key in self._reported:
            return
        if len(self._reported) >= EVIDENCE_REPORTED_MAX:
            self._reported.clear()
        self._reported.add(key)
        self._count("equivocation_reported")
        self._out.append(
            EquivocationDetected(
                epoch=self.epoch,
                validator=first.replica,
                first=msg.encode_message(evidence_form(first)),
                second=msg.encode_message(evidence_form(second)),
            )
        )

    def _progress(self, seq: int) -> None:
        """Advance one slot as far as its votes allow (R4), then execute (R5)."""
        slot = self._slots.get(seq)
        if slot is None or slot.pre_prepare is None or not slot.validated:
            return
        if seq > self._vote_limit():
            # Kept: voted on once execution catches up (_resume_deferred).
            self._count("vote_deferred")
            self._deferred.add(seq)
            return
        pp = slot.pre_prepare
        if not self.is_primary and not slot.prepare_sent:
            slot.prepare_sent = True
            self._my_prepares[seq] = VoteRecord(view=self.view, seq=seq, digest=pp.digest)
            self._dirty = True
            mine = msg.make_prepare(
                self._key, self._chain, self.name, view=self.view, seq=seq, d=pp.digest
            )
            slot.prepares[self.name] = mine
            self._broadcast_attesting(mine)
        if not slot.prepared:
            prepares = slot.matching_prepares(self.primary)
            if len(prepares) < self._q - 1:
                return
            slot.prepared = True
            proof = msg.PreparedProof(
                view=self.view,
                seq=seq,
                digest=pp.digest,
                pre_prepare_signature=pp.signature,
                prepares=tuple(sorted((p.replica, p.signature) for p in prepares)),
            )
            self._prepared[seq] = (proof, pp.payload)
            self._dirty = True
        if not slot.commit_sent:
            slot.commit_sent = True
            self._my_commits[seq] = VoteRecord(view=self.view, seq=seq, digest=pp.digest)
            self._dirty = True
            mine_c = msg.make_commit(
                self._key, self._chain, self.name, view=self.view, seq=seq, d=pp.digest
            )
            slot.commits[self.name] = mine_c
            self._broadcast_attesting(mine_c)
        if slot.committed:
            return
        commits = slot.matching_commits()
        if len(commits) < self._q:
            return
        slot.committed = True
        if seq <= self._handed_seq:
            return  # re-committed in a new view; already executed
        cert = CommitCertificate(
            view=self.view,
            seq=seq,
            digest=pp.digest,
            commits=tuple(sorted((c.replica, c.signature) for c in commits)),
            epoch=self.epoch,
        )
        self._committed[seq] = (pp.payload, cert)
        self._execute_ready()

    def _execute_ready(self) -> bool:
        """Hand every committed block that is next in line to the host; True if any."""
        progressed = False
        while self._handed_seq + 1 in self._committed:
            seq = self._handed_seq + 1
            payload, cert = self._committed.pop(seq)
            self._out.append(Execute(seq=seq, payload=payload, certificate=cert))
            self._handed_seq = seq
            progressed = True
        if progressed:
            self._handed_over()
        return progressed

    def _handed_over(self) -> None:
        """Blocks went to the host, whether committed here or fetched with a certificate: the
        system is making progress, so the timer restarts only for work still pending (R8).
        A replica that caught up by state transfer past the slots it was waiting on must not
        time out alone into a view change the others never join.

        Not in a view change: its timer (for the next view, armed once a quorum is in it)
        and its backoff are about the new primary, whatever old blocks execute meanwhile."""
        if not self.view_active:
            return
        self._vc_attempts = 0
        self._work_offered = False
        pending = any(
            s.pre_prepare is not None and not s.committed and seq > self._handed_seq
            for seq, s in self._slots.items()
        ) or (self.last_seq is not None and self._handed_seq < self.last_seq)
        self._deadline = self._now + self._timeout() if pending and self.member else None

    def _resume_deferred(self) -> None:
        limit = self._vote_limit()
        ready = sorted(seq for seq in self._deferred if seq <= limit)
        for seq in ready:
            self._deferred.discard(seq)
            self._progress(seq)
        for seq in [seq for seq in self._deferred if seq <= self.checkpoint_seq]:
            self._deferred.discard(seq)

    def _epoch_ends_at(self, seq: int, last_seq: int) -> None:
        if last_seq % self._k or last_seq < seq:
            raise HostProtocolError(
                f"epoch end {last_seq} announced at {seq} is not a checkpoint at or after it"
            )
        self.last_seq = last_seq
        self._count("epoch_end_scheduled")
        if self.member and self.view_active and self.executed_seq < last_seq:
            # Closing the epoch is pending work: a primary that does not drive the sequence
            # numbers up to last_seq (with null requests if idle) is replaced (R8).
            self._arm_timer()

    def _fill_epoch(self) -> None:
        """As primary, propose null requests until the epoch's last sequence number is
        assigned, so a set change takes effect even when no transactions arrive."""
        if (
            self.last_seq is None
            or not self.member
            or not self.view_active
            or not self.is_primary
            or self._next_seq > min(self.last_seq, self._vote_limit())
            or self._next_seq - 1 - self.executed_seq >= EPOCH_FILL_OUTSTANDING_MAX
        ):
            return
        self._count("epoch_fill_proposed")
        self._pre_prepare(msg.NULL_PAYLOAD)

    def _on_catch_up(self, event: CatchUp) -> None:
        if event.target_seq <= self._handed_seq:
            return
        old = self._catch_up
        last, self._catch_up_last = self._catch_up_last, self._now
        if last is None or self._now - last > self.config.timeouts.fetch_retry_ticks:
            # A new run of hints. One repeated every tick keeps its first time, also when we
            # reached its target meanwhile (a primary can order that fast): repetition is no
            # confirmation.
            self._catch_up_since = self._now
        if old is None or event.target_seq > old[0] or event.peers != old[1]:
            self._catch_up = (event.target_seq, event.peers)
        self._maybe_fetch()

    def _on_executed(self, event: Executed) -> None:
        if event.seq != self.executed_seq + 1 or event.seq > self._handed_seq:
            raise HostProtocolError(
                f"Executed({event.seq}) but expected {self.executed_seq + 1} "
                f"(handed up to {self._handed_seq})"
            )
        self.executed_seq = event.seq
        if event.epoch_last_seq is not None and self.last_seq is None:
            self._epoch_ends_at(event.seq, event.epoch_last_seq)
        if self._deferred:
            self._resume_deferred()
        if event.seq % self._k:
            return
        if event.seq == self.checkpoint_seq and event.state_digest != self._ck_digest:
            self._mismatch(event.seq, event.state_digest, self._ck_digest)
            return
        if event.seq <= self.checkpoint_seq:
            return
        self._own_checkpoints[event.seq] = event.state_digest
        if not self.member:
            return  # kept only to compare with the stable checkpoint (R7)
        ck = msg.make_checkpoint(self._key, self._chain, self.name, event.seq, event.state_digest)
        self._out.append(Broadcast(data=msg.encode_message(ck)))
        self._add_checkpoint_vote(ck)

    # ---------------------------------------------------------------- checkpoints (R7)

    def on_checkpoint(self, m: msg.Checkpoint) -> None:
        if m.seq <= self.checkpoint_seq:
            self._count("old_checkpoint")
            return
        if m.seq % self._k:
            self._count("bad_checkpoint_seq")
            return
        votes = self._ck_votes.get(m.seq, {})
        old = votes.get(m.replica)
        if old is not None and old.state_digest == m.state_digest:
            self._count("duplicate")
            return
        body = msg.checkpoint_body(m.seq, m.state_digest)
        if not self._verifier.check(Purpose.CHECKPOINT, m.replica, body, m.signature):
            self._count("bad_signature")
            return
        if old is not None:
            self._report(old, m)  # two state digests for one checkpoint, both signed
        # Bound: at most a few checkpoint seqs per replica are kept (the highest ones).
        per_replica = sorted(s for s, v in self._ck_votes.items() if m.replica in v)
        if len(per_replica) >= 4:
            if m.seq < per_replica[0]:
                self._count("checkpoint_buffer_full")
                return
            del self._ck_votes[per_replica[0]][m.replica]
        self._add_checkpoint_vote(m)

    def _add_checkpoint_vote(self, m: msg.Checkpoint) -> None:
        votes = self._ck_votes.setdefault(m.seq, {})
        votes[m.replica] = m
        matching = [v for v in votes.values() if v.state_digest == m.state_digest]
        if len(matching) >= self._q:
            proof = tuple(sorted((v.replica, v.signature) for v in matching))
            self._stabilize(m.seq, m.state_digest, proof)

    def _stabilize(self, seq: int, state_digest: bytes, proof: tuple[msg.Signer, ...]) -> None:
        if seq <= self.checkpoint_seq:
            return
        ours = self._own_checkpoints.get(seq)
        if ours is not None and ours != state_digest:
            self._mismatch(seq, ours, state_digest)
            return
        self.checkpoint_seq = seq
        self._ck_digest = state_digest
        self._ck_proof = proof
        self._dirty = True
        # Garbage-collect everything at or below the stable checkpoint.
        for table in (self._slots, self._my_pps, self._my_prepares, self._my_commits):
            for s in [s for s in table if s <= seq]:
                del table[s]
        for s in [s for s in self._prepared if s <= seq]:
            del self._prepared[s]
        for s in [s for s in self._ck_votes if s <= seq]:
            del self._ck_votes[s]
        for s in [s for s in self._own_checkpoints if s < seq]:
            del self._own_checkpoints[s]
        self._next_seq = max(self._next_seq, seq + 1)
        if self._deferred:
            self._resume_deferred()
        if self._handed_seq < seq:
            self._maybe_fetch(force=True)

    def _mismatch(self, seq: int, ours: bytes, stable: bytes) -> None:
        self.halted = True
        self._count("state_digest_mismatch")
        self._out.append(StateDigestMismatch(seq=seq, ours=ours, stable=stable))

    # ---------------------------------------------------------------- state transfer (R12)

    def _note_commit_evidence(self, m: msg.Commit) -> None:
        """A COMMIT we cannot use in our own log (another view, beyond the window) still says
        its sender is ahead of us; f + 1 of them for seq n mean an honest replica prepared n,
        so asking peers for blocks up to n is worth it (R12)."""
        if m.seq > self._handed_seq + 4 * self._window:
            self._count("commit_evidence_too_far")
            return
        _, signers = self._commit_evidence.setdefault(m.seq, (self._now, set()))
        if m.replica in signers:
            return
        if not self._verify_vote(m):
            self._count("bad_signature")
            return
        signers.add(m.replica)

    def _others_ahead(self) -> bool:
        """f + 1 others sent COMMITs for a block we have not handed over, recently enough that
        state transfer may still bring it: the system may be progressing without us (R8)."""
        return self._handed_seq < self._fetch_target(credible_only=True, hint="if_credible") or any(
            seq > self._handed_seq and len(signers) >= self._f + 1 and self._credible(first_seen)
            for seq, (first_seen, signers) in self._commit_evidence.items()
        )

    def _credible(self, first_seen: int, *, renewable: bool = True) -> bool:
        """A COMMIT proves only that its sender prepared the block, not that anyone committed
        it. When f + 1 COMMITs came from replicas that are stuck like us (the primary left
        the view after its pre-prepares reached a different subset of backups each), asking
        them returns nothing, forever. So the evidence says "behind" to the R8 timer for a
        bounded number of fetch rounds without a fetched block; after that the timer may
        blame the view again. (R8a keeps every COMMIT target: it has no timer that progress
        restarts.) It still drives fetches (R12), which verify every block, so this only
        decides liveness. Only certified blocks renew it, and they stop once we reach the
        block the evidence names. A CatchUp hint (E3) is bounded for R8 and R8a alike, and
        renewed by blocks only when f + 1 members give it (`_hint_credible`)."""
        retry = self.config.timeouts.fetch_retry_ticks
        # Measured from the later of when it was first seen and the last block state transfer
        # delivered (`renewable`): a slow transfer that keeps delivering keeps it credible.
        since = max(first_seen, self._fetch_progress_at) if renewable else first_seen
        return self._now - since < retry * (1 + BEHIND_EVIDENCE_FETCH_ROUNDS)

    def _hint_credible(self) -> bool:
        """Whether the CatchUp hint still says we are behind (R8, R8a). From f + 1 members of
        our set it includes an honest replica's word, so it is evidence like f + 1 COMMITs
        (`_credible`: renewed by delivered blocks). From fewer it is bounded from when its
        run of hints began (`_on_catch_up`) and delivered blocks do not renew it: a byzantine
        primary can make real certified blocks (it leaves one backup out of a pre-prepare, the
        others certify it) and hand them to that backup's fetches."""
        assert self._catch_up is not None
        corroborated = len(self._members.intersection(self._catch_up[1])) > self._f
        return self._credible(self._catch_up_since, renewable=corroborated)

    def _fetch_target(self, *, credible_only: bool = False, hint: HintUse = "always") -> int:
        """The highest block worth fetching. `credible_only`: only COMMIT evidence that still
        says we are behind (R8); `hint`: whether the CatchUp hint's target counts "always"
        (fetching), "if_credible" (R8, R8a) or "never" (what the checkpoint and the COMMITs
        alone prove).
        See `_credible` and `_hint_credible`."""
        for seq in [s for s in self._commit_evidence if s <= self._handed_seq]:
            del self._commit_evidence[seq]
        target = self.checkpoint_seq
        if self._catch_up is not None:
            if self._catch_up[0] <= self._handed_seq:
                self._catch_up = None
            elif hint == "always" or (hint == "if_credible" and self._hint_credible()):
                target = max(target, self._catch_up[0])
        settle = self.config.timeouts.fetch_retry_ticks
        for seq, (first_seen, signers) in self._commit_evidence.items():
            if seq <= target or len(signers) < self._f + 1:
                continue
            if credible_only and not self._credible(first_seen):
                continue  # not proof of being behind any more (R8), still worth fetching
            # Give the normal case time to finish before fetching what it may still deliver.
            if self._now - first_seen >= settle:
                target = seq
        return target

    def _maybe_fetch(self, *, force: bool = False) -> None:
        target = self._fetch_target()
        if self._handed_seq >= target:
            self._fetch_asked_at = None
            return
        retry = self.config.timeouts.fetch_retry_ticks
        if (
            not force
            and self._fetch_asked_at is not None
            and self._now - self._fetch_asked_at < retry
        ):
            return
        self._fetch_asked_at = self._now
        start = self._handed_seq + 1
        end = min(target, start + self.config.limits.fetch_blocks_max - 1)
        # The hinting peers as well as, never instead of, those the checkpoint and the COMMITs
        # name: a byzantine that keeps hinting must not become the only one asked.
        # Those name peers that have blocks up to what they proved, if not the whole range.
        proven = self._fetch_target(hint="never")
        named = self._fetch_peers(min(end, proven)) if proven > self._handed_seq else ()
        hinted = () if self._catch_up is None else self._catch_up[1]
        peers = tuple(sorted(set(named).union(hinted))) or self._peers
        self._count("fetch_requested")
        self._out.append(FetchBlocks(from_seq=start, to_seq=end, peers=peers))

    def _fetch_peers(self, end: int) -> tuple[str, ...]:
        """Whom to ask for blocks up to `end`: replicas known to have them. The stable
        checkpoint's signers executed every block up to it, but beyond it they may be as far
        behind as we are (a simulation found one byzantine and one lagging signer, and the
        only replica with the blocks never asked). Beyond it, the senders of the COMMITs that
        raised the target committed those blocks; f + 1 of them include an honest one.
        Empty when nothing names anyone."""
        if end <= self.checkpoint_seq:
            return tuple(name for name, _ in self._ck_proof if name != self.name)
        ahead = {
            name
            for seq, (_, names) in self._commit_evidence.items()
            if seq >= end
            for name in names
            if name != self.name
        }
        return tuple(sorted(ahead))

    def _on_blocks_fetched(self, event: BlocksFetched) -> None:
        progressed = False
        for block in sorted(event.blocks, key=lambda b: b.seq)[
            : self.config.limits.fetch_blocks_max
        ]:
            if block.seq <= self._handed_seq:
                self._count("fetch_stale")
                continue
            if block.seq != self._handed_seq + 1:
                self._count("fetch_gap")
                break
            if self.last_seq is not None and block.seq > self.last_seq:
                self._count("fetch_beyond_epoch")  # the next epoch's replica takes it from here
                break
            cert = block.certificate
            if cert.epoch != self.epoch:
                self._count("fetch_other_epoch")  # past our epoch's end: the next replica's
                break
            if cert.seq != block.seq or cert.digest != digest(block.payload):
                self._count("fetch_certificate_mismatch")
                break
            problem = certificate_problem(
                cert, self.config.chain_id, self.config.validators, epoch=self.epoch, quorum=self._q
            )
            if problem is not None:
                self._count("fetch_bad_certificate")
                break
            self._committed.pop(block.seq, None)
            self._out.append(Execute(seq=block.seq, payload=block.payload, certificate=cert))
            self._handed_seq = block.seq
            progressed = True
        if progressed:
            self._fetch_progress_at = self._now
            if not self._execute_ready():
                self._handed_over()
            self._fetch_asked_at = None
            self._maybe_fetch()

    # ---------------------------------------------------------------- timers (R8, R13)

    def _on_tick(self) -> None:
        self._now += 1
        self._fill_epoch()
        if self._deadline is not None and self._now >= self._deadline and self.member:
            if self.view_active and self._others_ahead():
                # We are behind, not blocked by the primary: state transfer (R12) brings us
                # up. Alone in a view change we would be stranded in a later view.
                self._count("view_change_timeout_while_behind")
                self._deadline = self._now + self._timeout()
            elif not self._quorum_reachable():
                # R8b: our VIEW-CHANGE could not gather a quorum, and would strand us in a
                # view the others may never take. Wait in this view for the peers.
                self._count("view_change_timeout_isolated")
                self._deadline = self._now + self._timeout()
            else:
                self._deadline = None
                self._count("view_change_timeout")
                self._start_view_change(self.view + 1)
        if self._now - self._last_retransmit >= self.config.timeouts.retransmit_interval_ticks:
            self._last_retransmit = self._now
            self._retransmit()
        self._maybe_fetch()

    def _on_peers_reachable(self, event: PeersReachable) -> None:
        names = event.names
        if type(names) is not frozenset or not all(type(n) is str for n in names):
            raise HostProtocolError(
                f"PeersReachable.names must be a frozenset of str, not {names!r}"
            )
        was_reachable = self._quorum_reachable()
        self._reachable = names
        reachable = self._quorum_reachable()
        base = self.config.timeouts.view_change_timeout_ticks
        if was_reachable and not reachable:
            self._cut_at = self._now
        elif not was_reachable and reachable and self._now - self._cut_at >= base:
            # The heal, after a cut long enough for a timer to have run out in it. Our
            # timers ran while the others could not hear of our work, and the next expiry
            # may fall before they could order it: changing view then, we would be alone in
            # it, the stranding R8b exists to prevent. They get one base timeout. (A report
            # that flaps faster than that changes nothing, so it cannot hold the timer back;
            # a view change's NEW-VIEW timer is not about our work, so it is left alone.)
            self._healed_at = self._now
            if self._deadline is not None and self.view_active:
                self._deadline = max(self._deadline, self._now + base)

    def _quorum_reachable(self) -> bool:
        """R8b: we and the validators our host hears from make a quorum."""
        if self._reachable is None:
            return True
        return len(self._members & self._reachable) + 1 >= self._q

    def _retransmit(self) -> None:
        if len(self._gated) >= RETRANSMIT_HELD_BATCHES_MAX:
            # The host is slow to persist: more resends would only grow the held queue.
            self._count("retransmit_skipped_persist_slow")
        elif not self.view_active:
            mine = self._vc_latest.get(self.name)
            if mine is not None and mine.new_view == self.view:
                self._broadcast_attesting(mine)
        else:
            for seq in sorted(self._slots):
                slot = self._slots[seq]
                pp = self._my_pps.get(seq)
                # Once committed here, the big messages stop: a peer still missing this seq
                # learns of it from the COMMITs and fetches the certified block (R12).
                if pp is not None and pp.view == self.view and not slot.committed:
                    self._broadcast_attesting(pp)
                if slot.prepare_sent and self.name in slot.prepares and not slot.committed:
                    self._broadcast_attesting(slot.prepares[self.name])
                if slot.commit_sent and self.name in slot.commits:
                    self._broadcast_attesting(slot.commits[self.name])
        if self._own_checkpoints and self.member:
            seq = max(self._own_checkpoints)
            if seq >= self.checkpoint_seq:
                ck = self._ck_votes.get(seq, {}).get(self.name)
                if ck is None:
                    ck = msg.make_checkpoint(
                        self._key, self._chain, self.name, seq, self._own_checkpoints[seq]
                    )
                self._out.append(Broadcast(data=msg.encode_message(ck)))

    # ---------------------------------------------------------------- view change (R8-R10)

    def _start_view_change(self, new_view: int) -> None:
        if new_view <= self.view:
            return
        self.view = new_view
        self.view_active = False
        self._vc_attempts += 1
        self._dirty = True
        self._count("view_change_started")
        self._slots.clear()
        self._my_pps.clear()
        self._my_prepares.clear()
        self._my_commits.clear()
        self._work_offered = False
        prepared = sorted(self._prepared.items())
        vc = msg.make_view_change(
            self._key,
            self._chain,
            self.name,
            new_view=new_view,
            checkpoint_seq=self.checkpoint_seq,
            checkpoint_digest=self._ck_digest,
            checkpoint_proof=self._ck_proof,
            prepared=tuple(p for _, (p, _) in prepared),
            payloads=tuple(payload for _, (_, payload) in prepared),
        )
        self._vc_latest[self.name] = vc
        self._broadcast_attesting(vc)
        self._deadline = None
        for replica in [r for r, v in self._vc_latest.items() if v.new_view < new_view]:
            del self._vc_latest[replica]
        self._arm_view_change_timer()
        self._try_new_view()

    def _arm_view_change_timer(self) -> None:
        """[OSDI 4.4] The timer for the next view starts only once a quorum is in this view
        change. Waiting alone, a replica never gives up on its own: otherwise replicas whose
        timers expire at different times leapfrog each other through views forever. It still
        moves on by joining (R9) or through a NEW-VIEW (R10)."""
        if self.view_active or self._deadline is not None:
            return
        # A replica whose latest VIEW-CHANGE is for a later view has also left the old one.
        waiting = sum(1 for vc in self._vc_latest.values() if vc.new_view >= self.view)
        if waiting >= self._q:
            self._deadline = self._now + self._timeout()

    def on_view_change(self, m: msg.ViewChange) -> None:
        if m.new_view < self.view or (m.new_view == self.view and self.view_active):
            # The sender is behind: help it with our (self-certifying) NEW-VIEW (R10).
            self._count("old_view_change")
            nv = self._last_new_view
            last = self._nv_replied.get(m.replica)
            resend = self.config.timeouts.new_view_resend_ticks
            if (
                nv is not None
                and self.view_active
                and nv.view == self.view
                and (last is None or self._now - last >= resend)
            ):
                self._nv_replied[m.replica] = self._now
                self._send_attesting(m.replica, nv)
            return
        old = self._vc_latest.get(m.replica)
        if old is not None and old.new_view >= m.new_view:
            self._count("duplicate" if old.new_view == m.new_view else "old_view_change")
            return
        if m.prepared and not m.payloads:
            self._count("view_change_without_payloads")
            return
        problem = view_change_problem(
            self._verifier,
            m,
            quorum=self._q,
            window=self._window,
            check_prepared=self._check_prepared_proofs,
        )
        if problem is not None:
            self._count("bad_view_change")
            return
        self._vc_latest[m.replica] = m
        # R9: f + 1 others are in later views -> join the smallest view at least f + 1 reached.
        higher = sorted(
            (
                vc.new_view
                for r, vc in self._vc_latest.items()
                if r != self.name and vc.new_view > self.view
            ),
            reverse=True,
        )
        if len(higher) >= self._f + 1:
            self._start_view_change(higher[self._f])
        else:
            self._arm_view_change_timer()
            if m.new_view == self.view:
                self._try_new_view()

    def _try_new_view(self) -> None:
        if self.view_active or primary_of(self.view, self._names) != self.name:
            return
        candidates = [vc for vc in self._vc_latest.values() if vc.new_view == self.view]
        if len(candidates) < self._q:
            return
        candidates.sort(key=lambda vc: (vc.replica != self.name, vc.replica))
        chosen = tuple(candidates[: self._q])
        plan = plan_new_view(chosen)
        pre_prepares = []
        for seq, d in plan.entries:
            payload = find_payload(candidates, seq, d)
            assert payload is not None, "validated view-changes carry their payloads"
            pre_prepares.append(
                msg.make_pre_prepare(
                    self._key, self._chain, self.name, view=self.view, seq=seq, payload=payload
                )
            )
        nv = msg.NewView(
            view=self.view,
            replica=self.name,
            view_changes=tuple(vc.stripped() for vc in chosen),
            pre_prepares=tuple(pre_prepares),
        )
        self._count("new_view_sent")
        self._broadcast_attesting(nv)
        self._enter_view(nv, plan.checkpoint_seq, plan.checkpoint_digest, plan.checkpoint_proof)

    def on_new_view(self, m: msg.NewView) -> None:
        if m.view < self.view or (m.view == self.view and self.view_active):
            self._count("old_new_view")
            return
        primary = primary_of(m.view, self._names)
        if primary == self.name:
            self._count("new_view_for_own_view")
            return
        problem = self._new_view_problem(m, primary)
        if problem is not None:
            self._count("bad_new_view")
            return
        plan = plan_new_view(m.view_changes)
        if m.view > self.view:
            self.view = m.view
            self._slots.clear()
            self._my_pps.clear()
            self._my_prepares.clear()
            self._my_commits.clear()
        self._enter_view(m, plan.checkpoint_seq, plan.checkpoint_digest, plan.checkpoint_proof)

    def _new_view_problem(self, m: msg.NewView, primary: str) -> str | None:
        names = {vc.replica for vc in m.view_changes}
        if len(names) != len(m.view_changes) or len(names) < self._q:
            return "new-view needs a quorum of distinct view-changes"
        for vc in m.view_changes:
            if vc.new_view != m.view:
                return "view-change for another view"
            problem = view_change_problem(
                self._verifier,
                vc,
                quorum=self._q,
                window=self._window,
                check_prepared=self._check_prepared_proofs,
            )
            if problem is not None:
                return problem
        plan = plan_new_view(m.view_changes)
        if [(pp.seq, pp.digest) for pp in m.pre_prepares] != list(plan.entries):
            return "pre-prepares differ from the recomputed new-view set"
        for pp in m.pre_prepares:
            if pp.view != m.view or pp.replica != primary:
                return "pre-prepare in new-view has the wrong view or signer"
            if len(pp.payload) > self.config.limits.batch_bytes_max:
                return "pre-prepare payload too large"
            if digest(pp.payload) != pp.digest:
                return "pre-prepare payload does not match digest"
            if not self._verify_vote(pp):
                return "bad pre-prepare signature in new-view"
        return None

    def _enter_view(
        self,
        nv: msg.NewView,
        ck_seq: int,
        ck_digest: bytes,
        ck_proof: tuple[msg.Signer, ...],
    ) -> None:
        assert nv.view == self.view
        self.view_active = True
        self._view_since = self._now
        self._dirty = True
        self._last_new_view = nv
        self._deadline = None
        self._future_views = {r: v for r, v in self._future_views.items() if v > self.view}
        if ck_seq > self.checkpoint_seq:
            problem = checkpoint_proof_problem(self._verifier, ck_seq, ck_digest, ck_proof, self._q)
            assert problem is None, f"new-view checkpoint was verified: {problem}"
            self._stabilize(ck_seq, ck_digest, ck_proof)
        i_am_primary = self.is_primary
        last = self.checkpoint_seq
        for pp in nv.pre_prepares:
            last = max(last, pp.seq)
            if pp.seq <= self.checkpoint_seq:
                continue
            slot = Slot(pre_prepare=pp, validated=True)
            self._slots[pp.seq] = slot
            if i_am_primary:
                self._my_pps[pp.seq] = pp
        self._next_seq = max(last + 1, self.checkpoint_seq + 1)
        self._count("view_entered")
        self._out.append(ViewChanged(view=self.view, primary=self.primary))
        for seq in sorted(self._slots):
            self._progress(seq)
        if any(not s.committed for s in self._slots.values()):
            self._arm_timer()
        self._replay_future()

    # ---------------------------------------------------------------- restart

    def _restore_own_checkpoint(self, seq: int, state_digest: bytes) -> None:
        """R7/R13 after a restart: our CHECKPOINT for the block we last executed is soft state,
        lost with the crash, and only an Executed would make it again. Restarted at a
        checkpoint above the stable one, we would never vote for it, and with f silent the
        other honest replicas need our vote: none of them could stabilize it, and with the
        window full (R3) no primary could order anything, in any view. The host knows the
        digest, so the vote is rebuilt from it and retransmitted (R13) like any other."""
        if seq % self._k or seq <= self.checkpoint_seq:
            return
        self._own_checkpoints[seq] = state_digest
        if self.member:
            self._add_checkpoint_vote(
                msg.make_checkpoint(self._key, self._chain, self.name, seq, state_digest)
            )

    def _restore(self, s: PersistedState) -> None:
        self.view = s.view
        self.view_active = s.view_active
        self._vc_attempts = s.view_change_attempts
        self.checkpoint_seq = s.checkpoint_seq
        self._ck_digest = s.checkpoint_digest
        self._ck_proof = s.checkpoint_proof
        self._prepared = {
            p.seq: (p, payload) for p, payload in zip(s.prepared, s.prepared_payloads, strict=True)
        }
        self._my_pps = {pp.seq: pp for pp in s.pre_prepares}
        self._my_prepares = {v.seq: v for v in s.prepares}
        self._my_commits = {v.seq: v for v in s.commits}
        self._next_seq = max([self.checkpoint_seq, *self._my_pps]) + 1
        primary = self.primary
        for seq, pp in self._my_pps.items():
            if pp.view == self.view:
                self._slots[seq] = Slot(pre_prepare=pp, validated=True)
        for seq, (proof, payload) in self._prepared.items():
            own = self._slots.get(seq)
            if own is not None:
                # The primary's own pre-prepare restored the slot. Prepared it stays: the
                # PREPAREs behind the proof are not persisted, and peers that committed never
                # resend them, so without this their COMMITs could never complete the slot.
                if proof.view == self.view and own.digest == proof.digest:
                    own.prepared = True
                continue
            if proof.view == self.view:
                pp = msg.PrePrepare(
                    view=proof.view,
                    seq=seq,
                    digest=proof.digest,
                    replica=primary,
                    signature=proof.pre_prepare_signature,
                    payload=payload,
                )
                self._slots[seq] = Slot(pre_prepare=pp, validated=True, prepared=True)
        for seq, vote in self._my_prepares.items():
            if vote.view == self.view:
                slot = self._slots.setdefault(seq, Slot())
                slot.prepare_sent = True
                slot.prepares[self.name] = msg.make_prepare(
                    self._key, self._chain, self.name, view=vote.view, seq=seq, d=vote.digest
                )
        for seq, vote in self._my_commits.items():
            if vote.view == self.view:
                slot = self._slots.setdefault(seq, Slot())
                slot.commit_sent = True
                slot.commits[self.name] = msg.make_commit(
                    self._key, self._chain, self.name, view=vote.view, seq=seq, d=vote.digest
                )
        if not self.view_active:
            prepared = sorted(self._prepared.items())
            self._vc_latest[self.name] = msg.make_view_change(
                self._key,
                self._chain,
                self.name,
                new_view=self.view,
                checkpoint_seq=self.checkpoint_seq,
                checkpoint_digest=self._ck_digest,
                checkpoint_proof=self._ck_proof,
                prepared=tuple(p for _, (p, _) in prepared),
                payloads=tuple(payload for _, (_, payload) in prepared),
            )
        elif any(
            slot.pre_prepare is not None and seq > self.executed_seq
            for seq, slot in self._slots.items()
        ):
            # Only work still pending arms the timer: a restored pre-prepare the host already
            # executed is done, and timing out on it would leave us alone in a higher view.
            self._deadline = self._timeout()
