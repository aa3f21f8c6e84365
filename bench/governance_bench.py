"""Governance costs on the ledger (issue 7). Prints figures; asserts nothing.

- the per-block overhead every block now pays (governance context, epoch-end check, next
  snapshot), in microseconds;
- set_regulator_keys transactions applied per second (a governance write path: history record,
  regulator keys, digested write set), durable commits;
- equivocation evidence checks per second (decode two messages, verify two signatures);
- epoch lookups (`epoch_for`, `consensus_epoch`) with a few hundred epochs recorded.

    python bench/governance_bench.py [--epochs 300] [--blocks 20] [--block-txs 100]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import timeit
from pathlib import Path

import nacl.signing

from config.genesis import Genesis, ValidatorSpec
from consensus.epochs import signing_domain
from consensus.evidence import check_equivocation
from consensus.messages import encode_message, make_prepare
from node.ledger import Block, Ledger, LedgerLimits
from node.ledger.view import StateView
from node.tx import Kind, make_tx, public_key

CHAIN = "bench-chain"


def key(seed: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(seed.encode()).digest())


def genesis(validators: int = 7) -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time_ms=0,
        regulator_keys=(public_key(key("regulator")),),
        validators=tuple(
            ValidatorSpec(
                name=f"v{i}", public_key=public_key(key(f"v{i}")), address=f"127.0.0.1:{7000 + i}"
            )
            for i in range(validators)
        ),
    )


def per_block_overhead(path: Path) -> float:
    led = Ledger.open(path, genesis(), limits=LedgerLimits(map_size_bytes=64 << 20), sync=False)
    try:
        with led._env.begin() as txn:
            view = StateView(txn, led._dbs)

            def one_block() -> None:
                ctx = led._context(txn, view, 1, 0)
                ctx.gov.end_block(1)
                ctx.gov.next_snapshot()

            n = 50_000
            return timeit.timeit(one_block, number=n) / n * 1e6
    finally:
        led.close()


def regulator_tx_rate(path: Path, blocks: int, block_txs: int) -> float:
    led = Ledger.open(path, genesis(), limits=LedgerLimits(map_size_bytes=256 << 20), sync=True)
    regulator = key("regulator")
    nonce = 0
    elapsed = 0.0
    try:
        for height in range(1, blocks + 1):
            txs = []
            for _ in range(block_txs):
                txs.append(
                    make_tx(
                        Kind.SET_REGULATOR_KEYS,
                        {"public_keys": [public_key(regulator)], "threshold": 1},
                        signer_key=regulator,
                        nonce=nonce,
                        chain_id=CHAIN,
                    ).encode()
                )
                nonce += 1
            block = Block(height=height, timestamp_ms=height, txs=tuple(txs))
            start = time.perf_counter()
            receipts = led.apply_block(block, signatures_ok=[True] * len(txs))
            elapsed += time.perf_counter() - start
            assert all(r.applied for r in receipts)
        return blocks * block_txs / elapsed
    finally:
        led.close()


def evidence_rate() -> float:
    signer = key("v2")
    domain = signing_domain(CHAIN, 3)
    a, b = (
        encode_message(make_prepare(signer, domain, "v2", view=1, seq=9, d=bytes([i]) * 32))
        for i in (1, 2)
    )
    keys = {"v2": public_key(signer)}
    n = 2_000

    def check() -> None:
        check_equivocation(a, b, chain_id=CHAIN, epoch=3, key_of=keys.get)

    return n / timeit.timeit(check, number=n)


def epoch_lookups(path: Path, epochs: int) -> tuple[float, float, int]:
    # K = 1, W = 2: a change in block s closes the epoch at s + 2, so epochs come quickly.
    limits = LedgerLimits(map_size_bytes=256 << 20, checkpoint_interval_seqs=1, log_window_seqs=2)
    led = Ledger.open(path, genesis(), limits=limits, sync=False)
    regulator = key("regulator")
    try:
        nonce = 0
        flip = False
        while len(led.epochs()) <= epochs:
            # Rotate v0 back and forth: one change per epoch keeps the quorum rule happy.
            new_key = public_key(key("v0-alt" if not flip else "v0"))
            tx = make_tx(
                Kind.ROTATE_VALIDATOR_KEY,
                {"name": "v0", "public_key": new_key},
                signer_key=regulator,
                nonce=nonce,
                chain_id=CHAIN,
            )
            nonce += 1
            flip = not flip
            height = led.height + 1
            [r] = led.apply_block(Block(height=height, timestamp_ms=height, txs=(tx.encode(),)))
            assert r.applied, r
            while led.pending_epoch_last_seq() is not None:
                h = led.height + 1
                led.apply_block(Block(height=h, timestamp_ms=h, txs=()))
        count = len(led.epochs())
        tip = led.height
        n = 5_000
        seqs = [1 + (i * 7919) % tip for i in range(n)]
        it = iter(seqs * 2)
        t_epoch = timeit.timeit(lambda: led.epoch_for(next(it)), number=n) / n * 1e6
        t_cons = timeit.timeit(lambda: led.consensus_epoch(next(it)), number=n) / n * 1e6
        return t_epoch, t_cons, count
    finally:
        led.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-txs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"per-block governance overhead: {per_block_overhead(root / 'a'):.1f} us")
        rate = regulator_tx_rate(root / "b", args.blocks, args.block_txs)
        print(
            f"set_regulator_keys applied: {rate:,.0f} tx/s"
            f" ({args.blocks} blocks x {args.block_txs}, durable commits, signatures pre-checked)"
        )
        print(f"equivocation evidence checks: {evidence_rate():,.0f}/s (1 thread)")
        t_epoch, t_cons, count = epoch_lookups(root / "c", args.epochs)
        print(
            f"with {count} epochs: epoch_for {t_epoch:.1f} us, consensus_epoch {t_cons:.1f} us"
            " per lookup (random heights)"
        )


if __name__ == "__main__":
    main()
