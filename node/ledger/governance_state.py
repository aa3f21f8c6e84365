"""Governance state on LMDB: the validator set, the regulator keys, epochs, history, evidence.

Layout (node/ledger/keys.py), every value canonical msgpack (consensus.encoding.pack):

    governance  "validators"        [[name, public_key, address], ...]  (the ledger set)
                "regulators"        [[public_key, ...], threshold]
                "pending_last_seq"  int, absent when no epoch end is scheduled
    epochs      epoch_key(number)   [number, first_seq, [[name, public_key, address], ...]]
    governance_history  position    [height, tx_id, kind, {args}, [[key, sig], ...], effective]
    evidence    position            [height, tx_id, validator, public_key, epoch, message_kind,
                                     view, seq, first, second, reporter]
    evidence_index  evidence_key    position

`GovernanceState` is the per-block overlay the governance rules read and write (like the
StateView for accounts): reads are lazy, writes stay in memory until `flush`, and a block that
touches no governance record costs nothing beyond `end_block`'s comparison with the cached
pending epoch end. Its writes join the block's write set, so they are in the state digest.

The initial records (epoch 0 = the genesis validators, the genesis regulator keys) are written
at genesis but NOT into the genesis write set: they are a function of the genesis document,
whose digest already starts the state-digest chain. A data directory created before
governance existed is initialised the same way when opened, with the same digests.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import msgpack

from config.genesis import Genesis
from consensus.encoding import pack
from consensus.epochs import EPOCH_MAX, epoch_last_seq
from node.ledger import keys as kl
from node.ledger.errors import LedgerCorruptError
from node.ledger.governance_records import (
    EpochInfo,
    EvidenceRecord,
    GovernanceRecord,
    ValidatorInfo,
)
from node.ledger.txn import Txn

ValidatorSet = tuple[ValidatorInfo, ...]
GovWrites = dict[str, dict[bytes, bytes | None]]


# ------------------------------------------------------------------ encodings


def encode_validators(validators: ValidatorSet) -> list[list[Any]]:
    return [[v.name, v.public_key, v.address] for v in validators]


def decode_validators(wire: Any) -> ValidatorSet:
    return tuple(ValidatorInfo(name=n, public_key=k, address=a) for n, k, a in wire)


def _unpack(raw: bytes) -> Any:
    # Our own writes (not untrusted bytes): plain msgpack, as node/ledger/records.py does.
    return msgpack.unpackb(raw, raw=False)


def encode_epoch(number: int, first_seq: int, validators: ValidatorSet) -> bytes:
    return pack([number, first_seq, encode_validators(validators)])


def decode_epoch(raw: bytes, last_seq: int | None) -> EpochInfo:
    number, first_seq, validators = _unpack(raw)
    return EpochInfo(
        number=number,
        first_seq=first_seq,
        last_seq=last_seq,
        validators=decode_validators(validators),
    )


def encode_governance(r: GovernanceRecord) -> bytes:
    return pack(
        [
            r.height,
            r.tx_id,
            r.kind,
            r.args,
            [[key, sig] for key, sig in r.signatures],
            r.effective_from_seq,
        ]
    )


def decode_governance(raw: bytes) -> GovernanceRecord:
    height, tx_id, kind, args, signatures, effective = _unpack(raw)
    return GovernanceRecord(
        height=height,
        tx_id=tx_id,
        kind=kind,
        args=args,
        signatures=tuple((key, sig) for key, sig in signatures),
        effective_from_seq=effective,
    )


def encode_evidence(r: EvidenceRecord) -> bytes:
    return pack(
        [
            r.height,
            r.tx_id,
            r.validator,
            r.public_key,
            r.epoch,
            r.message_kind,
            r.view,
            r.seq,
            r.first,
            r.second,
            r.reporter,
        ]
    )


def decode_evidence(raw: bytes) -> EvidenceRecord:
    w = _unpack(raw)
    return EvidenceRecord(
        height=w[0],
        tx_id=w[1],
        validator=w[2],
        public_key=w[3],
        epoch=w[4],
        message_kind=w[5],
        view=w[6],
        seq=w[7],
        first=w[8],
        second=w[9],
        reporter=w[10],
    )


# ------------------------------------------------------------------ the per-block snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceSnapshot:
    """What every block and every pre-flight check needs, as of the state at `height`.

    Immutable and tied to a height, so the Ledger may cache the latest one and share it
    between threads: a snapshot for height h is correct forever for the state at h.
    """

    height: int
    regulator_keys: tuple[bytes, ...]  # in the order they were set
    regulator_key_set: frozenset[bytes]
    regulator_threshold: int
    pending_last_seq: int | None


def read_snapshot(txn: Txn, dbs: dict[str, Any], height: int) -> GovernanceSnapshot:
    db = dbs[kl.GOVERNANCE]
    raw = txn.get(kl.GOV_REGULATORS, db=db)
    if raw is None:
        raise LedgerCorruptError("governance records missing: the data directory is damaged")
    keys, threshold = _unpack(raw)
    pending_raw = txn.get(kl.GOV_PENDING_LAST_SEQ, db=db)
    return GovernanceSnapshot(
        height=height,
        regulator_keys=tuple(keys),
        regulator_key_set=frozenset(keys),
        regulator_threshold=threshold,
        pending_last_seq=None if pending_raw is None else _unpack(pending_raw),
    )


# ------------------------------------------------------------------ reads shared with queries


def read_validators(txn: Txn, dbs: dict[str, Any]) -> ValidatorSet:
    raw = txn.get(kl.GOV_VALIDATORS, db=dbs[kl.GOVERNANCE])
    if raw is None:
        raise LedgerCorruptError("validator set missing: the data directory is damaged")
    return decode_validators(_unpack(raw))


def latest_epoch_number(txn: Txn, dbs: dict[str, Any]) -> int:
    cursor = txn.cursor(db=dbs[kl.EPOCHS])
    if not cursor.last():
        raise LedgerCorruptError("epoch records missing: the data directory is damaged")
    return int.from_bytes(cursor.key(), "big")


def read_epoch(
    txn: Txn, dbs: dict[str, Any], number: int, pending_last_seq: int | None
) -> EpochInfo | None:
    """Epoch `number` with its last_seq (the next epoch's first_seq - 1; for the latest
    epoch the pending end, or None)."""
    db = dbs[kl.EPOCHS]
    raw = txn.get(kl.epoch_key(number), db=db)
    if raw is None:
        return None
    following = txn.get(kl.epoch_key(number + 1), db=db) if number < EPOCH_MAX else None
    last_seq = pending_last_seq if following is None else _unpack(following)[1] - 1
    return decode_epoch(raw, last_seq)


def epoch_number_for(txn: Txn, dbs: dict[str, Any], seq: int) -> int:
    """The epoch governing block `seq` (>= 1): the last one with first_seq <= seq. Epochs are
    numbered 0..latest without gaps and their first_seq grow with the number: binary search."""
    db = dbs[kl.EPOCHS]
    latest = latest_epoch_number(txn, dbs)

    def first_seq(number: int) -> int:
        raw = txn.get(kl.epoch_key(number), db=db)
        if raw is None:
            raise LedgerCorruptError(f"epoch {number} missing: the data directory is damaged")
        return int(_unpack(raw)[1])

    # bisect over 0..latest for the first epoch whose first_seq exceeds seq, minus one.
    return bisect.bisect_right(range(latest + 1), seq, key=first_seq) - 1


# ------------------------------------------------------------------ genesis


def initial_writes(genesis: Genesis) -> GovWrites:
    validators = tuple(
        ValidatorInfo(name=v.name, public_key=v.public_key, address=v.address)
        for v in genesis.validators
    )
    return {
        kl.GOVERNANCE: {
            kl.GOV_VALIDATORS: pack(encode_validators(validators)),
            kl.GOV_REGULATORS: pack([list(genesis.regulator_keys), genesis.regulator_threshold]),
        },
        kl.EPOCHS: {kl.epoch_key(0): encode_epoch(0, 1, validators)},
    }


def ensure_initialised(txn: Txn, dbs: dict[str, Any], genesis: Genesis) -> bool:
    """Write the genesis governance records if absent (new ledger, or one created before
    governance existed). Not part of any write set: see the module docstring."""
    if txn.get(kl.GOV_REGULATORS, db=dbs[kl.GOVERNANCE]) is not None:
        return False
    for db_name, items in initial_writes(genesis).items():
        for key, value in items.items():
            assert value is not None
            txn.put(key, value, db=dbs[db_name])
    return True


# ------------------------------------------------------------------ the overlay


class GovernanceState:
    """Per-block (or per-check) overlay over one LMDB transaction. See the module docstring."""

    __slots__ = (
        "_current_epoch",
        "_dbs",
        "_pending",
        "_regulators",
        "_txn",
        "_validators",
        "_writes",
        "checkpoint_interval_seqs",
        "log_window_seqs",
        "snapshot",
        "touched",
    )

    def __init__(
        self,
        txn: Txn,
        dbs: dict[str, Any],
        snapshot: GovernanceSnapshot,
        *,
        checkpoint_interval_seqs: int,
        log_window_seqs: int,
    ) -> None:
        self._txn = txn
        self._dbs = dbs
        self.snapshot = snapshot
        self.checkpoint_interval_seqs = checkpoint_interval_seqs
        self.log_window_seqs = log_window_seqs
        self._pending = snapshot.pending_last_seq
        self._regulators = (snapshot.regulator_keys, snapshot.regulator_threshold)
        self._validators: ValidatorSet | None = None
        self._current_epoch: EpochInfo | None = None
        self._writes: GovWrites = {}
        self.touched = False  # set by every write: the block's only governance check

    # ------------------------------------------------------------------ reads

    def validators(self) -> ValidatorSet:
        """The ledger's validator set as of this point of the block."""
        if self._validators is None:
            self._validators = read_validators(self._txn, self._dbs)
        return self._validators

    def current_epoch(self) -> EpochInfo:
        """The epoch governing this block (the latest recorded one)."""
        if self._current_epoch is None:
            number = latest_epoch_number(self._txn, self._dbs)
            epoch = read_epoch(self._txn, self._dbs, number, self._pending)
            assert epoch is not None
            self._current_epoch = epoch
        return self._current_epoch

    def epoch(self, number: int) -> EpochInfo | None:
        current = self.current_epoch()
        if number == current.number:
            return current
        if number > current.number:
            return None
        return read_epoch(self._txn, self._dbs, number, None)

    @property
    def pending_last_seq(self) -> int | None:
        return self._pending

    @property
    def regulators(self) -> tuple[tuple[bytes, ...], int]:
        """(keys, threshold) as of this point of the block."""
        return self._regulators

    def get(self, db_name: str, key: bytes) -> bytes | None:
        """A raw record, seeing this overlay's own writes first."""
        written = self._writes.get(db_name)
        if written is not None and key in written:
            return written[key]
        return self._txn.get(key, db=self._dbs[db_name])

    # ------------------------------------------------------------------ writes

    def _put(self, db_name: str, key: bytes, value: bytes | None) -> None:
        self._writes.setdefault(db_name, {})[key] = value
        self.touched = True

    def set_validators(self, validators: ValidatorSet, height: int) -> int:
        """Replace the ledger set; schedule the epoch end if none is pending. Returns the
        first seq of the epoch that will carry the change."""
        self._validators = validators
        self._put(kl.GOVERNANCE, kl.GOV_VALIDATORS, pack(encode_validators(validators)))
        if self._pending is None:
            self._pending = epoch_last_seq(
                height,
                checkpoint_interval_seqs=self.checkpoint_interval_seqs,
                log_window_seqs=self.log_window_seqs,
            )
            self._put(kl.GOVERNANCE, kl.GOV_PENDING_LAST_SEQ, pack(self._pending))
        return self._pending + 1

    def set_regulators(self, keys: tuple[bytes, ...], threshold: int) -> None:
        self._regulators = (keys, threshold)
        self._put(kl.GOVERNANCE, kl.GOV_REGULATORS, pack([list(keys), threshold]))

    def add_history(self, record: GovernanceRecord, index: int) -> None:
        self._put(
            kl.GOVERNANCE_HISTORY, kl.position_key(record.height, index), encode_governance(record)
        )

    def add_evidence(self, record: EvidenceRecord, index: int, index_key: bytes) -> None:
        position = kl.position_key(record.height, index)
        self._put(kl.EVIDENCE, position, encode_evidence(record))
        self._put(kl.EVIDENCE_INDEX, index_key, position)

    def end_block(self, height: int) -> None:
        """Close the epoch if `height` is its scheduled last block: epoch e + 1 starts at
        height + 1 with the ledger set as it is now (after the whole block)."""
        if self._pending != height:
            return
        current = self.current_epoch()
        number = current.number + 1
        self._put(
            kl.EPOCHS, kl.epoch_key(number), encode_epoch(number, height + 1, self.validators())
        )
        self._pending = None
        self._put(kl.GOVERNANCE, kl.GOV_PENDING_LAST_SEQ, None)

    # ------------------------------------------------------------------ flush

    def add_writes(self, write_set: dict[str, Any]) -> None:
        """Add every change to the block's `write_set` (written and digested with the rest):
        {db: [(key, value-or-None), ...] sorted by key}."""
        for db_name, items in self._writes.items():
            write_set[db_name] = sorted(items.items())

    def next_snapshot(self) -> GovernanceSnapshot:
        """The snapshot of the state after this block."""
        s = self.snapshot
        keys, threshold = self._regulators
        same_keys = keys == s.regulator_keys
        return GovernanceSnapshot(
            height=s.height + 1,
            regulator_keys=keys,
            regulator_key_set=s.regulator_key_set if same_keys else frozenset(keys),
            regulator_threshold=threshold,
            pending_last_seq=self._pending,
        )
