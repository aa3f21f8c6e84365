"""A/B of a bucketed log against the journal in front of the balances and heads trees, in one
process. The log is a measured prototype of a write path, not the node's code.

Why (docs/benchmarks.md, rounds 16 and 17): at 1,000,000 accounts a block's ~2,000 balances
and ~2,000 heads land on ~1,000 leaves of each journal table (node/ledger/journal.py) plus
the leaves its sweep reaches in the tree, against a few hundred leaves a tree at 10,000
accounts. The prototype writes a block's entries for a large tree as one record per bucket
(bucket ‖ height -> msgpack of the entries; the bucket is the high bits of the account's
first byte) and, each block, sweeps one bucket's records into the tree (the newest value
wins) and deletes them. So a block dirties about one log leaf per bucket plus one
bucket's slice of the tree.

Only the write path exists: a log value is never read back through the ledger. That holds
here because the 1M state cache loads every balance at open and the heads cache starts
complete (no heads stored), so neither reads a balance or a head from the store. The script
checks what it can: that the log took both trees' writes (it counts them), that both 1M arms
reach the same state digest after every block, and that at the end, every log and journal
merged, each arm's balances, heads and history links equal the journal arm's entry by entry
(a head read stale from the store would link an entry wrongly). Arms: 10,000 accounts (the shipped code, for the ratio), and
two of 1,000,000 accounts, journal and log, with the same funded accounts and transfers.
Blocks are applied one at a time, the arms taking turns block by block; per block it prints
the medians of evaluate, puts and commit over the blocks after the first 40.

    python bench/bucket_log_ab.py [--buckets 128] [--heads-from-entries 65536]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
from ledger_bench import _Population

from node.ledger import LedgerLimits
from node.ledger import journal as journal_module
from node.ledger import keys as kl
from node.ledger import store as store_module
from node.ledger.block import Block
from node.ledger.effects import BlockEffects
from node.ledger.store import Decoded, Ledger, prepare_tx
from node.ledger.txn import Txn
from node.runtime.gc_policy import tune_gc

BLOCKS = 20  # per run of nonces, as in ledger_bench
BLOCK_TXS = 1000
WARM_BLOCKS = 40  # runs 0 and 1, alternating as in ledger_bench: not in the medians
LOG_SUFFIX = "_log"
LOG_ARM = "__bucket_log"  # a key in a ledger's dbs dict: this ledger writes through the log
LOGGED = (kl.BALANCES, kl.HISTORY_HEADS)
COMPARED = (*LOGGED, kl.HISTORY_LINKS)


class BucketLog:
    """The prototype's write path (see the module docstring), swapped in for Journal.put."""

    def __init__(self, buckets: int) -> None:
        if buckets not in {32, 64, 128, 256}:
            raise ValueError(f"--buckets must be 32, 64, 128 or 256, not {buckets}")
        self.buckets = buckets
        self.shift = 8 - (buckets.bit_length() - 1)  # keep log2(buckets) high bits
        self.height = 0  # the block being written (set by the patched write_in)
        self.logged = dict.fromkeys(LOGGED, 0)  # entries the log took, per tree
        self.shipped_put = journal_module.Journal.put
        self.shipped_write_in = store_module.Ledger.write_in

    def install(self) -> None:
        log = self

        def put(
            self: journal_module.Journal,
            txn: Txn,
            dbs: dict[str, Any],
            items: list[tuple[bytes, bytes]],
            *,
            entries_max: int,
            from_entries: int,
        ) -> None:
            if (
                LOG_ARM in dbs
                and entries_max
                and txn.stat(dbs[self.tree])["entries"] >= from_entries
            ):
                log.put(self, txn, dbs, items)
                return
            log.shipped_put(
                self, txn, dbs, items, entries_max=entries_max, from_entries=from_entries
            )

        def write_in(ledger: Ledger, txn: Txn, effects: BlockEffects) -> None:
            log.height = effects.height
            log.shipped_write_in(ledger, txn, effects)

        journal_module.Journal.put = put  # type: ignore[method-assign]
        store_module.Ledger.write_in = write_in  # type: ignore[method-assign, assignment]

    def put(
        self,
        journal: journal_module.Journal,
        txn: Txn,
        dbs: dict[str, Any],
        items: list[tuple[bytes, bytes]],
    ) -> None:
        log_db = dbs[journal.tree + LOG_SUFFIX]
        self.logged[journal.tree] += len(items)
        height = kl.height_key(self.height)
        groups: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in items:  # every key ends with the account's 32 bytes
            groups.setdefault(key[-kl.KEY_BYTES] >> self.shift, []).append((key, value))
        txn.cursor(db=log_db).putmulti(
            [(bytes([b]) + height, msgpack.packb(groups[b])) for b in sorted(groups)]
        )
        self.sweep(txn, log_db, dbs[journal.tree], self.height % self.buckets)

    @staticmethod
    def sweep(txn: Txn, log_db: Any, tree: Any, bucket: int) -> None:
        """Move bucket `bucket`'s records into the tree (in height order: the newest wins)."""
        prefix = bytes([bucket])
        cursor = txn.cursor(db=log_db)
        merged: dict[bytes, bytes] = {}
        records = 0
        if cursor.set_range(prefix):
            for key, value in cursor:
                if key[:1] != prefix:
                    break
                merged.update(msgpack.unpackb(value))
                records += 1
        if records:
            cursor.set_range(prefix)
            for _ in range(records):
                cursor.delete()
            txn.cursor(db=tree).putmulti(sorted(merged.items()))


