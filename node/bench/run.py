"""One benchmark run: sign, set up accounts, measure the ceiling, drive the load, report.

    async with local_cluster(4) as target:
        result = await run_bench(target, BenchOptions(txs=20_000), reporter)

Setup goes through real transactions (the regulator registers the holders, the issuer
creates the asset and mints to them), driven by the same pipelined load driver as the
measured part, but not measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import nacl.signing
import trio

from config.keyfile import KeyFileError, load_key_file
from node.bench.ceiling import measure_ceiling
from node.bench.cpu import cpu_snapshot, cpu_used
from node.bench.errors import BenchError
from node.bench.load import WORKERS_PER_CLIENT_MAX, LoadDriver, LoadReport, Progress, Watch
from node.bench.presign import (
    HOLDERS_MAX,
    TXS_MAX,
    PreSigned,
    holder_keys,
    presign_issuance,
    presign_registrations,
    presign_transfers,
    transfers_per_holder,
)
from node.bench.rss import RssSampler
from node.bench.stats import BenchResult, Ceiling, LatencySummary
from node.bench.target import Target
from node.client import AsyncClient, ClientError
from node.tx import decode_signed_transaction, public_key

CLIENTS_MAX = 64  # the node's default client_connections_per_address_max
HOLDERS_DEFAULT_MAX = 1_000
SETUP_IN_FLIGHT = 1_000  # one signer's nonces: stays inside the mempool's 1,024-nonce window
SETUP_DRAIN_S = 60.0
RSS_INTERVAL_S = 0.25
CEILING_SAMPLES = 256
CONNECT_TIMEOUT_S = 5.0
TRANSFER_AMOUNT = 1
SIGN_PROGRESS_EVERY = 2_000


class Reporter(Protocol):
    """What the CLI shows while the run goes on (a rich progress display, or nothing)."""

    def phase(self, name: str, total: int) -> None: ...
    def advance(self, done: int) -> None: ...
    def progress(self, p: Progress) -> None: ...
    def note(self, line: str) -> None: ...


class SilentReporter:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, done: int) -> None:
        pass

    def progress(self, p: Progress) -> None:
        pass

    def note(self, line: str) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    txs: int = 20_000
    duration_s: float | None = None  # measurement window; None: until every tx commits
    clients: int = 8  # submit connections, spread round-robin over the reachable nodes
    in_flight_max: int = 500  # admitted transactions waiting for their commit, at most
    holders: int | None = None  # None: min(1,000, txs / 4)
    workers_per_client: int | None = None  # None: enough to fill the window
    ceiling_s: float = 1.0
    drain_timeout_s: float = 60.0
    seed: bytes | None = None  # holder keys and asset id; None: fresh each run
    watch: Watch = Watch.BLOCKS  # how commits are learnt (see node.bench.load)

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.txs <= TXS_MAX, f"--txs must be 1..{TXS_MAX}"),
            (1 <= self.clients <= CLIENTS_MAX, f"--clients must be 1..{CLIENTS_MAX}"),
            (self.in_flight_max >= 1, "--in-flight must be >= 1"),
            (self.duration_s is None or self.duration_s > 0, "--duration must be > 0"),
            (
                self.holders is None or 2 <= self.holders <= HOLDERS_MAX,
                f"--holders must be 2..{HOLDERS_MAX}",
            ),
            (0 < self.ceiling_s <= 60, "ceiling measurement must be (0, 60] s"),
            (self.drain_timeout_s > 0, "drain timeout must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise BenchError(message)

    @property
    def holder_count(self) -> int:
        if self.holders is not None:
            return self.holders
        return min(HOLDERS_DEFAULT_MAX, max(2, -(-self.txs // 4)))

    @property
    def workers(self) -> int:
        if self.workers_per_client is not None:
            return self.workers_per_client
        return max(1, min(WORKERS_PER_CLIENT_MAX, -(-self.in_flight_max // self.clients)))


@asynccontextmanager
async def _connections(
    target: Target, count: int, chain_id: str
) -> AsyncIterator[list[AsyncClient]]:
    async with AsyncExitStack() as stack:
        clients = []
        for i in range(count):
            entry = target.reachable[i % len(target.reachable)]
            try:
                client = await stack.enter_async_context(
                    AsyncClient.connect(
                        entry.host,
                        entry.client_port,
                        chain_id=chain_id,
                        connect_timeout_s=CONNECT_TIMEOUT_S,
                    )
                )
            except ClientError as exc:
                raise BenchError(f"{entry.name}: {exc}") from None
            clients.append(client)
        yield clients


def _sign_transfers(
    options: BenchOptions,
    keys: Sequence[nacl.signing.SigningKey],
    chain_id: str,
    asset_id: str,
    reporter: Reporter,
) -> list[PreSigned]:
    reporter.phase("signing transfers", options.txs)
    out: list[PreSigned] = []
    # In slices, so the progress bar moves; each slice continues the round-robin exactly.
    holders = len(keys)
    step = max(holders, SIGN_PROGRESS_EVERY // holders * holders)
    while len(out) < options.txs:
        rounds_done = len(out) // holders
        out += presign_transfers(
            keys,
            chain_id=chain_id,
            asset_id=asset_id,
            count=min(step, options.txs - len(out)),
            amount=TRANSFER_AMOUNT,
            start_nonce=rounds_done,
            first_round=rounds_done,
        )
        reporter.advance(len(out))
    return out


async def _setup_phase(
    name: str,
    clients: Sequence[AsyncClient],
    watcher: AsyncClient,
    txs: Sequence[PreSigned],
    reporter: Reporter,
) -> None:
    reporter.phase(name, len(txs))
    height = (await watcher.status()).height
    driver = LoadDriver(
        clients,
        watcher,
        txs,
        in_flight_max=SETUP_IN_FLIGHT,
        workers_per_client=max(1, min(WORKERS_PER_CLIENT_MAX, SETUP_IN_FLIGHT // len(clients))),
        on_progress=reporter.progress,
    )
    report = await driver.drive(
        from_height=height + 1, duration_s=None, drain_timeout_s=SETUP_DRAIN_S
    )
    if report.rejected or report.uncommitted:
        reasons = ", ".join(f"{r} x{n}" for r, n in report.rejected_reasons().items())
        raise BenchError(
            f"setup failed ({name}): {report.rejected} of {len(txs)} transactions rejected"
            f" ({reasons or '-'}), {report.uncommitted} not committed within {SETUP_DRAIN_S:g} s"
        )


async def _sample_rss(sampler: RssSampler) -> None:
    while True:
        sampler.sample()
        await trio.sleep(RSS_INTERVAL_S)


async def run_bench(
    target: Target, options: BenchOptions, reporter: Reporter | None = None
) -> BenchResult:
    """Set up, measure and report on `target`. Raises BenchError with one line on failure."""
    reporter = reporter or SilentReporter()
    layout = target.layout
    chain_id = layout.chain_id
    try:
        regulator = load_key_file(layout.regulator_key)
        issuer = load_key_file(layout.issuer_key)
    except (KeyFileError, OSError) as exc:
        raise BenchError(f"cannot read the cluster's role keys: {exc}") from None
    seed = options.seed if options.seed is not None else os.urandom(16)
    asset_id = f"BENCH-{seed.hex()[:10].upper()}"
    keys = holder_keys(options.holder_count, seed)
    accounts = [public_key(k) for k in keys]
    sampler = RssSampler(target.pids)
    try:
        async with (
            _connections(target, options.clients, chain_id) as clients,
            _connections(target, 1, chain_id) as (watcher,),
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_sample_rss, sampler)
            transfers = _sign_transfers(options, keys, chain_id, asset_id, reporter)
            reporter.phase("signing setup", 2 * len(keys) + 1)
            registrations = presign_registrations(
                regulator,
                accounts,
                chain_id=chain_id,
                start_nonce=await watcher.next_nonce(public_key(regulator)),
            )
            create, mints = presign_issuance(
                issuer,
                accounts,
                chain_id=chain_id,
                start_nonce=await watcher.next_nonce(public_key(issuer)),
                asset_id=asset_id,
                per_account=TRANSFER_AMOUNT * transfers_per_holder(options.txs, len(keys)),
            )
            reporter.phase("measuring the verify ceiling", 1)
            samples = [decode_signed_transaction(t.raw) for t in transfers[:CEILING_SAMPLES]]
            ceiling = measure_ceiling(
                samples, validators=target.validators, duration_s=options.ceiling_s
            )
            reporter.note(
                f"signature ceiling: {ceiling.verify_per_s_one_core:,.0f} verify/s per core"
                f" x {ceiling.cores} cores / {ceiling.validators} validators"
                f" = {ceiling.tps:,.0f} tx/s"
            )
            await _setup_phase(
                "setup: register holders, create asset", clients, watcher,
                [*registrations, create], reporter,
            )  # fmt: skip
            await _setup_phase("setup: mint", clients, watcher, mints, reporter)
            load_before = os.getloadavg()[0]
            reporter.phase("transfers", options.txs)
            driver = LoadDriver(
                clients,
                watcher,
                transfers,
                in_flight_max=options.in_flight_max,
                workers_per_client=options.workers,
                on_progress=reporter.progress,
                watch=options.watch,
            )
            height = (await watcher.status()).height
            cpu_before = time.process_time()
            nodes_before = cpu_snapshot(target.pids)
            report = await driver.drive(
                from_height=height + 1,
                duration_s=options.duration_s,
                drain_timeout_s=options.drain_timeout_s,
            )
            client_cpu_s = time.process_time() - cpu_before
            blocks = (await watcher.status()).height - height
            node_cpu_s = cpu_used(nodes_before, cpu_snapshot(target.pids))
            sampler.sample()
            nursery.cancel_scope.cancel()
    except ClientError as exc:
        raise BenchError(f"lost the cluster: {exc}") from None
    return _result(
        report,
        options=options,
        target=target,
        sampler=sampler,
        ceiling=ceiling,
        load_avg=(load_before, os.getloadavg()[0]),
        client_cpu_s=client_cpu_s,
        node_cpu_s=node_cpu_s,
        blocks=blocks,
    )


def _result(
    report: LoadReport,
    *,
    options: BenchOptions,
    target: Target,
    sampler: RssSampler,
    ceiling: Ceiling,
    load_avg: tuple[float, float],
    client_cpu_s: float,
    node_cpu_s: dict[str, float],
    blocks: int,
) -> BenchResult:
    committed, window_s, latencies = report.window(options.duration_s)
    peaks = sampler.peak_mib()
    return BenchResult(
        committed=committed,
        committed_total=report.committed,
        submitted=report.sent,
        rejected=report.rejected,
        window_s=window_s,
        latency=LatencySummary.from_samples(latencies),
        rss_mib_max=max(peaks.values(), default=0.0),
        rss_mib_by_node=peaks,
        ceiling=ceiling,
        validators=target.validators,
        clients=options.clients,
        in_flight_max=options.in_flight_max,
        uncommitted=report.uncommitted,
        rejected_reasons=report.rejected_reasons(),
        retries=report.retries,
        load_avg=load_avg,
        client_cpu_s=client_cpu_s,
        node_cpu_s=node_cpu_s,
        blocks=blocks,
    )
