"""Soak: seeded rounds of random fault drills under load on a 4-validator cluster of real
processes, for longer than CI can afford. Run it from the repository root:

    python -m tests.e2e.soak --minutes 10 --seed 7

Each round picks a drill (kill -9 and restart, pause past the view-change timeout, a node cut
off by a partition, the primary cut off) and a victim with the seeded generator, applies it
while clients keep sending transfers through every node, heals, and waits until the victim has
caught up. At the end every node must hold the same blocks, state digest and receipts, and the
supply must equal the sum of balances. The seed and the round log are printed, so a failing
sequence of drills can be replayed (timing on a real machine still varies).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nacl.signing
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.init import FAST_TIMEOUTS, init_cluster, ports_needed
from node.cluster.ports import free_port_block
from node.cluster.processes import ClusterProcesses
from node.cluster.status import fetch_status, wait_heights, wait_ready
from tests.e2e.helpers import Acked, assert_everything_everywhere, setup_holders, transfer_load

NODES = 4
HOLDERS = 8
DRILLS = ("kill", "pause", "isolate", "isolate_primary")
FAULT_HOLD_S = 3.0  # how long a fault lasts: past the 1 s view-change timeout
CATCH_UP_TIMEOUT_S = 60.0


async def _primary(procs: ClusterProcesses, fallback: str) -> str:
    for name in procs.names:
        try:
            return (await fetch_status(procs.layout.node(name), timeout_s=2.0)).primary
        except (OSError, trio.TooSlowError):
            continue
    return fallback


async def _round(procs: ClusterProcesses, rng: random.Random, acked: Acked) -> str:
    drill = rng.choice(DRILLS)
    victim = rng.choice(procs.names)
    if drill == "isolate_primary":
        victim = await _primary(procs, victim)
    if drill == "kill":
        procs.kill(victim)
        await trio.sleep(FAULT_HOLD_S)  # the fault's duration, not a synchronisation
        procs.start(victim)
        await wait_ready(procs, [victim])
    elif drill == "pause":
        procs.pause(victim)
        await trio.sleep(FAULT_HOLD_S)
        procs.resume(victim)
    else:
        await trio.to_thread.run_sync(lambda: procs.partition(((victim,),)))
        await trio.sleep(FAULT_HOLD_S)
        await trio.to_thread.run_sync(lambda: procs.partition(()))
    if acked.txs:
        await wait_heights(
            procs, max(acked.txs.values()), names=[victim], timeout_s=CATCH_UP_TIMEOUT_S
        )
    return f"{drill} {victim}"


async def soak(minutes: float, seed: int) -> int:
    rng = random.Random(seed)
    print(
        f"soak: seed {seed}, {minutes:g} min (replay: python -m tests.e2e.soak --minutes {minutes:g} --seed {seed})"
    )
    with tempfile.TemporaryDirectory(prefix="assetledger-soak-") as tmp:
        layout = init_cluster(
            Path(tmp) / "cluster",
            nodes=NODES,
            base_port=free_port_block(ports_needed(NODES, proxies=True)),
            timeouts=FAST_TIMEOUTS,
            log_format="text",
            proxies=True,
        )
        procs = ClusterProcesses(layout)
        started = time.monotonic()
        drills: Counter[str] = Counter()
        try:
            await bring_up(procs)
            holders = [nacl.signing.SigningKey.generate() for _ in range(HOLDERS)]
            acked = await setup_holders(procs, holders, each=1_000_000, via="node-0")
            setup_txs = len(acked.txs)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: transfer_load(
                        procs, holders, via=list(procs.names), acked=acked, stop=stop
                    )
                )
                round_no = 0
                while time.monotonic() - started < minutes * 60:
                    round_no += 1
                    what = await _round(procs, rng, acked)
                    drills[what.split()[0]] += 1
                    print(
                        f"  round {round_no}: {what}; {len(acked.txs) - setup_txs} transfers acknowledged"
                    )
                stop.set()
            await assert_everything_everywhere(procs, acked, holders, supply=HOLDERS * 1_000_000)
        except BaseException:
            print(
                f"soak FAILED: seed {seed}; node logs under {layout.root} were removed with the"
                " temporary directory; rerun with the same seed to reproduce",
                file=sys.stderr,
            )
            raise
        finally:
            procs.stop_all(timeout_s=5.0)
            procs.kill_all()
        elapsed = time.monotonic() - started
        transfers = len(acked.txs) - setup_txs
        print(
            f"soak passed: seed {seed}, {elapsed:.0f} s, {sum(drills.values())} drills"
            f" ({', '.join(f'{k} {v}' for k, v in sorted(drills.items()))}),"
            f" {transfers} transfers acknowledged, height {max(acked.txs.values())},"
            " all nodes agree"
        )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    sys.exit(trio.run(soak, args.minutes, seed))


if __name__ == "__main__":
    main()
