"""Run simulation campaigns: `python -m tests.simulation --seeds 5000` or replay one seed.

python -m tests.simulation --seed 1234 --scenario byzantine     # replay one run, with trace
python -m tests.simulation --seeds 5000 --scenario mixed        # a campaign, with figures
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests.simulation.runner import SCENARIOS, run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation")
    parser.add_argument("--seed", type=int, help="replay one seed (prints its trace)")
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds in a campaign")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--scenario", default="mixed", choices=["mixed", *SCENARIOS], help="fault scenario"
    )
    parser.add_argument("--minutes", type=float, default=0.0, help="stop a campaign after this")
    args = parser.parse_args(argv)

    if args.seed is not None:
        result = run_seed(args.seed, args.scenario)
        print(result.report())
        if result.ok:
            print("--- trace ---")
            print("\n".join(result.trace[-60:]))
        print(f"stats: {result.stats}")
        return 0 if result.ok else 1

    started = time.perf_counter()
    totals: Counter[str] = Counter()
    scenarios: Counter[str] = Counter()
    failures = []
    seeds = blocks = txs = ticks = 0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if args.minutes and time.perf_counter() - started > args.minutes * 60:
            break
        result = run_seed(seed, args.scenario)
        seeds += 1
        blocks += result.blocks
        txs += result.txs
        ticks += result.ticks
        scenarios[result.scenario] += 1
        totals.update(result.stats)
        if not result.ok:
            failures.append(result)
            print(result.report(), file=sys.stderr)
        if seeds % 100 == 0:
            print(
                f"... {seeds} seeds, {len(failures)} failed, {time.perf_counter() - started:.0f}s"
            )
    wall = time.perf_counter() - started
    faults = (
        totals["crashes"]
        + totals["partitions"]
        + totals["messages_dropped"]
        + totals["messages_duplicated"]
        + totals["byzantine_injected"]
    )
    print(f"seeds:               {seeds} ({dict(scenarios)})")
    print(f"failed seeds:        {len(failures)} {[r.seed for r in failures][:20]}")
    print(f"blocks committed:    {blocks}")
    print(f"transactions:        {txs}")
    print(f"ticks simulated:     {ticks}")
    print(f"view changes:        {totals['view_changes']}")
    print(
        f"faults injected:     {faults} (crashes {totals['crashes']}, partitions "
        f"{totals['partitions']}, dropped {totals['messages_dropped']}, duplicated "
        f"{totals['messages_duplicated']}, byzantine {totals['byzantine_injected']})"
    )
    print(f"state transfers:     {totals['fetches']}")
    print(f"messages sent:       {totals['messages_sent']}")
    print(f"wall time:           {wall:.1f}s ({wall / max(seeds, 1) * 1000:.0f} ms/seed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
