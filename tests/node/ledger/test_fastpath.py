"""The transfer fast path (node/ledger/fastpath.py) changes nothing but speed.

Each block is applied to two ledgers from the same genesis: one as shipped, one with the fast
path disabled (every transaction through `Ledger._run`). Receipts (with their details and
encodings), state digests, block hashes and every record of every database must be
byte-identical, for applied and rejected transfers alike, mixed with every other kind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from config.genesis import AccountSpec
from node.ledger import Block, ReasonCode, Receipt, fastpath, prepare_tx, store
from node.tx import Kind, make_tx
from tests.node.ledger.conftest import ISSUER, pk
from tests.node.ledger.test_invariants import STRANGER, _tx, _world, ledger_examples, ops
from tests.node.ledger.world import World, key, kyc, make_genesis

_real_fast_path = fastpath.transfer_fast_path


def _never(*_args: Any, **_kw: Any) -> Callable[..., None]:
    return lambda _stx, _index: None


@contextmanager
def _counting() -> Iterator[list[int]]:
    """Count the transactions the fast path takes (so a test notices if it never runs)."""
    taken = [0]

    def factory(*args: Any, **kw: Any) -> Callable[..., Any]:
        fast = _real_fast_path(*args, **kw)

        def counted(stx: Any, index: int) -> Any:
            done = fast(stx, index)
            taken[0] += done is not None
            return done

        return counted

    with mock.patch.object(store, "transfer_fast_path", factory):
        yield taken


def _dump(w: World) -> dict[str, list[tuple[bytes, bytes]]]:
    led = w.ledger
    out = {}
    with led._env.begin() as txn:
        for name, db in sorted(led._dbs.items()):
            out[name] = list(txn.cursor(db=db))
    return out


def _apply_both(
    fast: World,
    slow: World,
    raws: Sequence[bytes],
    signatures_ok: Sequence[bool] | None,
    taken: list[int],
    *,
    predecoded: bool = False,
) -> list[Receipt]:
    fast.time_ms += 1000
    slow.time_ms = fast.time_ms
    block = Block(height=fast.ledger.height + 1, timestamp_ms=fast.time_ms, txs=tuple(raws))
    # Pre-decoded (what the node passes) or decoded by apply_block: separate objects per
    # ledger, so neither can see the other's.
    fast_items = [prepare_tx(r) for r in raws] if predecoded else None
    slow_items = [prepare_tx(r) for r in raws] if predecoded else None
    with _counting() as counter:
        got = fast.ledger.apply_block(block, decoded=fast_items, signatures_ok=signatures_ok)
    taken[0] += counter[0]
    with mock.patch.object(store, "transfer_fast_path", _never):
        want = slow.ledger.apply_block(block, decoded=slow_items, signatures_ok=signatures_ok)
    assert got == want  # every field, the human-readable detail included
    assert [r.encode() for r in got] == [r.encode() for r in want]
    assert fast.ledger.state_digest == slow.ledger.state_digest
    assert fast.ledger.last_block_hash == slow.ledger.last_block_hash
    assert _dump(fast) == _dump(slow)
    return got


def _sync_nonces(w: World, txs: Sequence[Any], receipts: Sequence[Receipt]) -> None:
    """World.apply's bookkeeping: an unauthentic tx did not consume its nonce."""
    for t, r in zip(txs, receipts, strict=True):
        if r.signer is None and w.nonces.get(t.body.signer) == t.body.nonce + 1:
            w.nonces[t.body.signer] = t.body.nonce


H = [key(f"fast-holder-{i}") for i in range(8)]


