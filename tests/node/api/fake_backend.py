"""An in-memory `ClientBackend` for API, client and CLI tests.

It is small but not a stub: transactions are decoded and signature-checked with node.tx,
nonces are sequential per signer, blocks carry real commit certificates signed by a
deterministic 4-validator set, and mint/transfer move real balances. Tests drive commits
explicitly (`commit_block`) and can hold any op at a gate to force out-of-order answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import nacl.signing
import trio

from consensus.certificate import CommitCertificate
from consensus.encoding import digest, pack
from consensus.epochs import epoch_last_seq
from consensus.messages import vote_body
from consensus.signing import Purpose, sign
from node.api.errors import InvalidArgumentError, NotFoundError, RejectedError
from node.api.governance_results import (
    EvidenceEntry,
    EvidenceList,
    GovernanceEntry,
    GovernancePage,
    ValidatorEntry,
    ValidatorSetInfo,
)
from node.api.ledger_queries import R, page_by_height
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    CheckResult,
    FinalityProof,
    HistoryPage,
    ReceiptInfo,
    StatusInfo,
    ValidatorInfo,
)
from node.finality import FinalityRecord, Proposal
from node.ledger.digest import block_hash as ledger_block_hash
from node.ledger.digest import tx_root
from node.tx import (
    DEFAULT_TX_LIMITS,
    SignedTransaction,
    TxDecodeError,
    TxLimits,
    decode_signed_transaction,
    verify_transaction,
)
from node.tx.kinds import (
    GOVERNANCE_KINDS,
    AddValidatorArgs,
    CreateAssetArgs,
    MintArgs,
    RemoveValidatorArgs,
    RotateValidatorKeyArgs,
    SetRegulatorKeysArgs,
    TransferArgs,
)

CHAIN_ID = "test-chain"
VALIDATOR_KEYS = tuple(nacl.signing.SigningKey(bytes([i + 1]) * 32) for i in range(4))
VALIDATORS = tuple((f"v{i}", key.verify_key.encode()) for i, key in enumerate(VALIDATOR_KEYS))
QUORUM = 3
REGULATOR_KEYS = (nacl.signing.SigningKey(b"\x44" * 32).verify_key.encode(),)
# The ledger's defaults (LedgerLimits): K and W of consensus/epochs.py.
CHECKPOINT_INTERVAL_SEQS = 16
LOG_WINDOW_SEQS = 32


@dataclass
class Epoch:
    number: int
    first_seq: int
    validators: tuple[ValidatorEntry, ...]
    last_seq: int | None = None


def genesis_validators() -> tuple[ValidatorEntry, ...]:
    return tuple(
        ValidatorEntry(name=name, public_key=key, address=f"127.0.0.1:{9000 + i}")
        for i, (name, key) in enumerate(VALIDATORS)
    )


@dataclass
class Asset:
    asset: str
    name: str
    decimals: int
    cap: int
    issuer: bytes
    supply: int = 0
    paused: bool = False


@dataclass
class FakeBackend:
    chain_id: str = CHAIN_ID
    tx_limits: TxLimits = DEFAULT_TX_LIMITS  # the chain's (genesis [consensus])
    assets: dict[str, Asset] = field(default_factory=dict)
    balances: dict[tuple[str, bytes], int] = field(default_factory=dict)
    accounts: set[bytes] = field(default_factory=set)
    nonces: dict[bytes, int] = field(default_factory=dict)  # committed next nonce
    pending_nonces: dict[bytes, int] = field(default_factory=dict)
    mempool: list[SignedTransaction] = field(default_factory=list)
    blocks: list[BlockInfo] = field(default_factory=list)
    receipts: dict[bytes, ReceiptInfo] = field(default_factory=dict)
    history_index: dict[bytes, list[bytes]] = field(default_factory=dict)
    # op name -> event the op waits on before answering (tests release it).
    gates: dict[str, trio.Event] = field(default_factory=dict)
    # op name -> exception the op raises (error-mapping tests).
    failures: dict[str, BaseException] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # Governance: the ledger's validator set, epochs (oldest first), audited history.
    validator_set: tuple[ValidatorEntry, ...] = field(default_factory=genesis_validators)
    epochs: list[Epoch] = field(
        default_factory=lambda: [Epoch(number=0, first_seq=1, validators=genesis_validators())]
    )
    pending_last_seq: int | None = None
    regulator_keys: tuple[bytes, ...] = REGULATOR_KEYS
    regulator_threshold: int = 1
    governance_records: list[GovernanceEntry] = field(default_factory=list)  # oldest first
    evidence_records: list[EvidenceEntry] = field(default_factory=list)  # oldest first
    # Commit the mempool as soon as someone waits for a receipt (client tests).
    autocommit: bool = False
    _committed: trio.Event = field(default_factory=trio.Event)
    _mempool_ids: set[bytes] = field(default_factory=set)

    async def _enter(self, op: str) -> None:
        self.calls.append(op)
        gate = self.gates.get(op)
        if gate is not None:
            await gate.wait()
        failure = self.failures.get(op)
        if failure is not None:
            raise failure

    # --- test helpers ---------------------------------------------------------------

    def add_asset(self, asset: str, decimals: int, issuer: bytes, cap: int = 10**12) -> None:
        self.assets[asset] = Asset(
            asset=asset, name=f"{asset} token", decimals=decimals, cap=cap, issuer=issuer
        )

    def fund(self, asset: str, account: bytes, amount: int) -> None:
        self.accounts.add(account)
        self.balances[(asset, account)] = self.balances.get((asset, account), 0) + amount
        self.assets[asset].supply += amount

    def commit_block(self) -> BlockInfo:
        """Apply the whole mempool as the next block, with a real commit certificate."""
        height = len(self.blocks) + 1
        txs, self.mempool = self.mempool, []
        self._mempool_ids.clear()
        raws = [stx.encode() for stx in txs]
        prev_hash = self.blocks[-1].block_hash if self.blocks else bytes(32)
        timestamp_ms = height * 1000
        root = tx_root(raws)
        block_hash = ledger_block_hash(
            chain_id=self.chain_id,
            height=height,
            timestamp_ms=timestamp_ms,
            prev_block_hash=prev_hash,
            root=root,
        )
        payload = Proposal(timestamp_ms=timestamp_ms, txs=tuple(raws)).encode()
        body = vote_body(0, height, digest(payload))
        commits = tuple(
            (name, sign(key, Purpose.COMMIT, self.chain_id, body))
            for (name, _), key in list(zip(VALIDATORS, VALIDATOR_KEYS, strict=True))[:QUORUM]
        )
        commit_certificate = CommitCertificate(
            view=0, seq=height, digest=digest(payload), commits=commits
        )
        certificate = FinalityRecord(payload=payload, certificate=commit_certificate).encode()
        proof = FinalityProof(height=height, block_hash=block_hash, certificate=certificate)
        outcomes = []
        for index, stx in enumerate(txs):
            reason = self._apply(stx)
            outcomes.append(reason or "applied")
            self.nonces[stx.body.signer] = stx.body.nonce + 1
            self.receipts[stx.tx_id] = ReceiptInfo(
                tx_id=stx.tx_id,
                status="applied" if reason is None else "rejected",
                reason=reason,
                height=height,
                index=index,
                proof=proof,
            )
            self.history_index.setdefault(stx.body.signer, []).append(stx.tx_id)
            if reason is None and stx.body.kind in GOVERNANCE_KINDS:
                self._record_governance(stx, height)
        self._close_epoch(height)
        # The ledger's block record layout, so clients can check inclusion against it.
        block_bytes = pack(
            [height, timestamp_ms, prev_hash, root, block_hash, bytes(32), raws, outcomes]
        )
        block = BlockInfo(
            height=height,
            block_hash=block_hash,
            tx_ids=tuple(stx.tx_id for stx in txs),
            block=block_bytes,
            certificate=certificate,
        )
        self.blocks.append(block)
        self._committed.set()
        self._committed = trio.Event()
        return block

    def _apply(self, stx: SignedTransaction) -> str | None:
        args = stx.body.args
        signer = stx.body.signer
        if isinstance(args, CreateAssetArgs):
            if args.asset_id in self.assets:
                return "asset_exists"
            self.add_asset(args.asset_id, args.decimals, signer, args.cap)
            return None
        if isinstance(args, (MintArgs, TransferArgs)):
            asset = self.assets.get(args.asset_id)
            if asset is None:
                return "unknown_asset"
            if isinstance(args, MintArgs):
                if asset.issuer != signer:
                    return "not_authorized"
                if asset.supply + args.amount > asset.cap:
                    return "supply_cap_exceeded"
                self.fund(args.asset_id, args.to_account, args.amount)
                return None
            have = self.balances.get((args.asset_id, signer), 0)
            if have < args.amount:
                return "insufficient_balance"
            self.balances[(args.asset_id, signer)] = have - args.amount
            key = (args.asset_id, args.to_account)
            self.balances[key] = self.balances.get(key, 0) + args.amount
            return None
        if isinstance(args, (AddValidatorArgs, RemoveValidatorArgs, RotateValidatorKeyArgs)):
            return self._change_validators(args)
        if isinstance(args, SetRegulatorKeysArgs):
            self.regulator_keys, self.regulator_threshold = args.public_keys, args.threshold
            return None
        return None  # other kinds: accepted without effect in this fake

    # --- governance (the ledger's rules in brief; safety rules are the ledger's tests) -

    def _change_validators(
        self, args: AddValidatorArgs | RemoveValidatorArgs | RotateValidatorKeyArgs
    ) -> str | None:
        names = [v.name for v in self.validator_set]
        if isinstance(args, AddValidatorArgs):
            if any(
                args.name == v.name or args.public_key == v.public_key or args.address == v.address
                for v in self.validator_set
            ):
                return "validator_exists"
            added = ValidatorEntry(name=args.name, public_key=args.public_key, address=args.address)
            self.validator_set = (*self.validator_set, added)
        elif args.name not in names:
            return "unknown_validator"
        elif isinstance(args, RemoveValidatorArgs):
            self.validator_set = tuple(v for v in self.validator_set if v.name != args.name)
        else:
            self.validator_set = tuple(
                ValidatorEntry(name=v.name, public_key=args.public_key, address=v.address)
                if v.name == args.name
                else v
                for v in self.validator_set
            )
        return None

    def _record_governance(self, stx: SignedTransaction, height: int) -> None:
        args = {
            f.name: list(getattr(stx.body.args, f.name))
            if isinstance(getattr(stx.body.args, f.name), tuple)
            else getattr(stx.body.args, f.name)
            for f in dataclasses.fields(stx.body.args)
        }
        effective = None
        if stx.body.kind != "set_regulator_keys":
            if self.pending_last_seq is None:
                self.pending_last_seq = epoch_last_seq(
                    height,
                    checkpoint_interval_seqs=CHECKPOINT_INTERVAL_SEQS,
                    log_window_seqs=LOG_WINDOW_SEQS,
                )
                self.epochs[-1].last_seq = self.pending_last_seq
            effective = self.pending_last_seq + 1
        self.governance_records.append(
            GovernanceEntry(
                height=height,
                tx_id=stx.tx_id,
                kind=str(stx.body.kind),
                args=args,
                signatures=tuple(stx.signatures),
                effective_from_seq=effective,
            )
        )

    def _close_epoch(self, height: int) -> None:
        if height == self.pending_last_seq:
            self.epochs.append(
                Epoch(number=len(self.epochs), first_seq=height + 1, validators=self.validator_set)
            )
            self.pending_last_seq = None

    def add_evidence(self, record: EvidenceEntry) -> None:
        self.evidence_records.append(record)

    def _admission_problem(self, tx: bytes) -> tuple[SignedTransaction | None, str | None]:
        try:
            stx = decode_signed_transaction(tx, limits=self.tx_limits)
        except TxDecodeError:
            return None, "malformed"
        if stx.body.chain_id != self.chain_id:
            return stx, "wrong_chain"
        if not verify_transaction(stx):
            return stx, "bad_signature"
        if stx.tx_id in self.receipts or stx.tx_id in self._mempool_ids:
            return stx, "duplicate"
        if stx.body.nonce != self._next_nonce(stx.body.signer):
            return stx, "bad_nonce"
        return stx, None

    def _next_nonce(self, account: bytes) -> int:
        return self.pending_nonces.get(account, self.nonces.get(account, 0))

    # --- ClientBackend ----------------------------------------------------------------

    async def submit(self, tx: bytes) -> bytes:
        await self._enter("submit")
        stx, problem = self._admission_problem(tx)
        if problem is not None:
            raise RejectedError(problem)
        assert stx is not None
        self.mempool.append(stx)
        self._mempool_ids.add(stx.tx_id)
        self.pending_nonces[stx.body.signer] = stx.body.nonce + 1
        return stx.tx_id

    async def wait_receipt(self, tx_id: bytes) -> ReceiptInfo:
        await self._enter("wait_receipt")
        if self.autocommit and tx_id not in self.receipts and self.mempool:
            self.commit_block()
        while tx_id not in self.receipts:
            await self._committed.wait()
        return self.receipts[tx_id]

    async def receipt(self, tx_id: bytes) -> ReceiptInfo:
        await self._enter("receipt")
        if tx_id not in self.receipts:
            raise NotFoundError(f"no committed transaction {tx_id.hex()}")
        return self.receipts[tx_id]

    async def balance(self, asset: str, account: bytes) -> int:
        await self._enter("balance")
        if asset not in self.assets:
            raise NotFoundError(f"unknown asset {asset}")
        return self.balances.get((asset, account), 0)

    async def account(self, account: bytes) -> AccountInfo:
        await self._enter("account")
        if account not in self.accounts:
            raise NotFoundError(f"account {account.hex()} is not registered")
        return AccountInfo(
            account=account,
            registered=True,
            category="individual",
            kyc_hash=bytes(32),
            expires_at_ms=None,
            roles=(),
            frozen=False,
            frozen_assets=(),
            next_nonce=self.nonces.get(account, 0),
        )

    async def next_nonce(self, account: bytes) -> int:
        await self._enter("next_nonce")
        return self._next_nonce(account)

    async def asset(self, asset: str) -> AssetInfo:
        await self._enter("asset")
        found = self.assets.get(asset)
        if found is None:
            raise NotFoundError(f"unknown asset {asset}")
        return AssetInfo(
            asset=found.asset,
            name=found.name,
            decimals=found.decimals,
            cap=found.cap,
            supply=found.supply,
            paused=found.paused,
            issuer=found.issuer,
        )

    async def block(self, height: int) -> BlockInfo:
        await self._enter("block")
        if height > len(self.blocks):
            raise NotFoundError(f"no block at height {height}; the chain is at {len(self.blocks)}")
        return self.blocks[height - 1]

    async def wait_block(self, height: int) -> BlockInfo:
        await self._enter("wait_block")
        while height > len(self.blocks):
            await self._committed.wait()
        return self.blocks[height - 1]

    async def block_receipts(self, height: int) -> tuple[ReceiptInfo, ...]:
        await self._enter("block_receipts")
        return tuple(self.receipts[tx_id] for tx_id in self.blocks[height - 1].tx_ids)

    async def status(self) -> StatusInfo:
        await self._enter("status")
        return StatusInfo(
            node="v0",
            chain_id=self.chain_id,
            height=len(self.blocks),
            view=0,
            primary="v0",
            validators=tuple(ValidatorInfo(name=n, public_key=k) for n, k in VALIDATORS),
            state_digest=digest(pack(sorted([a, k, v] for (a, k), v in self.balances.items()))),
            mempool_size=len(self.mempool),
            tx_bytes_max=self.tx_limits.tx_bytes_max,
            memo_bytes_max=self.tx_limits.memo_bytes_max,
        )

    async def check(self, tx: bytes) -> CheckResult:
        await self._enter("check")
        _, problem = self._admission_problem(tx)
        return CheckResult(accepted=problem is None, reason=problem)

    async def history(self, account: bytes, limit: int, cursor: bytes | None) -> HistoryPage:
        await self._enter("history")
        ids = list(reversed(self.history_index.get(account, [])))
        start = 0 if cursor is None else int.from_bytes(cursor, "big")
        if start > len(ids):
            raise InvalidArgumentError("cursor is past the end of the history")
        page = ids[start : start + limit]
        end = start + len(page)
        return HistoryPage(
            account=account,
            tx_ids=tuple(page),
            next_cursor=end.to_bytes(4, "big") if end < len(ids) else None,
        )

    async def validators(self, height: int | None) -> ValidatorSetInfo:
        await self._enter("validators")
        tip = len(self.blocks)
        target = tip + 1 if height is None else height
        if target > tip + 1:
            raise NotFoundError(f"no block at height {height}; the chain is at {tip}")
        epoch = next(e for e in reversed(self.epochs) if e.first_seq <= target)
        current = self.epochs[-1].validators
        return ValidatorSetInfo(
            height=tip,
            epoch=epoch.number,
            first_seq=epoch.first_seq,
            last_seq=epoch.last_seq,
            validators=epoch.validators,
            pending_validators=None if self.validator_set == current else self.validator_set,
            pending_last_seq=self.pending_last_seq,
            regulator_keys=self.regulator_keys,
            regulator_threshold=self.regulator_threshold,
        )

    async def governance(self, limit: int, before_height: int | None) -> GovernancePage:
        await self._enter("governance")
        page, next_before = _page(self.governance_records, limit, before_height)
        return GovernancePage(records=tuple(page), next_before_height=next_before)

    async def evidence(self, limit: int, before_height: int | None) -> EvidenceList:
        await self._enter("evidence")
        page, next_before = _page(self.evidence_records, limit, before_height)
        return EvidenceList(records=tuple(page), next_before_height=next_before)


def _page(
    oldest_first: list[R], limit: int, before_height: int | None
) -> tuple[list[R], int | None]:
    """A page of records below `before_height`, newest first, as the real backend cuts it."""
    newest = [
        r for r in reversed(oldest_first) if before_height is None or r.height < before_height
    ]
    cut = page_by_height(newest[: limit + 1], limit, None)
    if isinstance(cut, int):
        cut = page_by_height(newest[: limit + 1], limit, newest)
        assert not isinstance(cut, int)
    return cut