def _merged_tables(ledger: Ledger, buckets: int) -> dict[str, dict[bytes, bytes]]:
    """Every bucket of every log and every journal merged into its tree, then the compared
    tables (the trees and the history links)."""
    env, dbs = ledger._env, ledger._dbs
    with env.begin(write=True) as txn:
        for name in LOGGED:
            for bucket in range(buckets):
                BucketLog.sweep(txn, dbs[name + LOG_SUFFIX], dbs[name], bucket)
        journal_module.BALANCES.merge(txn, dbs)
        journal_module.HISTORY_HEADS.merge(txn, dbs)
        return {
            name: {bytes(k): bytes(v) for k, v in txn.cursor(db=dbs[name])} for name in COMPARED
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=128)
    parser.add_argument(
        "--heads-from-entries",
        type=int,
        default=65_536,
        help="heads tree size from which both 1M arms put heads through their journal or"
        " log (the shipped default is 262,144: the bench's 1M heads tree, growing from"
        " empty, reaches it only with --history-entries in ledger_bench)",
    )
    args = parser.parse_args()
    log = BucketLog(args.buckets)
    log.install()
    # Ledger.open opens every name in ALL_DBS: the log tables too.
    kl.ALL_DBS = (*kl.ALL_DBS, *(name + LOG_SUFFIX for name in LOGGED))  # type: ignore[assignment]
    large = LedgerLimits(history_heads_journal_from_entries=args.heads_from_entries)
    arms = {
        "10k": (10_000, LedgerLimits()),
        "1M journal": (1_000_000, large),
        "1M log": (1_000_000, large),
    }
    with tempfile.TemporaryDirectory(prefix="bucket-log-ab-") as tmp:
        pops: dict[str, _Population] = {}
        blocks: dict[str, list[tuple[tuple[bytes, ...], list[Decoded]]]] = {}
        for name, (accounts, limits) in arms.items():
            pop = _Population(
                Path(tmp) / name.replace(" ", "-"), accounts, BLOCKS, BLOCK_TXS, limits
            )
            if name.endswith("log"):
                pop.ledger._dbs[LOG_ARM] = None
            run = [(b, [prepare_tx(x) for x in b]) for b in pop.raw_blocks]
            # The order ledger_bench applies them in (the nonces count that way).
            blocks[name] = [x for pair in zip(run, pop.decoded_blocks, strict=True) for x in pair]
            blocks[name] += pop.ab_blocks + pop.stream_blocks
            pops[name] = pop
        tune_gc()
        phases: dict[str, list[tuple[float, float, float]]] = {name: [] for name in arms}
        try:
            for number in range(len(blocks["10k"])):
                digests = {}
                for name, pop in pops.items():
                    txs, decoded = blocks[name][number]
                    height = pop.ledger.height + 1
                    block = Block(
                        height=height, timestamp_ms=pop.genesis.genesis_time_ms + height, txs=txs
                    )
                    t0 = time.perf_counter()
                    effects = pop.ledger.evaluate(block, decoded=decoded, signatures_ok=pop.ok)
                    t1 = time.perf_counter()
                    with pop.ledger._env.begin(write=True) as txn:
                        pop.ledger.write_in(txn, effects)
                        t2 = time.perf_counter()
                    t3 = time.perf_counter()
                    assert all(r.applied for r in effects.receipts), effects.receipts[0]
                    digests[name] = effects.state_digest
                    if number >= WARM_BLOCKS:
                        phases[name].append((t1 - t0, t2 - t1, t3 - t2))
                if digests["1M journal"] != digests["1M log"]:
                    raise SystemExit(f"block {number}: the 1M arms' state digests differ")
            base = statistics.median(sum(p) for p in phases["10k"])
            for name, rows in phases.items():
                evaluate, puts, commit = (
                    statistics.median(col) * 1e3 for col in zip(*rows, strict=True)
                )
                total = statistics.median(sum(p) for p in rows)
                print(
                    f"{name:>10}: per block evaluate {evaluate:.1f} ms, puts {puts:.1f} ms,"
                    f" commit {commit:.1f} ms; total {total * 1e3:.1f} ms"
                    f" ({base / total:.0%} of the 10k rate)"
                )
            journal_tables = _merged_tables(pops["1M journal"].ledger, args.buckets)
            log_tables = _merged_tables(pops["1M log"].ledger, args.buckets)
            for table in COMPARED:
                if journal_tables[table] != log_tables[table]:
                    raise SystemExit(f"{table}: the 1M arms' tables differ once merged")
            if not all(log.logged.values()):
                raise SystemExit(f"the log took no writes of some tree: {log.logged}")
            print(
                f"1M arms: same state digest after every block, same {', '.join(COMPARED)}"
                " once merged; entries written through the log: "
                + ", ".join(f"{tree} {count:,}" for tree, count in log.logged.items())
            )
        finally:
            for pop in pops.values():
                pop.ledger.close()


if __name__ == "__main__":
    main()
