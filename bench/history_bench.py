"""Account history (node/ledger/history.py): what converting a schema 2 store costs, what a
page of history costs to read, and what the writer's heads cache costs in memory.

    python bench/history_bench.py [--entries 1000000] [--accounts 100000]

Builds schema 2's history table (account ‖ position -> tx id) with `--entries` entries of
`--accounts` random accounts in a temporary LMDB environment, converts it into chains as
`Ledger.open` does (one write transaction, committed durably), then reads pages of the
busiest account's history: the first read after the conversion and then the same page again
(its pages in memory). Last, the bytes one cached head takes (tracemalloc).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from collections import Counter

import lmdb

from node.ledger import keys as kl
from node.ledger.history import page, upgrade_from_schema_2

PAGE_ENTRIES = 1000  # LedgerLimits.history_page_max's default
READ_ROUNDS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(3)
    accounts = [rng.randbytes(32) for _ in range(args.accounts)]
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        env = lmdb.open(tmp, map_size=64 << 30, max_dbs=5)
        names = (kl.HISTORY_HEADS, kl.HISTORY_HEADS_LOG, kl.HISTORY_LINKS, kl.META)
        dbs = {n: env.open_db(n.encode()) for n in names}
        legacy = env.open_db(kl.LEGACY_HISTORY.encode())
        owners = [rng.choice(accounts) for _ in range(args.entries)]
        with env.begin(write=True) as txn:
            txn.cursor(db=legacy).putmulti(
                sorted(
                    (owner + kl.position_key(1 + i // 1000, i % 1000), rng.randbytes(32))
                    for i, owner in enumerate(owners)
                )
            )
        started = time.perf_counter()
        with env.begin(write=True) as txn:
            converted = upgrade_from_schema_2(txn, dbs, legacy)
        took = time.perf_counter() - started
        print(
            f"conversion: {converted:,} entries of {args.accounts:,} accounts in {took:.2f} s,"
            f" {took / converted * 1e6:.2f} µs per entry (commit included)"
        )
        busiest = Counter(owners).most_common(1)[0][0]
        with env.begin() as txn:
            for round_ in range(READ_ROUNDS):
                started = time.perf_counter()
                entries = page(txn, dbs, busiest, PAGE_ENTRIES, None)
                took = time.perf_counter() - started
                when = "first read" if round_ == 0 else "read again"
                print(
                    f"page of {len(entries)} entries ({when}): {took * 1e3:.2f} ms,"
                    f" {took / len(entries) * 1e6:.1f} µs per entry"
                )
        env.close()
    tracemalloc.start()
    heads = {bytes(bytearray(a)): kl.position_key(7, i) for i, a in enumerate(accounts)}
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"heads cache: {used / len(heads):.0f} bytes per cached head")


if __name__ == "__main__":
    main()
