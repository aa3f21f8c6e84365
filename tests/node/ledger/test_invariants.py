"""Property test over random operation sequences: the ledger's invariants always hold.

- for every asset: supply == sum of balances <= cap; no balance negative;
- a frozen, unregistered, revoked, recovered or expired account never sends or receives
  (a regulator's forced transfer may take from a frozen account: a seizure);
- a paused asset never moves except by the regulator's force_transfer (or recovery).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.genesis import AccountSpec
from node.ledger import Receipt
from node.tx import Kind, SignedTransaction
from tests.node.ledger.conftest import ISSUER, pk
from tests.node.ledger.world import World, key, kyc, make_genesis

ASSETS = ("AAA", "BBB")
HOLDERS = [key(f"holder-{i}") for i in range(3)]
STRANGER = key("stranger")
PEOPLE = [ISSUER, *HOLDERS, STRANGER]

# (operation, index of the source in PEOPLE, index of the target, asset or None, amount)
Op = tuple[str, int, int, str | None, int]

people = st.sampled_from(range(len(PEOPLE)))
assets = st.sampled_from(ASSETS)
amounts = st.one_of(st.integers(1, 300), st.integers(1, 2_000))

transfers = st.tuples(st.just("transfer"), people, people, assets, amounts)
ops = st.one_of(
    transfers,
    transfers,
    transfers,
    st.tuples(st.just("mint"), people, people, assets, amounts),
    st.tuples(st.just("burn"), people, people, assets, amounts),
    st.tuples(st.just("force"), people, people, assets, amounts),
    st.tuples(st.just("freeze"), people, people, st.one_of(st.none(), assets), st.just(0)),
    st.tuples(st.just("unfreeze"), people, people, st.one_of(st.none(), assets), st.just(0)),
    st.tuples(st.just("pause"), people, people, assets, st.just(0)),
    st.tuples(st.just("unpause"), people, people, assets, st.just(0)),
    st.tuples(st.just("revoke"), people, people, assets, st.just(0)),
    st.tuples(st.just("register"), people, people, assets, st.integers(0, 3)),
    st.tuples(st.just("recover"), people, people, assets, st.just(0)),
)


def ledger_examples(count: int) -> settings:
    """Settings of the ledger property tests: `count` examples, no deadline (each example
    opens LMDB stores) and pytest's function-scoped `tmp_path` allowed."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def op_blocks(
    *, ops_max: int, blocks_min: int, blocks_max: int
) -> st.SearchStrategy[list[list[Op]]]:
    """Blocks of 1..`ops_max` random operations each."""
    return st.lists(
        st.lists(ops, min_size=1, max_size=ops_max), min_size=blocks_min, max_size=blocks_max
    )


@pytest.fixture
def tmp_root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _world(path: Path, **world_kw: Any) -> World:
    """Funded holders of two assets; `world_kw` go to World (e.g. the state cache size)."""
    g = make_genesis(
        accounts=[
            AccountSpec(
                public_key=pk(ISSUER),
                category="entity",
                kyc_hash=kyc("issuer"),
                roles=frozenset({"issuer"}),
            ),
            *(
                AccountSpec(public_key=pk(h), category="individual", kyc_hash=kyc(str(i)))
                for i, h in enumerate(HOLDERS)
            ),
        ],
    )
    w = World(path, g, **world_kw)
    for asset_id in ASSETS:
        r = w.one(
            ISSUER, Kind.CREATE_ASSET, asset_id=asset_id, name=asset_id, decimals=0, cap=5_000
        )
        assert r.applied
        # Everyone starts funded, so short random sequences reach the interesting states.
        for h in (ISSUER, *HOLDERS):
            r = w.one(ISSUER, Kind.MINT, asset_id=asset_id, to_account=pk(h), amount=1_000)
            assert r.applied
    return w


