"""Admission: the gate between untrusted transaction bytes and the mempool.

Checks, in order, each refusal with a stable reason code and nothing changed:
size -> decode (canonical, typed) -> chain id -> signatures (batched, off the event loop)
-> signer is a regulator or a registered account -> nonce not already used -> mempool rules
(duplicate, nonce taken, full). Business rules (balances, roles, freezes) are the ledger's, at
execution; a client can ask for them in advance with the `check` request.

Submitting a transaction that is already pending or committed is not an error: the client
gets the same tx id back (submits are idempotent, so a client may safely retry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from node.ledger import Ledger
from node.ledger.store import prepare_tx
from node.mempool import AdmitRefusal, Mempool, PendingTx
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx import (
    Kind,
    SignedTransaction,
    TxDecodeError,
    TxLimits,
    regulator_approvals,
    regulator_quorum_ok,
)

WRONG_CHAIN = "wrong_chain"
BAD_SIGNATURE = "bad_signature"
OVERSIZE = "oversize"
ACCOUNT_NOT_REGISTERED = "account_not_registered"
REGULATOR_THRESHOLD_NOT_MET = "regulator_threshold_not_met"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The verdict on one submitted transaction: tx_id when admitted (or already known)."""

    tx_id: bytes | None
    reason: str | None = None
    message: str = ""

    @property
    def admitted(self) -> bool:
        return self.reason is None


