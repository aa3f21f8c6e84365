"""A/B of the state cache between blocks (node/ledger/state_cache.py), in one process.

Two identical ledgers per population size (the same funded accounts and the same pre-signed
transfers as bench/ledger_bench.py), one with the default cache, one with it off. The cached
one loaded the whole funded state when it was opened, if it fits (as a starting node does).
Both first apply the same 20 blocks from raw bytes; then every chunk of
pre-decoded blocks goes through a BlockPipeline on both, the order alternating chunk by
chunk, so drift in machine speed hits both alike. Prints transfers/s per arm (wall clock,
first submit until the last block is durable) and checks that both ledgers end on the same
state digest.

    python bench/state_cache_ab.py [--accounts 10000,1000000] [--chunk-blocks 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from ledger_bench import _Population

from node.ledger import LedgerLimits
from node.runtime.gc_policy import tune_gc

BLOCKS = 20  # per run of nonces, as in ledger_bench
BLOCK_TXS = 1000


def run(accounts: int, chunk_blocks: int, root: Path) -> None:
    arms = {
        "cache": LedgerLimits(),
        "no cache": LedgerLimits(state_cache_entries_max=0),
    }
    pops = {
        name: _Population(root / name.replace(" ", "-"), accounts, BLOCKS, BLOCK_TXS, limits)
        for name, limits in arms.items()
    }
    tune_gc()  # the node's GC settings; see ledger_bench
    for b in range(BLOCKS):
        for pop in pops.values():
            pop.apply(pop.raw_blocks[b], None)
    seconds = dict.fromkeys(pops, 0.0)
    order = list(pops)
    first = pops[order[0]]
    total = len(first.decoded_blocks) + len(first.ab_blocks)
    for number, start in enumerate(range(0, total, chunk_blocks)):
        for name in order if number % 2 == 0 else order[::-1]:
            pop = pops[name]
            blocks = (pop.decoded_blocks + pop.ab_blocks)[start : start + chunk_blocks]
            seconds[name] += pop.apply_pipelined(blocks)[0]
    digests = {pop.ledger.state_digest for pop in pops.values()}
    assert len(digests) == 1, "the two ledgers diverged"
    rates = {name: total * BLOCK_TXS / s for name, s in seconds.items()}
    cache = pops["cache"].ledger._state_cache
    print(
        f"{accounts:>9,} accounts, {total} pre-decoded blocks in chunks of {chunk_blocks},"
        f" pipelined, wall clock: "
        + ", ".join(f"{name} {rate:>7,.0f} tx/s" for name, rate in rates.items())
        + f" ({rates['cache'] / rates['no cache']:.2f}x); cache held {len(cache):,} entries"
        " at the end; same final state digest"
    )
    for pop in pops.values():
        pop.ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="10000,1000000")
    parser.add_argument("--chunk-blocks", type=int, default=10)
    args = parser.parse_args()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before (1/5/15 min): {load}")
    for accounts in (int(x) for x in args.accounts.split(",")):
        with tempfile.TemporaryDirectory(prefix="state-cache-ab-") as tmp:
            run(accounts, args.chunk_blocks, Path(tmp))
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after (1/5/15 min): {load}")


if __name__ == "__main__":
    main()
