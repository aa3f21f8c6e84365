from collections import defaultdict

import pytest

from node.bench.presign import (
    PresignError,
    holder_keys,
    presign_issuance,
    presign_registrations,
    presign_transfers,
    transfers_per_holder,
)
from node.tx import Kind, decode_signed_transaction, public_key, verify_transaction

CHAIN = "assetledger-bench-test"


def test_holder_keys_are_reproducible_from_the_seed():
    a = holder_keys(3, b"seed")
    assert [public_key(k) for k in a] == [public_key(k) for k in holder_keys(3, b"seed")]
    assert public_key(a[0]) != public_key(holder_keys(3, b"other")[0])
    assert len({public_key(k) for k in a}) == 3
    with pytest.raises(PresignError, match="holders must be"):
        holder_keys(1, b"seed")


def test_transfers_have_sequential_nonces_valid_signatures_and_no_self_transfer():
    keys = holder_keys(5, b"t")
    accounts = {public_key(k): i for i, k in enumerate(keys)}
    txs = presign_transfers(keys, chain_id=CHAIN, asset_id="BENCH", count=23, start_nonce=7)
    assert len(txs) == 23
    assert len({t.tx_id for t in txs}) == 23
    nonces = defaultdict(list)
    for position, t in enumerate(txs):
        stx = decode_signed_transaction(t.raw)
        assert stx.tx_id == t.tx_id
        assert verify_transaction(stx)
        assert stx.body.chain_id == CHAIN
        assert stx.body.kind == Kind.TRANSFER
        assert stx.body.args.to_account != stx.body.signer
        assert stx.body.args.to_account in accounts
        assert accounts[stx.body.signer] == t.signer
        assert t.nonce == stx.body.nonce
        # Round-robin: consecutive transactions come from different holders.
        assert t.signer == position % 5
        nonces[t.signer].append(t.nonce)
    for signer, seen in nonces.items():
        assert seen == list(range(7, 7 + len(seen))), signer
    # 23 over 5 holders: the first three sign five, the others four.
    assert transfers_per_holder(23, 5) == 5
    assert max(len(v) for v in nonces.values()) == 5


def test_signing_in_slices_of_rounds_equals_signing_at_once():
    keys = holder_keys(4, b"s")
    whole = presign_transfers(keys, chain_id=CHAIN, asset_id="BENCH", count=20)
    sliced = presign_transfers(keys, chain_id=CHAIN, asset_id="BENCH", count=8)
    sliced += presign_transfers(
        keys, chain_id=CHAIN, asset_id="BENCH", count=12, start_nonce=2, first_round=2
    )
    assert [t.tx_id for t in sliced] == [t.tx_id for t in whole]


def test_every_holder_receives_from_several_senders():
    keys = holder_keys(4, b"r")
    txs = presign_transfers(keys, chain_id=CHAIN, asset_id="BENCH", count=12)
    recipients = defaultdict(set)
    for t in txs:
        stx = decode_signed_transaction(t.raw)
        recipients[stx.body.args.to_account].add(stx.body.signer)
    assert all(len(senders) == 3 for senders in recipients.values())


def test_bad_counts_are_refused():
    keys = holder_keys(2, b"x")
    with pytest.raises(PresignError, match="at least 2 holders"):
        presign_transfers(keys[:1], chain_id=CHAIN, asset_id="BENCH", count=1)
    with pytest.raises(PresignError, match="txs must be"):
        presign_transfers(keys, chain_id=CHAIN, asset_id="BENCH", count=-1)


def test_setup_transactions_are_sequential_per_role_key():
    regulator, issuer, *holders = holder_keys(5, b"roles")
    accounts = [public_key(k) for k in holders]
    regs = presign_registrations(regulator, accounts, chain_id=CHAIN, start_nonce=4)
    assert [r.nonce for r in regs] == [4, 5, 6]
    create, mints = presign_issuance(
        issuer, accounts, chain_id=CHAIN, start_nonce=0, asset_id="BENCH", per_account=9
    )
    assert create.nonce == 0 and [m.nonce for m in mints] == [1, 2, 3]
    created = decode_signed_transaction(create.raw)
    assert created.body.kind == Kind.CREATE_ASSET and created.body.args.cap == 27
    for m, account in zip(mints, accounts, strict=True):
        stx = decode_signed_transaction(m.raw)
        assert verify_transaction(stx)
        assert stx.body.args.to_account == account and stx.body.args.amount == 9
