"""The LMDB-backed ledger: genesis, `apply_block`, `check` and queries.

One environment, named databases (node/ledger/keys.py). Applying a block is ONE write
transaction covering state, block record, certificate, receipts, indices and meta: LMDB
commits all of it or none of it, and with `sync=True` (the default) a returned
`apply_block` survives power loss.

Nonces and tx ids (decided, see docs/ledger.md): a transaction that is authentic (decodes,
right chain, valid signatures, the signer's next nonce) consumes its nonce and claims its
tx id (receipt + tx index) whether its rule applies it or rejects it. An unauthentic one
changes nothing: otherwise anyone could burn another account's nonce, or a forged copy
could shadow the real transaction's receipt.
"""

from __future__ import annotations

import itertools
import operator
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import lmdb
import msgpack

from config.genesis import Genesis
from consensus.encoding import digest
from consensus.epochs import Epoch
from node.ledger import bucket_log, history
from node.ledger import governance_queries as gq
from node.ledger import governance_state as gs
from node.ledger import keys as kl
from node.ledger import queries as q
from node.ledger.block import Block
from node.ledger.digest import block_hash, next_state_digest, tx_root, write_set_hash
from node.ledger.dispatch import RULES_BY_ARGS
from node.ledger.effects import BlockEffects
from node.ledger.errors import (
    BlockError,
    GenesisMismatchError,
    LedgerCorruptError,
    LedgerError,
    LedgerFullError,
    LedgerSchemaError,
)
from node.ledger.fastpath import transfer_fast_path
from node.ledger.governance_records import (
    EpochInfo,
    EvidenceRecord,
    GovernanceRecord,
    GovernanceView,
    ValidatorInfo,
)
from node.ledger.history import HeadsCache, HeadsCacheStats, HistoryEntry
from node.ledger.readers import Readers
from node.ledger.reasons import ReasonCode, TxRejectedError
from node.ledger.records import (
    AccountRecord,
    AccountStatus,
    AssetRecord,
    BlockRecord,
    Receipt,
    ReceiptStatus,
    decode_int,
    encode_int,
)
from node.ledger.rules import TxContext
from node.ledger.state_cache import StateCache, StateCacheStats
from node.ledger.txn import Txn
from node.ledger.view import StateView, ViewOverlay, WriteSet, put_records
from node.tx.codec import decode_signed_transaction
from node.tx.errors import TxDecodeError
from node.tx.limits import DEFAULT_TX_LIMITS, TxLimits
from node.tx.model import SignedTransaction
from node.tx.verify import regulator_approvals, regulator_quorum_ok, verify_transaction

T = TypeVar("T")
_new_receipt = tuple.__new__
_first = operator.itemgetter(0)
Decoded = SignedTransaction | TxDecodeError
_CACHED_DBS = (kl.ACCOUNTS, kl.BALANCES, kl.NONCES)  # what the StateCache holds


def _written_state_keys(blocks: Sequence[BlockEffects]) -> set[bytes]:
    """Every account, balance and nonce key `blocks` wrote."""
    return {key for e in blocks for db in _CACHED_DBS for key, _ in e.write_set.get(db, ())}


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerLimits:
    map_size_bytes: int = 8 << 30  # LMDB map; sparse, so only used pages take disk
    block_txs_max: int = 10_000
    certificate_bytes_max: int = 1 << 20
    consensus_state_bytes_max: int = 64 << 20
    history_page_max: int = 1_000
    tx: TxLimits = field(default=DEFAULT_TX_LIMITS)
    # The consensus checkpoint interval and log window: they fix where an epoch ends
    # (consensus/epochs.py), so every validator must use the same values.
    checkpoint_interval_seqs: int = 16
    log_window_seqs: int = 32
    # Decoded accounts, balances and nonces kept between blocks, and loaded whole at open when
    # they fit (node/ledger/state_cache.py): a local speed/memory trade (~250 bytes an entry,
    # so ~1 GB at this default, 1.3-2M accounts of one asset), never part of any outcome. 0: off.
    state_cache_entries_max: int = 4_000_000
    # Balance writes go to a bucketed log while the balances tree holds at least
    # `balance_log_from_entries`, one record per bucket of accounts a block, each block
    # sweeping one bucket into the tree (node/ledger/bucket_log.py): layout only. A power of
    # two up to 256; 0: off. Changing it merges the log into the tree when the store opens.
    balance_log_buckets: int = 128
    balance_log_from_entries: int = 65_536
    # Accounts' history heads the writer keeps between blocks (node/ledger/history.py), so
    # linking a block's history entries reads no page: ~160 bytes an entry. 0: off.
    history_heads_cache_entries_max: int = 1_000_000
    # The same log in front of the history heads (one per account that ever transacted):
    # layout only. 0: off.
    history_heads_log_buckets: int = 128
    history_heads_log_from_entries: int = 65_536

    def __post_init__(self) -> None:
        if not 1 << 20 <= self.map_size_bytes <= 1 << 44:
            raise ValueError(f"map_size_bytes must be 1 MiB..16 TiB, got {self.map_size_bytes}")
        if not 1 <= self.block_txs_max <= 1_000_000:
            raise ValueError(f"block_txs_max must be 1..1000000, got {self.block_txs_max}")
        if not 0 <= self.certificate_bytes_max <= 64 << 20:
            raise ValueError("certificate_bytes_max must be 0..64 MiB")
        if not 1 <= self.consensus_state_bytes_max <= 1 << 30:
            raise ValueError("consensus_state_bytes_max must be 1 B..1 GiB")
        if not 1 <= self.history_page_max <= 100_000:
            raise ValueError("history_page_max must be 1..100000")
        for name in ("balance_log", "history_heads_log"):
            buckets = getattr(self, f"{name}_buckets")
            from_entries = getattr(self, f"{name}_from_entries")
            if buckets not in bucket_log.BUCKETS_ALLOWED:
                raise ValueError(
                    f"{name}_buckets must be 0 (off) or a power of two from 2 to 256, got {buckets}"
                )
            if not 0 <= from_entries <= 1 << 40:
                raise ValueError(f"{name}_from_entries must be 0..{1 << 40}, got {from_entries}")
        if not 0 <= self.history_heads_cache_entries_max <= 100_000_000:
            raise ValueError(
                "history_heads_cache_entries_max must be 0..100000000,"
                f" got {self.history_heads_cache_entries_max}"
            )
        if not 0 <= self.state_cache_entries_max <= 100_000_000:
            raise ValueError(
                f"state_cache_entries_max must be 0..100000000, got {self.state_cache_entries_max}"
            )
        k, w = self.checkpoint_interval_seqs, self.log_window_seqs
        if type(k) is not int or not 1 <= k <= 1 << 20:
            raise ValueError(f"checkpoint_interval_seqs must be 1..{1 << 20}, got {k!r}")
        if type(w) is not int or w < 2 * k or w % k != 0 or w > 1 << 24:
            raise ValueError(
                f"log_window_seqs must be a multiple of checkpoint_interval_seqs ({k}),"
                f" at least {2 * k} and at most {1 << 24}, got {w!r}"
            )