def _mixed_world(path: Path) -> World:
    """The issuer and eight holders, each holding 1,000 AAA and 1,000 BBB; two regulators,
    both needed, and the first one's key is also a registered, funded account."""
    g = make_genesis(
        regulators=2,
        threshold=2,
        accounts=[
            AccountSpec(public_key=pk(key("regulator-0")), category="entity", kyc_hash=kyc("r")),
            AccountSpec(
                public_key=pk(ISSUER),
                category="entity",
                kyc_hash=kyc("issuer"),
                roles=frozenset({"issuer"}),
            ),
            *(
                AccountSpec(public_key=pk(h), category="individual", kyc_hash=kyc(str(i)))
                for i, h in enumerate(H)
            ),
        ],
    )
    w = World(path, g)
    for asset_id in ("AAA", "BBB"):
        r = w.one(
            ISSUER, Kind.CREATE_ASSET, asset_id=asset_id, name=asset_id, decimals=0, cap=10**6
        )
        assert r.applied, r
        for h in (ISSUER, key("regulator-0"), *H):
            r = w.one(ISSUER, Kind.MINT, asset_id=asset_id, to_account=pk(h), amount=1_000)
            assert r.applied, r
    return w


def test_blocks_are_identical_with_and_without_the_fast_path(tmp_path: Path) -> None:
    fast, slow = _mixed_world(tmp_path / "fast"), _mixed_world(tmp_path / "slow")
    taken = [0]
    try:
        reg, cosigner = fast.regulators
        audit = {"reason_code": "r", "order_ref": "o"}

        def transfer(src: Any, dst: Any, amount: int, asset: str = "AAA", **kw: Any) -> Any:
            dst = dst if isinstance(dst, bytes) else pk(dst)
            args = {"asset_id": asset, "to_account": dst, "amount": amount}
            return fast.tx(src, Kind.TRANSFER, args, **kw)

        def register(account: Any, **kw: Any) -> Any:
            args = {"account": pk(account), "category": "individual", "kyc_hash": kyc("x"), **kw}
            return fast.tx(reg, Kind.REGISTER_ACCOUNT, args, cosigners=[cosigner])

        def freeze(account: Any, asset: str | None) -> Any:
            args = {"account": pk(account), "asset_id": asset, **audit}
            return fast.tx(reg, Kind.FREEZE, args, cosigners=[cosigner])

        setup = [
            register(STRANGER),  # registered, holds nothing yet
            register(H[7], expires_at_ms=fast.time_ms + 1500),  # expired from the next block on
            fast.tx(reg, Kind.REVOKE_ACCOUNT, {"account": pk(H[6])}, cosigners=[cosigner]),
            freeze(H[5], "AAA"),
            freeze(H[4], "BBB"),
            freeze(H[3], None),
        ]
        r = _apply_both(fast, slow, [t.encode() for t in setup], None, taken)
        assert all(x.applied for x in r), r

        # Only transfers that apply, each signer's only tx in the block: all fast, so the fast
        # path alone must leave the nonces and balances the general path leaves.
        pure = [
            transfer(H[0], H[1], 10),
            transfer(H[1], H[0], 5, "BBB"),
            transfer(H[2], H[0], 1_000),  # the whole balance
            transfer(ISSUER, H[1], 3),
        ]
        r = _apply_both(fast, slow, [t.encode() for t in pure], [True] * 4, taken)
        assert all(x.applied for x in r), r
        assert taken[0] == 4

        nobody = key("nobody")
        held = fast.ledger.balance("AAA", pk(H[1])) + 3  # after the block's first two
        ok = transfer(H[0], H[1], 1)
        cases: list[tuple[Any, ReasonCode | None]] = [
            (ok, None),
            (transfer(H[0], H[1], 2), None),  # same sender: nonce and balance from the cache
            (transfer(H[1], H[0], held + 1), ReasonCode.INSUFFICIENT_BALANCE),
            (transfer(H[1], H[0], held), None),  # exactly what it holds
            (transfer(H[0], STRANGER, 1), None),  # first-time holder: general path
            (transfer(H[0], H[0], 1), ReasonCode.SELF_TRANSFER),
            (transfer(H[0], H[1], 1, "ZZZ"), ReasonCode.UNKNOWN_ASSET),
            (transfer(H[5], H[0], 1), ReasonCode.ACCOUNT_FROZEN),  # frozen for AAA
            (transfer(H[4], H[0], 1), None),  # frozen for BBB only: general path applies it
            (transfer(H[3], H[0], 1), ReasonCode.ACCOUNT_FROZEN),  # whole account
            (transfer(H[0], H[3], 1), ReasonCode.ACCOUNT_FROZEN),
            (transfer(H[0], H[5], 1), ReasonCode.ACCOUNT_FROZEN),
            (transfer(H[6], H[0], 1), ReasonCode.ACCOUNT_REVOKED),
            (transfer(H[0], H[6], 1), ReasonCode.ACCOUNT_REVOKED),
            (transfer(H[7], H[0], 1), ReasonCode.ACCOUNT_EXPIRED),
            (transfer(H[0], H[7], 1), ReasonCode.ACCOUNT_EXPIRED),
            (transfer(nobody, H[0], 1), ReasonCode.ACCOUNT_NOT_REGISTERED),
            (transfer(H[0], nobody, 1), ReasonCode.ACCOUNT_NOT_REGISTERED),
            (fast.tx(ISSUER, Kind.PAUSE, {"asset_id": "BBB"}), None),
            (transfer(H[0], H[1], 1, "BBB"), ReasonCode.ASSET_PAUSED),  # paused in this block
            (freeze(H[1], "AAA"), None),
            (transfer(H[0], H[1], 1), ReasonCode.ACCOUNT_FROZEN),  # frozen in this block
            # A regulator key speaks for the regulator: one signature is not enough, even
            # for a transfer from its (registered, funded) account.
            (transfer(reg, H[0], 1), ReasonCode.REGULATOR_THRESHOLD_NOT_MET),
            (transfer(H[2], H[0], 1, nonce=99), ReasonCode.BAD_NONCE),
            (transfer(H[2], H[0], 1), ReasonCode.INSUFFICIENT_BALANCE),  # sent it all before
            (transfer(ISSUER, H[0], 7), None),
            (transfer(ISSUER, H[0], 8), ReasonCode.BAD_SIGNATURE),  # reported bad below
            (ok, ReasonCode.BAD_NONCE),  # a replay
            (
                make_tx(
                    Kind.TRANSFER,
                    {"asset_id": "AAA", "to_account": pk(H[0]), "amount": 1},
                    signer_key=H[2],
                    nonce=fast.nonces[pk(H[2])],
                    chain_id="another-chain",
                ),
                ReasonCode.WRONG_CHAIN,
            ),
        ]
        raws = [t.encode() for t, _ in cases] + [b"\x93junk"]
        sigs = [True] * len(raws)
        sigs[len(cases) - 3] = False
        before = taken[0]
        receipts = _apply_both(fast, slow, raws, sigs, taken, predecoded=True)
        assert [r.reason for r in receipts] == [want for _, want in cases] + [ReasonCode.MALFORMED]
        assert taken[0] - before == 4  # the two first, the exact balance, the issuer's
    finally:
        fast.close()
        slow.close()


# A block: (operation, how its signature is reported, whether it is replayed in the block).
txs_in_block = st.tuples(ops, st.sampled_from([True, False, None]), st.booleans())


@ledger_examples(60)
@given(
    st.lists(st.lists(txs_in_block, min_size=1, max_size=8), min_size=1, max_size=6),
    st.booleans(),
)
def test_random_blocks_are_identical_with_and_without_the_fast_path(
    tmp_path: Path,
    blocks: list[list[tuple[Any, bool | None, bool]]],
    predecoded: bool,
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        fast, slow = _world(Path(d) / "fast"), _world(Path(d) / "slow")
        taken = [0]
        try:
            for spec in blocks:
                txs, raws, sigs = [], [], []
                for op, sig, replayed in spec:
                    t = _tx(fast, op)
                    for _ in range(1 + replayed):
                        txs.append(t)
                        raws.append(t.encode())
                        sigs.append(sig)
                # None anywhere: let apply_block check every signature itself.
                signatures_ok = None if None in sigs else [bool(s) for s in sigs]
                receipts = _apply_both(
                    fast, slow, raws, signatures_ok, taken, predecoded=predecoded
                )
                _sync_nonces(fast, txs, receipts)
        finally:
            fast.close()
            slow.close()