class Admission:
    def __init__(
        self,
        *,
        chain_id: str,
        tx_limits: TxLimits,
        ledger: Ledger,
        mempool: Mempool,
        verifier: BatchVerifier,
        cache: VerifiedCache,
        clock_ms: Callable[[], int],
        on_admitted: Callable[[list[PendingTx], bool], None],
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._chain_id = chain_id
        self._tx_limits = tx_limits
        self._ledger = ledger
        self._mempool = mempool
        self._verifier = verifier
        self._cache = cache
        self._clock_ms = clock_ms
        self._on_admitted = on_admitted
        self._on_refused = on_refused
        # The regulator keys are ledger state (set_regulator_keys): re-read once per batch.
        self._regulator_keys: frozenset[bytes] = frozenset()
        self._regulator_threshold = 1

    def _is_registered(self, account: bytes) -> bool:
        info = self._ledger.account(account)
        return info is not None and info.status == "registered"

    async def admit(self, raws: Sequence[bytes], *, from_client: bool) -> list[Outcome]:
        """Admit what passes; `from_client` says whether to gossip it (peers' txs are not)."""
        outcomes: list[Outcome | None] = [None] * len(raws)
        decoded: list[SignedTransaction | None] = [None] * len(raws)
        to_verify: list[int] = []
        for i, raw in enumerate(raws):
            if len(raw) > self._tx_limits.tx_bytes_max:
                outcomes[i] = Outcome(
                    tx_id=None,
                    reason=OVERSIZE,
                    message=f"{len(raw)} bytes exceeds tx_bytes_max={self._tx_limits.tx_bytes_max}",
                )
                continue
            cached = self._cache.get(raw)
            stx: SignedTransaction | None
            if cached is not None:
                stx, ok = cached
                decoded[i] = stx
                # The cache also holds transactions seen in (possibly faulty) proposals: it
                # remembers signature checks only, so every other check runs again here.
                if stx.body.chain_id != self._chain_id:
                    outcomes[i] = self._wrong_chain(stx)
                elif not ok:
                    outcomes[i] = Outcome(
                        tx_id=stx.tx_id, reason=BAD_SIGNATURE, message="a signature does not verify"
                    )
                continue
            item = prepare_tx(raw, self._tx_limits)
            if isinstance(item, TxDecodeError):
                outcomes[i] = Outcome(tx_id=None, reason=item.reason.value, message=item.message)
                continue
            if item.body.chain_id != self._chain_id:
                outcomes[i] = self._wrong_chain(item)
                continue
            decoded[i] = item
            to_verify.append(i)
        if to_verify:
            results = await self._verifier.verify([decoded[i] for i in to_verify])  # type: ignore[misc]
            for i, ok in zip(to_verify, results, strict=True):
                stx = decoded[i]
                assert stx is not None
                self._cache.put(raws[i], stx, ok)
                if not ok:
                    outcomes[i] = Outcome(
                        tx_id=stx.tx_id, reason=BAD_SIGNATURE, message="a signature does not verify"
                    )
        # No await from here on: the nonce read and the mempool insert are one atomic step.
        keys, self._regulator_threshold = self._ledger.regulator_keys()
        self._regulator_keys = frozenset(keys)
        admitted: list[PendingTx] = []
        now = self._clock_ms()
        for i, raw in enumerate(raws):
            stx = decoded[i]
            if outcomes[i] is not None or stx is None:
                continue
            outcomes[i] = self._enter(stx, raw, now, admitted)
        if admitted:
            self._on_admitted(admitted, from_client)
        final = [o for o in outcomes if o is not None]
        assert len(final) == len(raws)
        for o in final:
            if o.reason is not None:
                self._on_refused(o.reason)
        return final

    def _wrong_chain(self, stx: SignedTransaction) -> Outcome:
        return Outcome(
            tx_id=stx.tx_id,
            reason=WRONG_CHAIN,
            message=f"signed for chain {stx.body.chain_id!r}, this is {self._chain_id!r}",
        )

    def _enter(
        self, stx: SignedTransaction, raw: bytes, now: int, admitted: list[PendingTx]
    ) -> Outcome:
        tx_id = stx.tx_id
        if tx_id in self._mempool:
            return Outcome(tx_id=tx_id)
        signer = stx.body.signer
        if not regulator_quorum_ok(stx, self._regulator_keys, self._regulator_threshold):
            return Outcome(
                tx_id=tx_id,
                reason=REGULATOR_THRESHOLD_NOT_MET,
                message=(
                    f"{regulator_approvals(stx, self._regulator_keys)} distinct regulator"
                    f" signatures, {self._regulator_threshold} required: add --key for more regulators"
                ),
            )
        if (
            signer not in self._regulator_keys
            and not self._is_registered(signer)
            # Validators report equivocation with their own key (the ledger checks the rest).
            and not (
                stx.body.kind is Kind.REPORT_EQUIVOCATION and self._ledger.is_validator_key(signer)
            )
        ):
            # Otherwise anyone could make every validator store receipts for unknown keys.
            return Outcome(
                tx_id=tx_id,
                reason=ACCOUNT_NOT_REGISTERED,
                message="the signer is not a registered account; the regulator must register it first",
            )
        next_nonce = self._ledger.nonce(signer)
        if stx.body.nonce < next_nonce and self._ledger.receipt(tx_id) is not None:
            return Outcome(tx_id=tx_id)  # already committed: idempotent
        pending = PendingTx(
            tx_id=tx_id, signer=stx.body.signer, nonce=stx.body.nonce, raw=raw, received_ms=now
        )
        refusal = self._mempool.add(pending, next_nonce=next_nonce)
        if refusal is None:
            admitted.append(pending)
            return Outcome(tx_id=tx_id)
        message = {
            AdmitRefusal.NONCE_USED: f"nonce {stx.body.nonce} is already used; the next nonce is {next_nonce}",
            AdmitRefusal.NONCE_TAKEN: f"another pending transaction already uses nonce {stx.body.nonce}",
            AdmitRefusal.NONCE_TOO_FAR: f"nonce {stx.body.nonce} is too far ahead of the next nonce {next_nonce}",
            AdmitRefusal.MEMPOOL_FULL: "the mempool is full; retry later",
            AdmitRefusal.DUPLICATE: "already pending",
        }[refusal]
        return Outcome(tx_id=tx_id, reason=refusal.value, message=message)