def prepare_tx(raw: bytes, limits: TxLimits = DEFAULT_TX_LIMITS) -> Decoded:
    """Decode one raw transaction for `apply_block(decoded=...)`; never raises for bad bytes."""
    try:
        return decode_signed_transaction(raw, limits=limits)
    except TxDecodeError as exc:
        return exc


class Ledger:
    """Not thread-safe for writers: one task applies blocks; readers may run anywhere."""

    def __init__(
        self, env: lmdb.Environment, dbs: dict[str, Any], genesis: Genesis, limits: LedgerLimits
    ) -> None:
        self._env = env
        self._dbs = dbs
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.limits = limits
        # Governance as of the latest height read or written (see _governance).
        self._gov_snapshot: gs.GovernanceSnapshot | None = None
        self._state_cache = StateCache(limits.state_cache_entries_max)
        # The logs in front of the two large random-key trees (node/ledger/bucket_log.py),
        # and the snapshots their indexes' readers hold.
        self._balance_log = bucket_log.BucketLog(
            bucket_log.BALANCES,
            buckets=limits.balance_log_buckets,
            from_entries=limits.balance_log_from_entries,
        )
        heads_log = bucket_log.BucketLog(
            bucket_log.HISTORY_HEADS,
            buckets=limits.history_heads_log_buckets,
            from_entries=limits.history_heads_log_from_entries,
        )
        self._logs = (self._balance_log, heads_log)
        self._readers = Readers(0)
        self._history_heads = HeadsCache(limits.history_heads_cache_entries_max, log=heads_log)
        # Evaluations share the state cache, so they must not overlap: a second one at the
        # same time is refused rather than allowed to corrupt it.
        self._evaluating = threading.Lock()

    # ------------------------------------------------------------------ open / genesis

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        genesis: Genesis,
        *,
        limits: LedgerLimits | None = None,
        sync: bool = True,
    ) -> Ledger:
        """Create (applying genesis as height 0) or reopen the ledger in directory `path`.

        Raises GenesisMismatchError if the directory holds another chain or genesis.
        `sync=False` trades durability for speed and is for tests only.
        """
        limits = limits or LedgerLimits()
        Path(path).mkdir(parents=True, exist_ok=True)
        env = lmdb.open(
            str(path),
            subdir=True,
            max_dbs=len(kl.ALL_DBS) + len(kl.LEGACY_DBS),  # to upgrade an older store
            map_size=limits.map_size_bytes,
            sync=sync,
            metasync=sync,
            readahead=False,  # random point reads: readahead only pollutes the page cache
        )
        try:
            dbs = {name: env.open_db(name.encode()) for name in kl.ALL_DBS}
            ledger = cls(env, dbs, genesis, limits)
            ledger._init_or_check()
            ledger._warm_caches()
        except BaseException:
            env.close()
            raise
        return ledger

    def _init_or_check(self) -> None:
        meta = self._dbs[kl.META]
        g_digest = self.genesis.digest()
        with self._env.begin() as txn:
            stored_chain = txn.get(kl.META_CHAIN_ID, db=meta)
            stored_digest = txn.get(kl.META_GENESIS_DIGEST, db=meta)
            raw_schema = txn.get(kl.META_SCHEMA, db=meta)
        if stored_chain is not None:
            schema = 1 if raw_schema is None else decode_int(raw_schema)
            if schema > kl.SCHEMA_VERSION:
                raise LedgerSchemaError(
                    f"data directory has store schema {schema}, this build reads up to"
                    f" {kl.SCHEMA_VERSION}: it was written by a later assetledger; run that"
                    " version or a later one (downgrades are not supported)"
                )
            if stored_chain.decode() != self.chain_id:
                raise GenesisMismatchError(
                    f"data directory belongs to chain {stored_chain.decode()!r},"
                    f" not {self.chain_id!r}; use another data directory"
                )
            if stored_digest != g_digest:
                raise GenesisMismatchError(
                    f"data directory was created from another genesis"
                    f" (stored digest {stored_digest.hex() if stored_digest else None},"
                    f" this genesis {g_digest.hex()}); use the original genesis file"
                )
            # A ledger created before governance existed: its records follow from genesis.
            try:
                with self._env.begin(write=True) as txn:
                    gs.ensure_initialised(txn, self._dbs, self.genesis)
                    if schema < kl.SCHEMA_VERSION:  # upgraded in place, in this one transaction
                        if schema < 5:
                            self._merge_journals(txn)
                        if schema < 3:
                            self._upgrade_history(txn)
                        txn.put(kl.META_SCHEMA, encode_int(kl.SCHEMA_VERSION), db=meta)
                    self._open_logs(txn)
            except lmdb.MapFullError:  # from any put or the commit: the transaction is undone
                # Converting the history keeps both layouts in the map until the old one is
                # dropped, at the very end; merging a journal or a log copies tree pages.
                needs = " for a second copy of its history" if schema < 3 else ""
                what = (
                    f"upgrading the store from schema {schema} to {kl.SCHEMA_VERSION}"
                    if schema < kl.SCHEMA_VERSION
                    else "merging a balance or heads log into its tree (its bucket count changed)"
                )
                raise LedgerFullError(
                    f"{what} needs room{needs}: the store reached"
                    f" map_size_bytes={self.limits.map_size_bytes}. Nothing was changed; open it"
                    " with a larger map_size_bytes (node.toml [limits])"
                ) from None
            return
        try:
            self._apply_genesis(g_digest)
        except lmdb.MapFullError:  # the transaction is undone: the directory stays empty
            raise LedgerFullError(
                f"genesis ({len(self.genesis.accounts)} accounts) does not fit in"
                f" map_size_bytes={self.limits.map_size_bytes}. Nothing was written; raise"
                " map_size_bytes (node.toml [limits])"
            ) from None

    def _legacy_db(self, txn: Txn, name: str) -> Any:
        """An older schema's table, or None if it was never created."""
        try:
            return self._env.open_db(name.encode(), txn=txn, create=False)
        except lmdb.NotFoundError:
            return None

    def _upgrade_history(self, txn: Txn) -> None:
        legacy = self._legacy_db(txn, kl.LEGACY_HISTORY)
        if legacy is not None:
            history.upgrade_from_schema_2(txn, self._dbs, legacy)

    def _merge_journals(self, txn: Txn) -> None:
        """Schemas 2-4 kept recent balances and heads in journal tables, whose value wins
        over the tree's: move them into their trees and drop them (schema 5)."""
        for name, tree in (
            (kl.LEGACY_BALANCES_RECENT, kl.BALANCES),
            (kl.LEGACY_HISTORY_HEADS_RECENT, kl.HISTORY_HEADS),
        ):
            legacy = self._legacy_db(txn, name)
            if legacy is not None:
                # Streamed: the old limits let a journal hold 16M entries.
                txn.cursor(db=self._dbs[tree]).putmulti(txn.cursor(db=legacy).iternext())
                txn.drop(legacy, delete=True)
        for key in kl.LEGACY_META_SWEEPS:
            txn.delete(key, db=self._dbs[kl.META])

    def _open_logs(self, txn: Txn) -> None:
        """(In the write transaction that opens the store.) Each log checks its layout and
        builds its index; readers start from the tip."""
        height = self._tip(txn)[0]
        for log in self._logs:
            log.open(txn, self._dbs, height)
        self._readers = Readers(height)

    def _warm_caches(self) -> None:
        """Fill the state cache and the history heads cache from one snapshot, each if it
        fits (node/ledger/state_cache.py, history.py)."""
        with self._env.begin(buffers=False) as txn:
            tip_hash = self._tip(txn)[2]
            self._warm_state_cache(txn, tip_hash)
            self._history_heads.warm(txn, self._dbs, tip_hash)

    def _warm_state_cache(self, txn: Txn, tip_hash: bytes) -> None:
        """Load the whole state into the state cache if it fits in three quarters of its
        bound (node/ledger/state_cache.py): then evaluating a block reads no store page,
        however many accounts there are, and a quarter is left for new keys."""
        cache = self._state_cache
        if not cache.entries_max:
            return
        dbs = self._dbs
        counted = txn.stat(dbs[kl.ACCOUNTS])["entries"] + txn.stat(dbs[kl.NONCES])["entries"]
        if (counted + self._balance_log.entries(txn, dbs)) * 4 > cache.entries_max * 3:
            # Too large, or so close to the bound that the first new keys would make the
            # next block cut half of it: the cache fills as blocks read.
            return
        seen: dict[Any, Any] = {}
        account = AccountRecord.decode_shared
        cache.warm(
            tip_hash,
            accounts=((k, account(v, seen)) for k, v in txn.cursor(dbs[kl.ACCOUNTS])),
            balances=((k, decode_int(v)) for k, v in bucket_log.BALANCES.tree_then_log(txn, dbs)),
            nonces=((k, decode_int(v)) for k, v in txn.cursor(dbs[kl.NONCES])),
        )

    def _apply_genesis(self, g_digest: bytes) -> None:
        g = self.genesis
        with self._env.begin(write=True) as txn:
            view = StateView(txn, self._dbs)
            for spec in g.accounts:
                view.put_account(
                    spec.public_key,
                    AccountRecord(
                        category=str(spec.category),
                        kyc_hash=spec.kyc_hash,
                        expires_at_ms=spec.expires_at_ms,
                        status=AccountStatus.REGISTERED,
                        recovered_to=None,
                        account_freeze=None,
                        asset_freezes=(),
                        assets=(),
                        registered_height=0,
                    ),
                )
                for role in sorted(spec.roles):
                    view.set_role(spec.public_key, str(role), True)
            for a in g.assets:
                view.put_asset(
                    AssetRecord(
                        asset_id=a.asset_id,
                        name=a.name,
                        decimals=a.decimals,
                        cap=a.cap,
                        issuer=a.issuer,
                        document_hash=a.document_hash,
                        supply=0,
                        paused=False,
                        created_height=0,
                    )
                )
            write_set = view.write_set()
            for db_name, items in write_set.items():
                put_records(txn, self._dbs[db_name], db_name, items)
            # Not in the write set: implied by the genesis digest (node/ledger/governance_state.py).
            gs.ensure_initialised(txn, self._dbs, g)
            state = next_state_digest(0, g_digest, write_set_hash(write_set))
            root = tx_root(())
            bhash = block_hash(
                chain_id=g.chain_id,
                height=0,
                timestamp_ms=g.genesis_time_ms,
                prev_block_hash=g_digest,
                root=root,
            )
            record = BlockRecord(
                height=0,
                timestamp_ms=g.genesis_time_ms,
                prev_block_hash=g_digest,
                tx_root=root,
                block_hash=bhash,
                state_digest=state,
                txs=(),
                outcomes=(),
            )
            txn.put(kl.height_key(0), record.encode(), db=self._dbs[kl.BLOCKS])
            self._put_meta(txn, 0, g.genesis_time_ms, bhash, state)
            meta = self._dbs[kl.META]
            txn.put(kl.META_CHAIN_ID, g.chain_id.encode(), db=meta)
            txn.put(kl.META_GENESIS_DIGEST, g_digest, db=meta)
            txn.put(kl.META_SCHEMA, encode_int(kl.SCHEMA_VERSION), db=meta)
            self._open_logs(txn)

    def _put_meta(
        self, txn: Txn, height: int, timestamp_ms: int, bhash: bytes, state: bytes
    ) -> None:
        meta = self._dbs[kl.META]
        txn.put(kl.META_HEIGHT, encode_int(height), db=meta)
        txn.put(kl.META_TIMESTAMP_MS, encode_int(timestamp_ms), db=meta)
        txn.put(kl.META_BLOCK_HASH, bhash, db=meta)
        txn.put(kl.META_STATE_DIGEST, state, db=meta)

    def _tip(self, txn: Txn) -> tuple[int, int, bytes, bytes]:
        meta = self._dbs[kl.META]
        values = [
            txn.get(key, db=meta)
            for key in (
                kl.META_HEIGHT,
                kl.META_TIMESTAMP_MS,
                kl.META_BLOCK_HASH,
                kl.META_STATE_DIGEST,
            )
        ]
        height, timestamp_ms, bhash, state = values
        if height is None or timestamp_ms is None or bhash is None or state is None:
            raise LedgerCorruptError("meta record incomplete: the data directory is damaged")
        return decode_int(height), decode_int(timestamp_ms), bhash, state

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ apply

    def apply_block(
        self,
        block: Block,
        *,
        decoded: Sequence[Decoded] | None = None,
        signatures_ok: Sequence[bool] | None = None,
        certificate: bytes | None = None,
    ) -> list[Receipt]:
        """Apply one block atomically and durably; return one receipt per transaction.

        `decoded[i]` / `signatures_ok[i]` may carry work already done for `block.txs[i]`
        (decoding, signature checks in worker threads) so each tx is processed once; the
        caller guarantees they belong to exactly those bytes. Raises BlockError (store
        unchanged) if the block does not fit on the tip. To apply a stream of blocks with
        each commit overlapped by the next block's evaluation, use BlockPipeline.
        """
        effects = self.evaluate(
            block, decoded=decoded, signatures_ok=signatures_ok, certificate=certificate
        )
        self.write(effects)
        return effects.receipts

    def evaluate(
        self,
        block: Block,
        *,
        decoded: Sequence[Decoded] | None = None,
        signatures_ok: Sequence[bool] | None = None,
        certificate: bytes | None = None,
        after: Sequence[BlockEffects] = (),
    ) -> BlockEffects:
        """Run `block` against the tip, or against the state right after `after`, writing
        nothing. See `apply_block`.

        `after` is for evaluating ahead of commits (node/ledger/pipeline.py): consecutive
        evaluated blocks, in height order, that include every block not committed before
        this call (blocks committed meanwhile may stay in: their writes equal the store's).
        None of them may have touched governance: governance is read from the store, so the
        caller waits for such a block's commit first.
        """
        n = len(block.txs)
        if n > self.limits.block_txs_max:
            raise BlockError(f"{n} transactions exceeds block_txs_max={self.limits.block_txs_max}")
        if decoded is not None and len(decoded) != n:
            raise BlockError(f"decoded has {len(decoded)} entries for {n} transactions")
        if signatures_ok is not None and len(signatures_ok) != n:
            raise BlockError(f"signatures_ok has {len(signatures_ok)} entries for {n} transactions")
        if certificate is not None and len(certificate) > self.limits.certificate_bytes_max:
            raise BlockError(
                f"certificate of {len(certificate)} bytes exceeds"
                f" certificate_bytes_max={self.limits.certificate_bytes_max}"
            )
        for prev, nxt in itertools.pairwise(after):
            if nxt.height != prev.height + 1:
                raise BlockError(f"after: block {nxt.height} does not follow {prev.height}")
        for prev in after:
            if prev.governance_touched:
                raise BlockError(
                    f"block {prev.height} changed governance: evaluate the next block only"
                    " once it is committed"
                )
        if not self._evaluating.acquire(blocking=False):
            raise LedgerError("another evaluation is running: a ledger has one writer")
        try:
            with self._readers.reading(), self._env.begin() as txn:
                return self._evaluate_in(txn, block, decoded, signatures_ok, certificate, after)
        finally:
            self._evaluating.release()

    def _evaluate_in(  # noqa: PLR0917 -- private, one caller
        self,
        txn: Txn,
        block: Block,
        decoded: Sequence[Decoded] | None,
        signatures_ok: Sequence[bool] | None,
        certificate: bytes | None,
        after: Sequence[BlockEffects],
    ) -> BlockEffects:
        if not after:
            height, last_ts, prev_hash, prev_state = self._tip(txn)
        else:
            last = after[-1]
            height, last_ts = last.height, last.timestamp_ms
            prev_hash, prev_state = last.block_hash, last.state_digest
        if block.height != height + 1:
            raise BlockError(f"block height {block.height} does not follow the tip {height}")
        if block.timestamp_ms < last_ts:
            raise BlockError(
                f"block timestamp {block.timestamp_ms} is before the previous block's {last_ts}"
            )
        h = block.height
        ts = block.timestamp_ms
        cache = self._state_cache
        # The cache follows `after`'s last block and keeps every key `after` wrote
        # (state_cache.py), so it stands in for their overlays; otherwise they are decoded.
        current = cache.position == prev_hash
        shared = cache.begin(prev_hash, keep=lambda: _written_state_keys(after))
        view = StateView(
            txn,
            self._dbs,
            [e.overlay for e in after],
            shared,
            shared_current=current,
            read_balance=self._balance_reader(txn),
        )
        ctx = self._context(txn, view, h, ts, after[-1] if after else None)
        receipts: list[Receipt] = []
        # What each transaction that claimed its id (authentic) adds besides state: its
        # receipt, its tx index entry and its accounts' history entries.
        receipt_items: list[tuple[bytes, bytes]] = []
        index_items: list[tuple[bytes, bytes]] = []
        history_items: history.HistoryItems = []
        pack = msgpack.Packer(use_bin_type=True).pack  # local: a Packer is not thread-safe
        hkey = kl.height_key(h)
        run = self._run
        fast = transfer_fast_path(view, ctx, chain_id=self.chain_id)
        txs = block.txs
        tx_limits = self.limits.tx
        for i in range(len(txs)):
            item = decoded[i] if decoded is not None else prepare_tx(txs[i], tx_limits)
            sig_ok = None if signatures_ok is None else signatures_ok[i]
            done = None
            if type(item) is SignedTransaction:
                if sig_ok is None:  # checked here, not in _run, so the fast path can use it
                    sig_ok = verify_transaction(item)
                # The transfer fast path (node/ledger/fastpath.py) takes what it can prove
                # applies, with the very receipt and writes of _run; anything else falls
                # through to _run, which finds the precise outcome.
                if sig_ok:
                    done = fast(item, i)
            receipt, touched = done or run(view, ctx, item, txs[i], sig_ok, h, i)
            receipts.append(receipt)
            if touched is not None:
                tx_id = receipt.tx_id
                position = hkey + i.to_bytes(kl.INDEX_BYTES, "big")  # == kl.position_key
                # Receipts are keyed by position, so a block's receipts are appended to the
                # end of the tree (a few dirty pages) instead of scattered by random tx ids.
                receipt_items.append((position, receipt.encode(pack)))
                index_items.append((tx_id, pack((h, i))))
                history_items.append((position, tx_id, touched))

        gov = ctx.gov
        gov.end_block(h)  # closes the epoch if h is its scheduled last block
        write_set = view.write_set()
        if gov.touched:  # only blocks with governance changes (or an epoch end) pay for this
            gov.add_writes(write_set)
        if receipt_items:  # already in key order
            write_set[kl.RECEIPTS] = receipt_items  # type: ignore[assignment]
        # Key-sorted for bulk inserts; keys are unique, so comparing keys alone is enough.
        index_items.sort(key=_first)

        state = next_state_digest(h, prev_state, write_set_hash(write_set))
        root = tx_root(block.txs)
        bhash = block_hash(
            chain_id=self.chain_id, height=h, timestamp_ms=ts, prev_block_hash=prev_hash, root=root
        )
        record = BlockRecord(
            height=h,
            timestamp_ms=ts,
            prev_block_hash=prev_hash,
            tx_root=root,
            block_hash=bhash,
            state_digest=state,
            txs=tuple(map(bytes, block.txs)),
            outcomes=tuple(
                [ReceiptStatus.APPLIED if r.reason is None else r.reason for r in receipts]
            ),
        )
        snapshot = gov.next_snapshot()
        # The view's dicts now hold the state after this block; its signers are the hint
        # for what to keep when the cache is cut (state_cache.py).
        cache.end(bhash, senders=(key for key, _ in write_set.get(kl.NONCES, ())))
        # Cached now: a snapshot is keyed by its height, and if this block is never
        # committed the tip stays below h, so nothing reads it until height h is evaluated
        # again (which replaces it).
        self._gov_snapshot = snapshot
        return BlockEffects(
            height=h,
            timestamp_ms=ts,
            block_hash=bhash,
            state_digest=state,
            receipts=receipts,
            write_set=write_set,
            index_items=index_items,
            history_items=history_items,
            block_record=record.encode(),
            certificate=None if certificate is None else bytes(certificate),
            overlay=ViewOverlay(write_set),
            governance_touched=gov.touched,
            governance_snapshot=snapshot,
        )

    def _balance_reader(
        self, txn: Txn, snapshot: int | None = None
    ) -> Callable[[bytes], bytes | None]:
        """A stored balance at `txn` through the balance log's index, for a reader inside
        `self._readers.reading()` (node/ledger/bucket_log.py); `snapshot`: `txn`'s height."""
        if snapshot is None:
            snapshot = self._tip(txn)[0]
        read, dbs = self._balance_log.read, self._dbs
        return lambda key: read(txn, dbs, key, snapshot)

    def write(self, effects: BlockEffects) -> None:
        """Write an evaluated block in one LMDB transaction and commit it (durably, with
        sync=True). Raises BlockError, store unchanged, unless the tip is the block's parent."""
        try:
            with self._write_txn(f"block {effects.height} was not applied") as txn:
                self.write_in(txn, effects)
        except BaseException:
            self.write_aborted()
            raise
        self.write_committed(effects.height)

    def write_committed(self, height: int) -> None:
        """(The writer, after committing blocks up to `height`.) The logs may forget what
        no reader can need any more."""
        floor = self._readers.committed(height)
        for log in self._logs:
            log.committed(height, floor)

    def write_aborted(self) -> None:
        """(The writer, after a write transaction of blocks failed or was aborted.)"""
        for log in self._logs:
            log.aborted()

    def write_in(self, txn: Txn, effects: BlockEffects) -> None:
        """The puts of `write`, into `txn` (the caller commits)."""
        h = effects.height
        tip = self._tip(txn)
        if tip[0] != h - 1:
            raise BlockError(f"block {h} was evaluated for another tip: the tip is {tip[0]}")
        dbs = self._dbs
        balances: list[tuple[bytes, bytes]] = []
        for db_name, items in effects.write_set.items():
            db = dbs[db_name]
            if db_name == kl.BALANCES:
                balances = items  # type: ignore[assignment]  # balances are never deleted
                continue
            if db_name != kl.RECEIPTS:
                put_records(txn, db, db_name, items)
                continue
            # Positions grow: append to the end of the tree (a few dirty pages).
            _, added = txn.cursor(db=db).putmulti(items, append=True)  # type: ignore[arg-type]
            if added != len(items):  # an append that was not after the last key
                raise LedgerCorruptError(f"receipts of block {h} are not after the stored ones")
        self._balance_log.put(txn, dbs, h, balances)  # every block: each sweeps a bucket
        if effects.index_items:
            txn.cursor(db=dbs[kl.TX_INDEX]).putmulti(effects.index_items)
        self._history_heads.write(
            txn,
            dbs,
            height=h,
            parent_hash=tip[2],
            block_hash=effects.block_hash,
            items=effects.history_items,
        )
        hkey = kl.height_key(h)
        txn.put(hkey, effects.block_record, db=dbs[kl.BLOCKS])
        if effects.certificate is not None:
            txn.put(hkey, effects.certificate, db=dbs[kl.CERTIFICATES])
        self._put_meta(txn, h, effects.timestamp_ms, effects.block_hash, effects.state_digest)

    @contextmanager
    def _write_txn(self, not_written: str) -> Iterator[Txn]:
        """A write transaction, committed at the end; a full map in any put or in the commit
        aborts it and is `_full(not_written)`. (The pipeline's writer, which commits apart
        from its puts, converts the same way.)"""
        try:
            with self._env.begin(write=True) as txn:
                yield txn
        except lmdb.MapFullError:
            raise self._full(not_written) from None

    def _full(self, not_written: str) -> LedgerFullError:
        """The store is full: `not_written` says what was not (the store is unchanged)."""
        return LedgerFullError(
            f"the store reached map_size_bytes={self.limits.map_size_bytes}; {not_written}."
            " Restart with a larger map_size_bytes (node.toml [limits])."
        )

    def _run(  # noqa: PLR0917 -- positional: called once per transaction
        self,
        view: StateView,
        ctx: TxContext,
        item: Decoded,
        raw: bytes,
        sig_ok: bool | None,
        height: int,
        index: int,
    ) -> tuple[Receipt, tuple[bytes, ...] | None]:
        """Evaluate one transaction on `view`. Returns the receipt and, if the tx claimed its
        id (authentic), the accounts whose history it joins. (Positional arguments and a
        tuple-built receipt: this runs once per transaction.) An applied transfer takes
        node/ledger/fastpath.py instead: a check added here must be added there too."""
        if isinstance(item, TxDecodeError):
            return self._unauthentic(digest(raw), height, index, ReasonCode.MALFORMED, str(item))
        stx = item
        body = stx.body
        if body.chain_id != self.chain_id:
            return self._unauthentic(
                stx.tx_id, height, index, ReasonCode.WRONG_CHAIN, f"signed for {body.chain_id!r}"
            )
        if sig_ok is None:
            sig_ok = verify_transaction(stx)
        if not sig_ok:
            return self._unauthentic(
                stx.tx_id, height, index, ReasonCode.BAD_SIGNATURE, "a signature does not verify"
            )
        if not regulator_quorum_ok(stx, ctx.regulator_keys, ctx.regulator_threshold):
            return self._unauthentic(
                stx.tx_id,
                height,
                index,
                ReasonCode.REGULATOR_THRESHOLD_NOT_MET,
                f"{regulator_approvals(stx, ctx.regulator_keys)} distinct regulator"
                f" signatures, {ctx.regulator_threshold} required",
            )
        signer = body.signer
        expected = view.nonce(signer)
        if body.nonce != expected:
            return self._unauthentic(
                stx.tx_id,
                height,
                index,
                ReasonCode.BAD_NONCE,
                f"nonce {body.nonce}, expected {expected}",
            )
        args = body.args
        ctx.bind(stx, index)
        reason: ReasonCode | None
        try:
            touched = RULES_BY_ARGS[type(args)](ctx, args)
        except TxRejectedError as rej:
            status, reason, detail = ReceiptStatus.REJECTED, rej.code, rej.detail
            touched = (signer,)  # a rejected tx joins only its signer's history
        else:
            status, reason, detail = ReceiptStatus.APPLIED, None, ""
        # Authentic: the nonce is consumed either way (after the rule, which never writes
        # when it rejects, so this is the tx's only write in that case).
        view.set_nonce(signer, expected + 1)
        audit_reason, order_ref = args.audit()
        receipt = _new_receipt(
            Receipt,
            (
                stx.tx_id,
                height,
                index,
                status,
                reason,
                body.kind,
                signer,
                audit_reason,
                order_ref,
                detail,
            ),
        )  # == Receipt(...) in field order, without NamedTuple's Python-level __new__
        # Duplicates in `touched` are harmless: an account gets one entry (history.py).
        return receipt, touched

    def _governance(self, txn: Txn, tip: int) -> gs.GovernanceSnapshot:
        """Regulator keys and pending epoch end at `tip`: the cached snapshot when it is for
        that height (immutable, so safe across threads), else read from the store."""
        snapshot = self._gov_snapshot
        if snapshot is None or snapshot.height != tip:
            snapshot = gs.read_snapshot(txn, self._dbs, tip)
            self._gov_snapshot = snapshot
        return snapshot

    def _context(
        self,
        txn: Txn,
        view: StateView,
        height: int,
        timestamp_ms: int,
        after: BlockEffects | None = None,
    ) -> TxContext:
        """The context for block `height` (the tip, or `after`, is height - 1) over `txn`."""
        snapshot = self._governance(txn, height - 1) if after is None else after.governance_snapshot
        limits = self.limits
        return TxContext(
            view=view,
            height=height,
            timestamp_ms=timestamp_ms,
            regulator_keys=snapshot.regulator_key_set,
            regulator_threshold=snapshot.regulator_threshold,
            gov=gs.GovernanceState(
                txn,
                self._dbs,
                snapshot,
                checkpoint_interval_seqs=limits.checkpoint_interval_seqs,
                log_window_seqs=limits.log_window_seqs,
            ),
        )

    @staticmethod
    def _unauthentic(
        tx_id: bytes, height: int, index: int, reason: ReasonCode, detail: str
    ) -> tuple[Receipt, None]:
        receipt = Receipt(
            tx_id=tx_id,
            height=height,
            index=index,
            status=ReceiptStatus.REJECTED,
            reason=reason,
            detail=detail,
        )
        return receipt, None

    # ------------------------------------------------------------------ pre-flight

    def check(
        self,
        tx: bytes | SignedTransaction,
        *,
        signature_ok: bool | None = None,
        timestamp_ms: int | None = None,
    ) -> Receipt:
        """Evaluate `tx` against the current state as if it were the next block's only
        transaction, writing nothing. Same rule code as `apply_block`."""
        with self._readers.reading(), self._env.begin() as txn:
            height, last_ts, _, _ = self._tip(txn)
            if isinstance(tx, SignedTransaction):
                item: Decoded = tx
                raw = tx.encode()
            else:
                raw = bytes(tx)
                item = prepare_tx(raw, self.limits.tx)
            view = StateView(txn, self._dbs, read_balance=self._balance_reader(txn, height))
            ts = last_ts if timestamp_ms is None else timestamp_ms
            receipt, _ = self._run(
                view,
                self._context(txn, view, height + 1, ts),
                item,
                raw,
                signature_ok,
                height + 1,
                0,
            )
            return receipt

    # ------------------------------------------------------------------ consensus state

    def save_consensus_state(self, data: bytes) -> None:
        """Durably replace the replica's persisted protocol state (opaque to the ledger).

        Its own write transaction, committed (and with sync=True fsynced) before returning:
        the replica may only send what attests to this state after the call returns.
        """
        if len(data) > self.limits.consensus_state_bytes_max:
            raise LedgerError(
                f"consensus state of {len(data)} bytes exceeds"
                f" consensus_state_bytes_max={self.limits.consensus_state_bytes_max}"
            )
        with self._write_txn("the consensus state was not saved") as txn:
            txn.put(kl.CONSENSUS_STATE, bytes(data), db=self._dbs[kl.CONSENSUS])

    def load_consensus_state(self) -> bytes | None:
        return self._read(lambda txn: txn.get(kl.CONSENSUS_STATE, db=self._dbs[kl.CONSENSUS]))

    # ------------------------------------------------------------------ queries

    def _read(self, fn: Callable[[Txn], T]) -> T:
        with self._env.begin() as txn:
            return fn(txn)

    @property
    def height(self) -> int:
        return self._read(lambda txn: self._tip(txn)[0])

    @property
    def state_digest(self) -> bytes:
        return self._read(lambda txn: self._tip(txn)[3])

    @property
    def last_timestamp_ms(self) -> int:
        """Timestamp of the last applied block (genesis time at height 0)."""
        return self._read(lambda txn: self._tip(txn)[1])

    @property
    def last_block_hash(self) -> bytes:
        return self._read(lambda txn: self._tip(txn)[2])

    def history_heads_stats(self) -> HeadsCacheStats:
        """Size of the writer's history heads cache and what it loaded at open (node metrics
        and log; read from any thread)."""
        return self._history_heads.stats()

    def state_cache_stats(self) -> StateCacheStats:
        """Size and counters of the state cache between blocks (node metrics, benches)."""
        return self._state_cache.stats()

    def balance(self, asset_id: str, account: bytes) -> int:
        return self._read(lambda txn: q.balance(txn, self._dbs, asset_id, account))

    def account(self, public_key: bytes) -> q.AccountInfo | None:
        return self._read(lambda txn: q.account(txn, self._dbs, public_key))

    def asset(self, asset_id: str) -> AssetRecord | None:
        return self._read(lambda txn: q.asset(txn, self._dbs, asset_id))

    def nonce(self, account: bytes) -> int:
        """The next nonce this account must use."""
        return self._read(lambda txn: q.nonce(txn, self._dbs, account))

    def receipt(self, tx_id: bytes) -> Receipt | None:
        return self._read(lambda txn: q.receipt(txn, self._dbs, tx_id))

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        return self._read(lambda txn: q.tx_location(txn, self._dbs, tx_id))

    def block(self, height: int) -> BlockRecord | None:
        return self._read(lambda txn: q.block(txn, self._dbs, height))

    def history(
        self, account: bytes, limit: int = 100, before: tuple[int, int] | None = None
    ) -> list[HistoryEntry]:
        """Newest first; `before=(height, index)`, the last entry of a previous page,
        continues it (HistoryCursorError if it is not in this account's history)."""
        if not 1 <= limit <= self.limits.history_page_max:
            raise LedgerError(f"limit must be 1..{self.limits.history_page_max}, got {limit}")
        return self._read(lambda txn: history.page(txn, self._dbs, account, limit, before))

    def holders(self, asset_id: str) -> list[tuple[bytes, int]]:
        return self._read(lambda txn: q.holders(txn, self._dbs, asset_id))

    # ------------------------------------------------------------------ governance queries

    def epoch_for(self, seq: int) -> EpochInfo:
        """The epoch governing block `seq` (>= 1). Above the tip: the latest known epoch
        (its last_seq is the pending epoch end, or None)."""
        if type(seq) is not int or seq < 1:
            raise LedgerError(f"seq must be an integer >= 1, got {seq!r}")
        return self._read(lambda txn: gq.epoch_for(txn, self._dbs, seq))

    def current_epoch(self) -> EpochInfo:
        """The epoch governing the next block (tip + 1)."""
        return self._read(lambda txn: gq.current_epoch(txn, self._dbs))

    def epochs(self) -> list[EpochInfo]:
        """Every epoch, oldest first."""
        return self._read(lambda txn: gq.epochs(txn, self._dbs))

    def pending_epoch_last_seq(self) -> int | None:
        """The last block of the current epoch, once a validator-set change scheduled it."""
        return self._read(lambda txn: gs.read_snapshot(txn, self._dbs, -1).pending_last_seq)

    def pending_validators(self) -> tuple[ValidatorInfo, ...] | None:
        """The ledger's validator set if it differs from the current epoch's: the next
        epoch's set unless more changes come before the boundary."""
        return self._read(lambda txn: gq.pending_validators(txn, self._dbs))

    def ledger_validators(self) -> tuple[ValidatorInfo, ...]:
        """The ledger's validator set as of the tip (changes included, boundary or not)."""
        return self._read(lambda txn: gs.read_validators(txn, self._dbs))

    def is_validator_key(self, public_key: bytes) -> bool:
        """`public_key` belongs to a validator of the ledger's set or of the current epoch
        (who may sign report_equivocation)."""
        return self._read(lambda txn: gq.is_validator_key(txn, self._dbs, public_key))

    def governance_view(self, height: int | None = None) -> GovernanceView:
        """The epoch governing block `height` (default: the next block), the pending set and
        epoch end, and the regulator keys, all read in one transaction."""
        if height is not None and (type(height) is not int or height < 1):
            raise LedgerError(f"height must be an integer >= 1, got {height!r}")

        def read(txn: Txn) -> GovernanceView:
            tip = self._tip(txn)[0]
            snapshot = self._governance(txn, tip)
            if height is None:
                epoch: EpochInfo | None = gq.current_epoch(txn, self._dbs)
            elif height > tip + 1:
                epoch = None
            else:
                epoch = gq.epoch_for(txn, self._dbs, height)
            return GovernanceView(
                tip=tip,
                epoch=epoch,
                pending_validators=gq.pending_validators(txn, self._dbs),
                pending_last_seq=gs.read_snapshot(txn, self._dbs, -1).pending_last_seq,
                regulator_keys=snapshot.regulator_keys,
                regulator_threshold=snapshot.regulator_threshold,
            )

        return self._read(read)

    def regulator_keys(self) -> tuple[tuple[bytes, ...], int]:
        """(the regulator's public keys, the threshold of them a regulator action needs)."""

        def read(txn: Txn) -> tuple[tuple[bytes, ...], int]:
            snapshot = self._governance(txn, self._tip(txn)[0])
            return (snapshot.regulator_keys, snapshot.regulator_threshold)

        return self._read(read)

    def governance_history(
        self, *, limit: int = 100, before_height: int | None = None
    ) -> list[GovernanceRecord]:
        """Applied governance transactions, newest first (below `before_height` if given)."""
        self._check_page(limit, before_height)
        return self._read(lambda txn: gq.governance_history(txn, self._dbs, limit, before_height))

    def evidence(
        self, *, limit: int = 100, before_height: int | None = None
    ) -> list[EvidenceRecord]:
        """Recorded equivocation evidence, newest first (below `before_height` if given)."""
        self._check_page(limit, before_height)
        return self._read(lambda txn: gq.evidence(txn, self._dbs, limit, before_height))

    def consensus_epoch(self, seq: int) -> Epoch:
        """`epoch_for(seq)` as consensus sees it: names and keys in primary-rotation order."""
        return gq.consensus_epoch(self.epoch_for(seq))

    def _check_limit(self, limit: int) -> None:
        if type(limit) is not int or not 1 <= limit <= self.limits.history_page_max:
            raise LedgerError(f"limit must be 1..{self.limits.history_page_max}, got {limit!r}")

    def _check_page(self, limit: int, before_height: int | None) -> None:
        self._check_limit(limit)
        if before_height is not None and (
            type(before_height) is not int or not 0 <= before_height < 2**63
        ):
            raise LedgerError(f"before_height must be an integer >= 0, got {before_height!r}")


__all__ = ["Ledger", "LedgerLimits", "WriteSet", "prepare_tx"]
