"""Ledger throughput: blocks of pre-signed transfers, with 10k and 1M funded accounts.

Prints, per population size:
- transfers/s applied from raw bytes (decode + rules + one durable LMDB commit per block),
  with signature results passed in (`signatures_ok`), i.e. EXCLUDING signature checks;
- the same with transactions decoded beforehand (`decoded=`), as a node does when it decoded
  them at admission: the pure rule + store cost;
- an A/B of the block pipeline (node/ledger/pipeline.py), which evaluates the next blocks
  while a commit waits on the disk and commits the blocks evaluated meanwhile together
  (every block still durable before its receipts are handed out): pre-decoded blocks in
  chunks, taking turns one at a time, pipelined with one block per commit, and pipelined
  with group commit;
- a stream: one pipeline (group commit) over fresh pre-decoded blocks, timed from the first
  submit until the last block is durable, which is how a node applies a run of blocks; and
  its phases per block (`BlockPipeline.stats`), which say whether the caller (evaluate +
  puts) or the writer (puts + commit) bounds it;
- the state cache: what it loaded when the ledger opened (the bench funds the population
  straight into LMDB, then opens the ledger again, as a starting node does), its misses per
  block and its cuts: counts, which do not move with the machine's speed as the times do;
- signature checks/s, single-threaded and with a thread pool.

Per block, both wall-clock time (includes the fsync of the commit and any time the machine
gives to other processes) and this process's CPU time are measured; medians are reported.

The funded population is written straight into LMDB in large transactions (1M signed mint
transactions would take longer than the measurement itself); those writes bypass the state
digest, which is irrelevant to a throughput figure.

    python bench/ledger_bench.py [--accounts 10000,1000000] [--blocks 20] [--block-txs 1000]
                                 [--general-path] [--state-cache-entries N]
                                 [--balance-log-buckets N]
                                 [--heads-log-buckets N] [--history-entries N]
                                 [--separate-signers]

A population of N accounts is N funded accounts in all: its first
min(N, blocks x block-txs) accounts sign the transfers, taking turns, and every transfer
goes to a random other account of the population. `--separate-signers` restores the
arrangement up to round 14 of docs/benchmarks.md: blocks x block-txs extra funded accounts
sign, each once per run, and only the population receives (so "10,000 accounts" meant
30,000 funded accounts at the default 20 blocks).

`--general-path` turns the transfer fast path (node/ledger/fastpath.py) off, for A/B runs;
`--state-cache-entries 0` turns the state cache between blocks (node/ledger/state_cache.py)
off (default: LedgerLimits' default); `--balance-log-buckets 0` writes balances straight
into their tree, `--heads-log-buckets 0` history heads into theirs
(node/ledger/bucket_log.py). `--history-entries N` gives each
population a past: N history entries of its accounts (at height 0, chained as the ledger
chains them, node/ledger/history.py) before the first block, as a chain that has run a while
has (a fresh store's history trees are small, and small trees share pages).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import nacl.signing

from config.genesis import AccountSpec, AssetSpec, Genesis, ValidatorSpec
from node.bench.rss import read_status_kib
from node.ledger import Block, Ledger, LedgerLimits, prepare_tx, store
from node.ledger import keys as kl
from node.ledger.history import upgrade_from_schema_2
from node.ledger.pipeline import GROUP_BLOCKS_MAX, BlockPipeline, PipelineStats
from node.ledger.records import AccountRecord, AccountStatus, encode_int
from node.ledger.store import Decoded
from node.runtime.gc_policy import tune_gc
from node.tx import SignedTransaction, build_transfer, public_key, verify_batch, verify_parallel

CHAIN_ID = "bench-chain"
ASSET = "BOND-2036"
FUNDING = 1_000_000
LOAD_TXN_ACCOUNTS = 100_000
RUNS = 6  # runs of blocks per population (see _Population)
SIG_ROUNDS = 5  # alternating rounds of the signature-check A/B
AB_CHUNK_BLOCKS = 10  # long enough that starting and draining a pipeline weigh little
# The pipeline A/B's arms and each one's group_blocks_max (None: apply_block, one at a time).
AB_ARM_GROUPS: dict[str, int | None] = {
    "one at a time": None,
    "pipelined, 1 block per commit": 1,
    "pipelined, group commit": GROUP_BLOCKS_MAX,
}
AB_ARMS = list(AB_ARM_GROUPS)


def _key(i: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(b"bench-account-%d" % i).digest())


def _genesis() -> tuple[Genesis, nacl.signing.SigningKey]:
    regulator = _key(-1)
    issuer = _key(-2)
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=1_700_000_000_000,
        regulator_keys=(public_key(regulator),),
        validators=(
            ValidatorSpec(name="v0", public_key=public_key(_key(-3)), address="127.0.0.1:7000"),
        ),
        accounts=(
            AccountSpec(
                public_key=public_key(issuer),
                category="entity",
                kyc_hash=bytes(32),
                roles=frozenset({"issuer"}),
            ),
        ),
        assets=(
            AssetSpec(
                asset_id=ASSET, name="Bond", decimals=2, cap=2**62, issuer=public_key(issuer)
            ),
        ),
    )
    return genesis, issuer


def _fund(ledger: Ledger, accounts: int, signing: list[bytes] | None = None) -> list[bytes]:
    """Register and fund `accounts` accounts directly in LMDB; returns their public keys.

    The first accounts are `signing` (public keys of accounts that sign); the others are
    random 32-byte strings (deriving 1M Ed25519 keys would dominate the setup).
    """
    signing = signing or []
    env, dbs = ledger._env, ledger._dbs
    record = AccountRecord(
        category="individual",
        kyc_hash=bytes(32),
        expires_at_ms=None,
        status=AccountStatus.REGISTERED,
        recovered_to=None,
        account_freeze=None,
        asset_freezes=(),
        assets=(ASSET,),
        registered_height=0,
    ).encode()
    funding = encode_int(FUNDING)
    rng = random.Random(7)
    keys: list[bytes] = []
    for start in range(0, accounts, LOAD_TXN_ACCOUNTS):
        with env.begin(write=True) as txn:
            for j in range(start, min(accounts, start + LOAD_TXN_ACCOUNTS)):
                pk = signing[j] if j < len(signing) else rng.randbytes(32)
                keys.append(pk)
                txn.put(pk, record, db=dbs[kl.ACCOUNTS])
                txn.put(kl.balance_key(ASSET, pk), funding, db=dbs[kl.BALANCES])
    with env.begin(write=True) as txn:
        asset = ledger.asset(ASSET)
        assert asset is not None
        txn.put(
            ASSET.encode(),
            asset._replace(supply=asset.supply + FUNDING * accounts).encode(),
            db=dbs[kl.ASSETS],
        )
    return keys


def _transfers(
    signers: list[nacl.signing.SigningKey],
    recipients: list[bytes],
    blocks: int,
    block_txs: int,
) -> tuple[list[SignedTransaction], list[list[tuple[bytes, ...]]]]:
    """RUNS runs of `blocks` blocks of transfers, pre-signed: (every transaction in the order
    applied, each run's blocks of raw transactions). The signers take turns, so a block's
    signers are distinct while there are at least `block_txs` of them, and with
    blocks x block_txs signers (--separate-signers) each signs once per run, block b of every
    run by the same ones. Nonces count up in the order the bench applies the blocks: runs 0
    and 1 alternate block by block, then runs 2 to RUNS - 1 follow one another (see main)."""
    rng = random.Random(11)
    order = [(r, b) for b in range(blocks) for r in (0, 1)]
    order += [(r, b) for r in range(2, RUNS) for b in range(blocks)]
    keys = [public_key(k) for k in signers]
    nonces = [0] * len(signers)
    txs: list[SignedTransaction] = []
    runs: list[list[tuple[bytes, ...]]] = [[()] * blocks for _ in range(RUNS)]
    for r, b in order:
        raw = []
        first = (r * blocks + b) * block_txs  # the signers' turn, by run, not by order applied
        for i in range(block_txs):
            s = (first + i) % len(signers)
            to = rng.choice(recipients)
            while to == keys[s]:  # a transfer to oneself is refused
                to = rng.choice(recipients)
            tx = build_transfer(signers[s], CHAIN_ID, nonces[s], ASSET, to, rng.randint(1, 100))
            nonces[s] += 1
            txs.append(tx)
            raw.append(tx.encode())
        runs[r][b] = tuple(raw)
    return txs, runs


def _seed_history(ledger: Ledger, accounts: list[bytes], entries: int) -> None:
    """`entries` history entries of random `accounts`, at positions (0, i) before every block:
    written in schema 2's layout and converted into chains as `Ledger.open` converts them
    (node/ledger/history.py)."""
    if not entries:
        return
    rng = random.Random(5)
    env, dbs = ledger._env, ledger._dbs
    with env.begin(write=True) as txn:
        legacy = env.open_db(kl.LEGACY_HISTORY.encode(), txn=txn)
        txn.cursor(db=legacy).putmulti(
            sorted(
                (rng.choice(accounts) + kl.position_key(0, i), rng.randbytes(32))
                for i in range(entries)
            )
        )
        upgrade_from_schema_2(txn, dbs, legacy)


class _Population:
    """One ledger with `accounts` funded accounts and its pre-signed, pre-decoded blocks."""

    def __init__(  # noqa: PLR0917 -- the bench's knobs, passed through
        self,
        root: Path,
        accounts: int,
        blocks: int,
        block_txs: int,
        limits: LedgerLimits,
        history_entries: int = 0,
        separate_signers: bool = False,
    ) -> None:
        genesis, _ = _genesis()
        self.genesis = genesis
        self.accounts = accounts
        self.ledger = Ledger.open(root / f"ledger-{accounts}", genesis, limits=limits)
        self.genesis_height = self.ledger.height
        t0 = time.perf_counter()
        # The population signs its own transfers; with --separate-signers, extra accounts
        # sign and only the population receives (the arrangement up to round 14).
        if separate_signers:
            signers = [_key(i) for i in range(blocks * block_txs)]
            population = _fund(self.ledger, accounts)
            _fund(self.ledger, len(signers), [public_key(k) for k in signers])
        else:
            signers = [_key(i) for i in range(min(accounts, blocks * block_txs))]
            population = _fund(self.ledger, accounts, [public_key(k) for k in signers])
        _seed_history(self.ledger, population, history_entries)
        self.setup_s = time.perf_counter() - t0
        # Funding wrote straight into LMDB, behind the state cache: open the ledger again, as
        # a node does when it starts, so the cache loads the funded state (if it fits).
        self.ledger.close()
        rss_before = read_status_kib(os.getpid(), "VmRSS") or 0
        self.ledger = Ledger.open(root / f"ledger-{accounts}", genesis, limits=limits)
        self.open_rss_mib = ((read_status_kib(os.getpid(), "VmRSS") or 0) - rss_before) / 1024
        self.txs, runs = _transfers(signers, population, blocks, block_txs)
        self.raw_blocks = runs[0]
        self.decoded_blocks = [(b, [prepare_tx(x) for x in b]) for b in runs[1]]
        self.ab_blocks = [(b, [prepare_tx(x) for x in b]) for b in runs[2] + runs[3] + runs[4]]
        self.stream_blocks = [(b, [prepare_tx(x) for x in b]) for b in runs[5]]
        self.stream_s = 0.0
        self.stream_stats = PipelineStats(0, 0, 0.0, 0.0, 0.0)
        self.ab_s = dict.fromkeys(AB_ARMS, 0.0)  # wall seconds, total per arm
        self.ab_blocks_done = dict.fromkeys(AB_ARMS, 0)
        self.ok = [True] * block_txs
        self.raw_s: list[float] = []
        self.pre_s: list[float] = []
        self.raw_cpu_s: list[float] = []
        self.pre_cpu_s: list[float] = []

    def apply(self, txs: tuple[bytes, ...], decoded: list[Decoded] | None) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) to apply one block."""
        h = self.ledger.height + 1
        block = Block(height=h, timestamp_ms=self.genesis.genesis_time_ms + h, txs=txs)
        t, c = time.perf_counter(), time.process_time()
        receipts = self.ledger.apply_block(block, decoded=decoded, signatures_ok=self.ok)
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        assert all(r.applied for r in receipts), receipts[0]
        return elapsed, cpu

    def apply_pipelined(
        self,
        blocks: list[tuple[tuple[bytes, ...], list[Decoded]]],
        group_blocks_max: int = GROUP_BLOCKS_MAX,
    ) -> tuple[float, PipelineStats]:
        """Wall seconds to apply pre-decoded `blocks` through one BlockPipeline, from the
        first submit until the last block is durable, and that pipeline's phase times."""
        t = time.perf_counter()
        with BlockPipeline(self.ledger, group_blocks_max=group_blocks_max) as pipe:
            pending = []
            for txs, decoded in blocks:
                h = pipe.tip[0] + 1
                block = Block(height=h, timestamp_ms=self.genesis.genesis_time_ms + h, txs=txs)
                pending.append(pipe.submit(block, decoded=decoded, signatures_ok=self.ok))
            for p in pending:
                receipts = p.wait()
                assert all(r.applied for r in receipts), receipts[0]
        return time.perf_counter() - t, pipe.stats()

    def run_ab(self, chunk_blocks: int) -> None:
        """The A/B of the block pipeline: `ab_blocks` in chunks, the arms (AB_ARMS) taking
        turns chunk by chunk so drift in machine speed hits them alike. A pipelined chunk
        is timed from the first submit until its last block is durable."""
        blocks = self.ab_blocks
        for number, start in enumerate(range(0, len(blocks), chunk_blocks)):
            chunk = blocks[start : start + chunk_blocks]
            arm = AB_ARMS[number % len(AB_ARMS)]
            group_blocks_max = AB_ARM_GROUPS[arm]
            t = time.perf_counter()
            if group_blocks_max is None:
                for txs, decoded in chunk:
                    self.apply(txs, decoded)
            else:
                self.apply_pipelined(chunk, group_blocks_max)
            self.ab_s[arm] += time.perf_counter() - t
            self.ab_blocks_done[arm] += len(chunk)


def _phases(accounts: int, stats: PipelineStats) -> str:
    """The stream's phases per block (BlockPipeline.stats). Evaluation waits out the puts,
    and the writer puts and commits one group after another, so a block takes at least
    max(evaluate + puts, puts + commit): whichever is larger bounds the rate."""
    ms_per_block = 1e3 / max(1, stats.blocks)  # seconds in total -> milliseconds per block
    evaluate = stats.evaluate_s * ms_per_block
    puts = stats.puts_s * ms_per_block
    commit = stats.commit_s * ms_per_block
    return (
        f"{accounts:>9,} accounts, stream per block: evaluate {evaluate:.1f} ms, puts {puts:.1f}"
        f" ms, commit {commit:.1f} ms ({stats.blocks / max(1, stats.commits):.1f} blocks per"
        f" commit); caller (evaluate + puts) {evaluate + puts:.1f} ms, writer (puts + commit)"
        f" {puts + commit:.1f} ms"
    )


def _signature_rates(txs: list[SignedTransaction], threads: int) -> tuple[float, float, float]:
    """(checks/s on 1 thread, on `threads`, their ratio): medians over SIG_ROUNDS rounds,
    each timing one thread then the pool on half of `txs` in turn. This machine's per-core
    speed moves by tens of percent within seconds, so a single pair of runs minutes long
    would measure that drift rather than the pool's scaling."""
    half = len(txs) // 2
    one, pool, ratios = [], [], []
    for r in range(SIG_ROUNDS):
        a, b = (txs[:half], txs[half:]) if r % 2 == 0 else (txs[half:], txs[:half])
        t = time.perf_counter()
        assert all(verify_batch(a))
        one.append(len(a) / (time.perf_counter() - t))
        t = time.perf_counter()
        assert all(verify_parallel(b, threads))
        pool.append(len(b) / (time.perf_counter() - t))
        ratios.append(pool[-1] / one[-1])
    return statistics.median(one), statistics.median(pool), statistics.median(ratios)


def _rate(block_txs: int, seconds: list[float]) -> tuple[float, float]:
    """(median per-block rate, aggregate rate) in tx/s."""
    return block_txs / statistics.median(seconds), block_txs * len(seconds) / sum(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="10000,1000000")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-txs", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--general-path", action="store_true", help="disable the transfer fast path (A/B runs)"
    )
    parser.add_argument(
        "--state-cache-entries",
        type=int,
        default=LedgerLimits().state_cache_entries_max,
        help="state cache bound between blocks; 0 turns it off (A/B runs)",
    )
    parser.add_argument(
        "--balance-log-buckets",
        type=int,
        default=LedgerLimits().balance_log_buckets,
        help="buckets of the log in front of the balances tree; 0 turns it off (A/B runs)",
    )
    parser.add_argument(
        "--heads-log-buckets",
        type=int,
        default=LedgerLimits().history_heads_log_buckets,
        help="buckets of the log in front of the history heads tree; 0 turns it off (A/B runs)",
    )
    parser.add_argument(
        "--heads-log-from-entries",
        type=int,
        default=LedgerLimits().history_heads_log_from_entries,
        help="heads tree size from which its log is used (the bench's heads tree grows from"
        " empty: at 1M accounts it passes the default within ~30 blocks)",
    )
    parser.add_argument(
        "--separate-signers",
        action="store_true",
        help="transfers signed by blocks x block-txs extra funded accounts, each signing once"
        " per run, not by the population (the arrangement up to round 14)",
    )
    parser.add_argument(
        "--history-entries",
        type=int,
        default=0,
        help="history entries each population already holds, as a chain that has run a while",
    )
    args = parser.parse_args()
    if args.general_path:
        # Every transaction through Ledger._run, which the fast path must equal (tested).
        store.transfer_fast_path = lambda *_a, **_k: lambda _stx, _index: None
    sizes = [int(x) for x in args.accounts.split(",")]
    if min(sizes) < 2:
        parser.error(
            "--accounts: every population needs at least 2 accounts (a transfer goes from"
            " one account to another)"
        )
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before (1/5/15 min): {load}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores;"
        f" {args.blocks} blocks x {args.block_txs} transfers per population, durable commits"
        f" (sync=True); populations interleaved block by block so background load hits all alike;"
        f" transfer fast path {'OFF' if args.general_path else 'on'};"
        f" state cache {args.state_cache_entries:,} entries;"
        f" balance log {args.balance_log_buckets} buckets"
        f" (from {LedgerLimits().balance_log_from_entries:,} balances);"
        f" heads log {args.heads_log_buckets} buckets"
        f" (from {args.heads_log_from_entries:,} heads);"
        f" {args.history_entries:,} history entries before the first block;"
        + (
            f" signed by {args.blocks * args.block_txs:,} extra accounts"
            if args.separate_signers
            else " signed by the population"
        )
    )
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        limits = LedgerLimits(
            state_cache_entries_max=args.state_cache_entries,
            balance_log_buckets=args.balance_log_buckets,
            history_heads_log_buckets=args.heads_log_buckets,
            history_heads_log_from_entries=args.heads_log_from_entries,
        )
        pops = [
            _Population(
                Path(tmp),
                n,
                args.blocks,
                args.block_txs,
                limits,
                args.history_entries,
                args.separate_signers,
            )
            for n in sizes
        ]
        # The node's GC settings (node/runtime/gc_policy.py). Its freeze also moves the
        # harness's pre-signed and pre-decoded transactions (hundreds of thousands of objects
        # a node never holds at once) out of the collector's walks.
        tune_gc()
        try:
            # Raw and pre-decoded blocks alternate too: the history, tx-index and nonce trees
            # grow with every block, so running all raw blocks first would hand the
            # pre-decoded ones bigger trees (more pages per commit) and skew the comparison.
            for b in range(args.blocks):
                for p in pops:
                    wall, cpu = p.apply(p.raw_blocks[b], None)
                    p.raw_s.append(wall)
                    p.raw_cpu_s.append(cpu)
                    txs, decoded = p.decoded_blocks[b]
                    wall, cpu = p.apply(txs, decoded)
                    p.pre_s.append(wall)
                    p.pre_cpu_s.append(cpu)
            # Every arm gets at least one chunk, also with a small --blocks.
            ab_chunk_blocks = max(1, min(AB_CHUNK_BLOCKS, 3 * args.blocks // len(AB_ARMS)))
            for p in pops:
                p.run_ab(ab_chunk_blocks)
            for p in pops:
                p.stream_s, p.stream_stats = p.apply_pipelined(p.stream_blocks)
            sample_raw = [t.encode() for t in pops[0].txs[:10_000]]
            t = time.perf_counter()
            for x in sample_raw:
                prepare_tx(x)
            decode_rate = len(sample_raw) / (time.perf_counter() - t)
            sig1, sig_n, sig_ratio = _signature_rates(pops[0].txs[:10_000], args.threads)
            for p in pops:
                raw_med, raw_agg = _rate(args.block_txs, p.raw_s)
                pre_med, pre_agg = _rate(args.block_txs, p.pre_s)
                raw_cpu, _ = _rate(args.block_txs, p.raw_cpu_s)
                pre_cpu, _ = _rate(args.block_txs, p.pre_cpu_s)
                print(
                    f"{p.accounts:>9,} accounts (setup {p.setup_s:4.1f}s): wall clock:"
                    f" from raw bytes {raw_med:>7,.0f} tx/s median ({raw_agg:>7,.0f} overall),"
                    f" pre-decoded {pre_med:>7,.0f} tx/s median ({pre_agg:>7,.0f} overall)"
                    f" | CPU time only: raw {raw_cpu:>7,.0f} tx/s, pre-decoded {pre_cpu:>7,.0f} tx/s"
                )
            for p in pops:
                rates = {
                    arm: p.ab_blocks_done[arm] * args.block_txs / p.ab_s[arm] for arm in AB_ARMS
                }
                base = rates[AB_ARMS[0]]
                print(
                    f"{p.accounts:>9,} accounts, pre-decoded, chunks of {ab_chunk_blocks} blocks"
                    " taking turns, wall clock: "
                    + ", ".join(
                        f"{arm} {rate:>7,.0f} tx/s ({rate / base:.2f}x)"
                        for arm, rate in rates.items()
                    )
                )
            for p in pops:
                rate = len(p.stream_blocks) * args.block_txs / p.stream_s
                print(
                    f"{p.accounts:>9,} accounts, pre-decoded, one pipeline (group commit) over"
                    f" {len(p.stream_blocks)} blocks, first submit to last block durable:"
                    f" {rate:>7,.0f} tx/s"
                )
                print(_phases(p.accounts, p.stream_stats))
            for p in pops:
                # Counts, not times: they do not move with the machine's speed.
                cache = p.ledger.state_cache_stats()
                applied = p.ledger.height - p.genesis_height
                if not cache.entries_max:
                    print(f"{p.accounts:>9,} accounts, state cache off")
                    continue
                print(
                    f"{p.accounts:>9,} accounts, state cache: {cache.warmed:,} entries loaded at"
                    f" open in {cache.warm_s:.1f} s (+{p.open_rss_mib:,.0f} MiB resident),"
                    f" {cache.loads / applied:>6,.0f} keys read into it per block (its misses),"
                    f" {cache.cuts} cut{'' if cache.cuts == 1 else 's'} in {applied}"
                    f" blocks, {cache.entries:,} of {cache.entries_max:,} entries at the end"
                )
            print(
                f"decode (canonical check + typed validation): {decode_rate:>7,.0f} tx/s, 1 thread"
            )
            print(
                f"signature checks (median of {SIG_ROUNDS} alternating rounds): {sig1:>7,.0f}/s on"
                f" 1 thread, {sig_n:>7,.0f}/s on {args.threads} threads ({sig_ratio:.2f}x, median"
                f" of the rounds' ratios); one check takes {1e6 / sig1:.0f} µs, a gauge of this"
                " machine's speed right now"
            )
            if len(pops) >= 2:
                small, large = pops[0], pops[-1]
                for label, attr in (
                    ("raw, wall", "raw_s"),
                    ("pre-decoded, wall", "pre_s"),
                    ("raw, CPU", "raw_cpu_s"),
                    ("pre-decoded, CPU", "pre_cpu_s"),
                ):
                    ratio = statistics.median(getattr(small, attr)) / statistics.median(
                        getattr(large, attr)
                    )
                    print(
                        f"{label}: {large.accounts:,} accounts run at {ratio:.0%} of the"
                        f" {small.accounts:,}-account rate (median per block)"
                    )
                # Every arm: the one-at-a-time arm runs after the per-block medians' blocks,
                # on larger trees (at 1M the heads tree is still growing early on).
                for arm in AB_ARMS:
                    ratio = (large.ab_blocks_done[arm] / large.ab_s[arm]) / (
                        small.ab_blocks_done[arm] / small.ab_s[arm]
                    )
                    print(
                        f"{arm} (A/B arm), pre-decoded, wall: {large.accounts:,} accounts run"
                        f" at {ratio:.0%} of the {small.accounts:,}-account rate"
                    )
                print(
                    f"stream, pre-decoded, wall: {large.accounts:,} accounts run at"
                    f" {small.stream_s / large.stream_s:.0%} of the {small.accounts:,}-account rate"
                )
        finally:
            for p in pops:
                p.ledger.close()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after (1/5/15 min): {load}")


if __name__ == "__main__":
    main()
