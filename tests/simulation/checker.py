"""The checker: safety properties watched during the run, and the final audit.

- agreement: one digest per sequence number among honest replicas, hash chains equal, and
  never two commit certificates (quorums of signed COMMITs, from anyone) for different
  digests at one sequence number;
- validity: executed blocks hold only submitted transactions, none twice in one block,
  every block's certificate verifies;
- no lost commits: a transaction any honest replica applied is, at the end, applied by all;
- no equivocation: no honest replica signs two PRE-PREPAREs/PREPAREs/COMMITs for one
  (view, seq) with different digests;
- liveness: checked by the runner (everything submitted commits within a bound once calm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consensus import actions as act
from consensus import messages as m
from consensus.certificate import quorum_size, verify_certificate
from consensus.epoch_replica import EPOCH_PREFIX_BYTES as EPOCH_PREFIX
from consensus.evidence import EvidenceError, check_evidence
from tests.simulation.host import GENESIS_CHAIN, chain_step, decode_batch

if TYPE_CHECKING:
    from tests.simulation.host import Host
    from tests.simulation.world import World

SEEN_MESSAGES_MAX = 200_000


class Checker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.violations: list[str] = []
        self.committed_seen: dict[bytes, int] = {}  # tx -> tick first applied by an honest host
        self._votes: dict[tuple[int, str, str, int, int], bytes] = {}
        self._commit_signers: dict[tuple[int, int, int, bytes], set[str]] = {}
        self._certified: dict[int, bytes] = {}
        self._seen: set[bytes] = set()
        self._cert_ok: set[bytes] = set()

    def fail(self, what: str) -> None:
        line = f"t={self.world.now}: {what}"
        self.violations.append(line)
        self.world.note("VIOLATION " + what)

    def on_commit(self, host: Host, tx: bytes) -> None:
        if host.honest and tx not in self.committed_seen:
            self.committed_seen[tx] = self.world.now

    def on_send(self, host: Host, data: bytes) -> None:
        """Watch every signed vote that leaves a replica (equivocation, certificates)."""
        if data in self._seen:
            return
        if len(self._seen) < SEEN_MESSAGES_MAX:
            self._seen.add(data)
        # Only PRE-PREPARE/PREPARE/COMMIT matter here: their kind tag is the second byte
        # after the epoch prefix (fixarray header, then the tag): skip decoding the rest.
        if len(data) < EPOCH_PREFIX + 2 or data[EPOCH_PREFIX + 1] not in (1, 2, 3):
            return
        epoch = int.from_bytes(data[:EPOCH_PREFIX], "big")
        msg = self.world.decode(data)
        if not isinstance(msg, m.PrePrepare | m.Prepare | m.Commit):
            return
        if msg.replica != host.name:
            return  # replayed traffic from someone else
        if host.honest:
            key = (epoch, type(msg).__name__, msg.replica, msg.view, msg.seq)
            old = self._votes.get(key)
            if old is None:
                self._votes[key] = msg.digest
            elif old != msg.digest:
                self.fail(
                    f"honest {host.instance} equivocated: two {key[1]} for epoch {epoch} "
                    f"view {msg.view} seq {msg.seq}"
                )
        if isinstance(msg, m.Commit):
            signers = self._commit_signers.setdefault((epoch, msg.view, msg.seq, msg.digest), set())
            signers.add(msg.replica)
            if len(signers) >= quorum_size(len(self.world.validators_of_epoch(epoch))):
                old_digest = self._certified.setdefault(msg.seq, msg.digest)
                if old_digest != msg.digest:
                    self.fail(f"two commit certificates for seq {msg.seq} with different digests")

    def on_evidence(self, host: Host, a: act.EquivocationDetected) -> None:
        """Evidence a replica reports must verify, and must never accuse an honest one."""
        w = self.world
        w.stats["evidence"] = w.stats.get("evidence", 0) + 1
        try:
            found = check_evidence(
                a.first,
                a.second,
                chain_id=w.chain_id,
                epoch=a.epoch,
                validators=w.validators_of_epoch(a.epoch),
            )
        except EvidenceError as exc:
            self.fail(f"{host.instance} reported invalid evidence against {a.validator}: {exc}")
            return
        accused = [h for h in w.hosts.values() if h.name == found.validator]
        if any(h.honest for h in accused):
            self.fail(f"{host.instance} accused honest {found.validator} of equivocation")

    def final(self, *, converged: bool) -> None:
        w = self.world
        honest = [h for h in w.honest if not h.crashed]
        by_seq: dict[int, tuple[bytes, str]] = {}
        for h in honest:
            chain = GENESIS_CHAIN
            for i, b in enumerate(h.blocks):
                if b.seq != i + 1:
                    self.fail(f"{h.instance} block {i} has seq {b.seq}")
                    break
                chain = chain_step(chain, b.seq, b.digest)
                if chain != b.chain:
                    self.fail(f"{h.instance} hash chain broken at {b.seq}")
                first = by_seq.setdefault(b.seq, (b.digest, h.instance))
                if first[0] != b.digest:
                    self.fail(
                        f"agreement: seq {b.seq} is {first[0].hex()[:8]} at {first[1]} but "
                        f"{b.digest.hex()[:8]} at {h.instance}"
                    )
                txs = decode_batch(b.payload) or []
                if len(set(txs)) != len(txs):
                    self.fail(f"validity: block {b.seq} repeats a transaction")
                for t in txs:
                    if t not in w.submitted:
                        self.fail(f"validity: block {b.seq} has unsubmitted tx {t!r}")
                cert_bytes = b.certificate.encode()
                epoch = h.epoch_of(b.seq)
                if cert_bytes not in self._cert_ok:
                    if verify_certificate(
                        b.certificate, w.chain_id, epoch.validators, epoch=epoch.number
                    ):
                        self._cert_ok.add(cert_bytes)
                    else:
                        self.fail(f"validity: block {b.seq} at {h.instance} has a bad certificate")
            if (
                h.epochs != honest[0].epochs[: len(h.epochs)]
                and h.epochs[: len(honest[0].epochs)] != honest[0].epochs
            ):
                self.fail(f"{h.instance} disagrees with {honest[0].instance} on the epochs")
            if h.halted_loudly:
                self.fail(f"{h.instance} halted on a state digest mismatch")
        if converged:
            for tx in self.committed_seen:
                for h in honest:
                    if tx not in h.applied:
                        self.fail(f"lost commit: {tx!r} is not applied at {h.instance}")
                        return