def _tx(w: World, op: Op) -> SignedTransaction:
    name, a, b, asset, n = op
    src, dst = PEOPLE[a], PEOPLE[b]
    regs = w.regulators
    audit = {"reason_code": "r", "order_ref": "o"}
    if name == "transfer":
        return w.tx(src, Kind.TRANSFER, {"asset_id": asset, "to_account": pk(dst), "amount": n})
    if name == "mint":
        return w.tx(ISSUER, Kind.MINT, {"asset_id": asset, "to_account": pk(dst), "amount": n})
    if name == "burn":
        return w.tx(ISSUER, Kind.BURN, {"asset_id": asset, "amount": n})
    if name == "force":
        args = {"asset_id": asset, "from_account": pk(src), "to_account": pk(dst), "amount": n}
        return w.tx(regs[0], Kind.FORCE_TRANSFER, {**args, **audit})
    if name in ("freeze", "unfreeze"):
        kind = Kind.FREEZE if name == "freeze" else Kind.UNFREEZE
        signer = ISSUER if (a % 2 and asset is not None) else regs[0]
        return w.tx(signer, kind, {"account": pk(dst), "asset_id": asset, **audit})
    if name in ("pause", "unpause"):
        return w.tx(ISSUER, Kind.PAUSE if name == "pause" else Kind.UNPAUSE, {"asset_id": asset})
    if name == "revoke":
        return w.tx(regs[0], Kind.REVOKE_ACCOUNT, {"account": pk(dst)})
    if name == "register":
        # n == 0: expires in the past (relative to the next block), otherwise open-ended.
        expiry = w.time_ms + 500 if n == 0 else None
        return w.tx(
            regs[0],
            Kind.REGISTER_ACCOUNT,
            {
                "account": pk(dst),
                "category": "individual",
                "kyc_hash": kyc("r"),
                "expires_at_ms": expiry,
            },
        )
    return w.tx(
        regs[0], Kind.RECOVER_ACCOUNT, {"lost_account": pk(src), "new_account": pk(dst), **audit}
    )


def _can_move(w: World, who: bytes, asset: str, ts: int) -> bool:
    info = w.ledger.account(who)
    if info is None or info.status != "registered":
        return False
    if info.expires_at_ms is not None and ts >= info.expires_at_ms:
        return False
    return not any(f.asset_id in (None, asset) for f in info.freezes)


def _check_invariants(w: World) -> None:
    led = w.ledger
    for asset_id in ASSETS:
        asset = led.asset(asset_id)
        assert asset is not None
        balances = [v for _, v in led.holders(asset_id)]
        assert all(v >= 0 for v in balances)
        assert sum(balances) == asset.supply <= asset.cap


@ledger_examples(120)
@given(st.lists(ops, min_size=1, max_size=30))
def test_invariants_hold_for_random_operation_sequences(tmp_root: Path, sequence: list[Op]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_root) as d:
        w = _world(Path(d) / "l")
        try:
            for op in sequence:
                name = op[0]
                before = {(x, pk(p)): w.ledger.balance(x, pk(p)) for x in ASSETS for p in PEOPLE}
                paused_before = {x: w.ledger.asset(x).paused for x in ASSETS}  # type: ignore[union-attr]
                ts = w.time_ms + 1000  # the next block's timestamp
                movable = {(x, pk(p)): _can_move(w, pk(p), x, ts) for x in ASSETS for p in PEOPLE}
                stx = _tx(w, op)
                r: Receipt = w.apply(stx)[0]
                _check_invariants(w)
                changed = {k for k, v in before.items() if w.ledger.balance(k[0], k[1]) != v}
                if not changed:
                    continue
                assert r.applied
                for asset_id, who in changed:
                    if name in ("transfer", "mint", "burn"):
                        # Holder and issuer movements: only active, unfrozen accounts, and
                        # never a paused asset.
                        assert movable[(asset_id, who)], (name, who.hex()[:8])
                        assert not paused_before[asset_id]
                    elif name == "force":
                        # Seizure may take from anyone, but only delivers to active accounts.
                        if w.ledger.balance(asset_id, who) > before[(asset_id, who)]:
                            assert movable[(asset_id, who)]
                    else:
                        assert name == "recover", name
        finally:
            w.close()
