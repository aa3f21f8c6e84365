"""The state view the rules read and write: an overlay on top of one LMDB transaction.

Rules never touch LMDB directly. Reads go through a per-block cache of decoded records;
writes stay in the view until `write_set`, which encodes each dirty record once for the
block's write transaction (`put_records`). The same class backs the pre-flight `check` (over a read
transaction, never flushed), so checking and applying share every line of rule code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from node.ledger import keys as kl
from node.ledger.bucket_log import BALANCES as BALANCES_LOG
from node.ledger.records import AccountRecord, AssetRecord, decode_int, encode_int
from node.ledger.state_cache import StateDicts
from node.ledger.txn import Txn

WriteSet = dict[str, list[tuple[bytes, bytes | None]]]
_NEVER_DELETED = frozenset({kl.BALANCES, kl.NONCES})  # values always ints, never None
_MISSING: Any = object()  # cache sentinel: a dict lookup is much cheaper than catching KeyError


class ViewOverlay:
    """The value after a block of every state key it wrote (None = absent), per cache.

    What the next block must see on top of a snapshot that may not contain that block yet:
    the pipeline (node/ledger/pipeline.py) evaluates block N+1 while block N is committed.
    Keys the block did not write have the same value before and after it.

    Decoded from the block's write set on first use, per database: a block evaluated on
    the ledger's state cache reads balances, nonces and accounts from the cache instead
    (node/ledger/state_cache.py), so in the common case only the rare asset and role writes
    are ever decoded, and building the overlay costs nothing.
    """

    __slots__ = ("_decoded", "_write_set")

    def __init__(self, write_set: WriteSet) -> None:
        self._write_set = write_set
        self._decoded: dict[str, dict[bytes, Any]] = {}

    def _written(self, db: str) -> dict[bytes, Any]:
        values = self._decoded.get(db)
        if values is None:
            decode = _DECODERS[db]
            values = self._decoded[db] = {
                key: decode(raw) for key, raw in self._write_set.get(db, ())
            }
        return values

    def accounts(self) -> dict[bytes, AccountRecord | None]:
        return self._written(kl.ACCOUNTS)

    def assets(self) -> dict[bytes, AssetRecord | None]:
        return self._written(kl.ASSETS)

    def balances(self) -> dict[bytes, int]:
        return self._written(kl.BALANCES)

    def nonces(self) -> dict[bytes, int]:
        return self._written(kl.NONCES)

    def roles(self) -> dict[bytes, bool]:
        return self._written(kl.ROLES)


# How StateView.write_set encodes each database's values (None = deleted; balances and
# nonces are msgpack ints, packed there with a local Packer), and the inverse, for overlays.


def _encode_record(record: AccountRecord | AssetRecord | None) -> bytes | None:
    return None if record is None else record.encode()


def _encode_role(granted: bool) -> bytes | None:
    return encode_int(1) if granted else None


def _record_or_none(decode: Callable[[bytes], Any]) -> Callable[[bytes | None], Any]:
    return lambda raw: None if raw is None else decode(raw)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    kl.ACCOUNTS: _record_or_none(AccountRecord.decode),
    kl.ASSETS: _record_or_none(AssetRecord.decode),
    kl.BALANCES: decode_int,
    kl.NONCES: decode_int,
    kl.ROLES: lambda raw: raw is not None,
}


class StateView:
    __slots__ = (
        "_accounts",
        "_accounts_db",
        "_assets",
        "_assets_db",
        "_balances",
        "_dbs",
        "_dirty",
        "_dirty_balances",
        "_dirty_nonces",
        "_nonces",
        "_nonces_db",
        "_prefixes",
        "_read_balance",
        "_roles",
        "_roles_db",
        "_txn",
    )

    def __init__(
        self,
        txn: Txn,
        dbs: dict[str, Any],
        overlays: Sequence[ViewOverlay] = (),
        shared: StateDicts | None = None,
        *,
        shared_current: bool = False,
        read_balance: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self._txn = txn
        self._dbs = dbs
        self._accounts_db = dbs[kl.ACCOUNTS]
        self._assets_db = dbs[kl.ASSETS]
        # A stored balance, raw: through the balance log's index (node/ledger/bucket_log.py),
        # or by default at the snapshot, record by record (right anywhere, slower).
        self._read_balance = read_balance or (lambda key: BALANCES_LOG.read_at(txn, dbs, key))
        self._nonces_db = dbs[kl.NONCES]
        self._roles_db = dbs[kl.ROLES]
        # Caches of decoded values (None = absent), keyed by the LMDB key. `shared` are the
        # ledger's StateCache dicts (node/ledger/state_cache.py); the view reads and writes
        # them in place. `overlays` are the writes of the blocks evaluated but maybe not
        # committed below this one, oldest first (so later writes win): cached from the
        # start, they win over what `txn` holds. `shared_current`: the shared dicts already
        # hold the state after the last of them for every key those blocks wrote (the
        # cache follows that block and keeps such keys), so only assets and roles, which
        # the cache does not hold, come from the overlays.
        self._accounts: dict[bytes, AccountRecord | None] = shared[0] if shared else {}
        self._balances: dict[bytes, int] = shared[1] if shared else {}
        self._nonces: dict[bytes, int] = shared[2] if shared else {}
        self._assets: dict[bytes, AssetRecord | None] = {}
        self._roles: dict[bytes, bool] = {}
        if shared_current and shared is None:
            raise ValueError("shared_current needs the shared dicts")
        for o in overlays:
            if not shared_current:
                self._accounts.update(o.accounts())
                self._balances.update(o.balances())
                self._nonces.update(o.nonces())
            self._assets.update(o.assets())
            self._roles.update(o.roles())
        # The value of every key written, per database (flush sorts the keys). Kept apart
        # from the caches, which may be the StateCache's large dicts: encoding reads these
        # few entries, hot in CPU caches, instead of looking each key up there again.
        self._dirty: dict[str, dict[bytes, Any]] = {db: {} for db in kl.STATE_DBS}
        self._dirty_balances = self._dirty[kl.BALANCES]  # the hot ones, one attribute away
        self._dirty_nonces = self._dirty[kl.NONCES]
        self._prefixes: dict[str, bytes] = {}  # asset id -> its balance key prefix

    # ------------------------------------------------------------------ reads

    def account(self, public_key: bytes) -> AccountRecord | None:
        record = self._accounts.get(public_key, _MISSING)
        if record is _MISSING:
            raw = self._txn.get(public_key, None, self._accounts_db)
            record = None if raw is None else AccountRecord.decode(raw)
            self._accounts[public_key] = record
        return record

    def asset(self, asset_id: str) -> AssetRecord | None:
        key = asset_id.encode()
        record = self._assets.get(key, _MISSING)
        if record is _MISSING:
            raw = self._txn.get(key, None, self._assets_db)
            record = None if raw is None else AssetRecord.decode(raw)
            self._assets[key] = record
        return record

    def balance(self, asset_id: str, account: bytes) -> int:
        key = kl.balance_key(asset_id, account)
        value = self._balances.get(key, _MISSING)
        if value is _MISSING:
            value = self._balances[key] = self._stored_balance(key)
        return value

    def balance_at(self, key: bytes) -> int:
        """`balance` by a precomputed `keys.balance_key` (the transfer path builds it once)."""
        value = self._balances.get(key, _MISSING)
        if value is _MISSING:
            value = self._balances[key] = self._stored_balance(key)
        return value

    def _stored_balance(self, key: bytes) -> int:
        """A balance as the store holds it (the log's index first)."""
        raw = self._read_balance(key)
        return 0 if raw is None else decode_int(raw)

    def balance_prefix(self, asset_id: str) -> bytes:
        """`keys.balance_prefix(asset_id)`, built once per block and asset."""
        prefix = self._prefixes.get(asset_id)
        if prefix is None:
            prefix = self._prefixes[asset_id] = kl.balance_prefix(asset_id)
        return prefix

    def move_at(self, src_key: bytes, dst_key: bytes, src_held: int, amount: int) -> None:
        """Move `amount` between two balance keys; `src_held` is `balance_at(src_key)`, and
        the caller has checked it covers `amount` (the source and destination differ)."""
        assert 0 <= amount <= src_held, "overdraft"
        balances = self._balances
        dst = balances.get(dst_key, _MISSING)
        if dst is _MISSING:
            dst = self._stored_balance(dst_key)
        dirty = self._dirty_balances
        balances[src_key] = dirty[src_key] = src_held - amount
        balances[dst_key] = dirty[dst_key] = dst + amount

    def set_balance_at(self, key: bytes, value: int) -> None:
        assert value >= 0, "negative balance"
        self._balances[key] = self._dirty_balances[key] = value

    def nonce(self, account: bytes) -> int:
        value = self._nonces.get(account, _MISSING)
        if value is _MISSING:
            raw = self._txn.get(account, None, self._nonces_db)
            value = 0 if raw is None else decode_int(raw)
            self._nonces[account] = value
        return value

    def has_role(self, account: bytes, role: str) -> bool:
        key = kl.role_key(account, role)
        value = self._roles.get(key)
        if value is None:
            value = self._txn.get(key, None, self._roles_db) is not None
            self._roles[key] = value
        return value

    # ------------------------------------------------------------------ writes

    def put_account(self, public_key: bytes, record: AccountRecord) -> None:
        self._accounts[public_key] = self._dirty[kl.ACCOUNTS][public_key] = record

    def put_asset(self, record: AssetRecord) -> None:
        key = record.asset_id.encode()
        self._assets[key] = self._dirty[kl.ASSETS][key] = record

    def set_balance(self, asset_id: str, account: bytes, value: int) -> None:
        # Rules check before they write; a negative balance here is our bug.
        assert value >= 0, "negative balance"
        key = kl.balance_key(asset_id, account)
        self._balances[key] = self._dirty_balances[key] = value

    def set_nonce(self, account: bytes, value: int) -> None:
        self._nonces[account] = self._dirty_nonces[account] = value

    def set_role(self, account: bytes, role: str, granted: bool) -> None:
        key = kl.role_key(account, role)
        self._roles[key] = self._dirty[kl.ROLES][key] = granted

    # ------------------------------------------------------------------ flush

    def write_set(self) -> WriteSet:
        """Every dirty record, encoded once, as {db: [(key, value-or-None), ...] sorted by key}.

        None marks a deletion. Only databases with writes appear.
        """
        packb = msgpack.Packer(use_bin_type=True).pack  # local: a Packer is not thread-safe
        out: WriteSet = {}
        for db, encode in (
            (kl.ACCOUNTS, _encode_record),
            (kl.ASSETS, _encode_record),
            (kl.BALANCES, packb),
            (kl.NONCES, packb),
            (kl.ROLES, _encode_role),
        ):
            written = self._dirty[db]
            if written:
                # Sorting the keys alone, not (key, value) pairs: bytes compare faster than
                # tuples. The loops run in C (map, zip): this is per written key.
                keys = sorted(written)
                out[db] = list(zip(keys, map(encode, map(written.__getitem__, keys)), strict=True))
        return out


def put_records(txn: Txn, db: Any, db_name: str, items: list[tuple[bytes, bytes | None]]) -> None:
    """Write one database's part of a WriteSet (key-ordered; None deletes) into `txn`:
    one bulk put, a C loop instead of a Python call per key."""
    if db_name in _NEVER_DELETED:
        txn.cursor(db=db).putmulti(items)  # type: ignore[arg-type]
        return
    puts = [(key, value) for key, value in items if value is not None]
    if len(puts) != len(items):
        for key, value in items:
            if value is None:
                txn.delete(key, db=db)
    if puts:
        txn.cursor(db=db).putmulti(puts)
