"""`assetledger bench`: finalized transfers/s, commit latency and node memory of a cluster.

assetledger bench                       a fresh 4-validator cluster in a temp dir, 20,000 transfers
assetledger bench --nodes 7 --txs 120000 --duration 60
assetledger bench --dir ./c --json      against a running `assetledger cluster up --dir ./c`

The progress display goes to stderr; stdout gets the figures (a table, or with --json exactly
one JSON object).
"""

from __future__ import annotations

import math
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import click
import trio
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from node.bench.errors import BenchError
from node.bench.load import Progress as LoadProgress
from node.bench.load import Watch
from node.bench.run import CLIENTS_MAX, BenchOptions, run_bench
from node.bench.stats import BenchResult
from node.bench.target import Target, existing_cluster, local_cluster
from node.cli.errors import UserError
from node.cli.output import emit_json
from node.cluster.init import NODES_MAX

NODES_DEFAULT = 4
TXS_DEFAULT = 20_000
TXS_PER_S_PLANNED = 2_000  # with --duration and no --txs: sign enough for this rate


class RichReporter:
    """One progress bar per phase, on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def phase(self, name: str, total: int) -> None:
        if self._task is not None:
            self.bar.update(self._task, completed=self.bar.tasks[self._task].total)
        self._task = self.bar.add_task(name, total=total, detail="")

    def advance(self, done: int) -> None:
        if self._task is not None:
            self.bar.update(self._task, completed=done)

    def progress(self, p: LoadProgress) -> None:
        if self._task is None:
            return
        rate = p.committed / p.elapsed_s if p.elapsed_s > 0 else 0.0
        detail = (
            f"sent {p.sent:,}  in flight {p.in_flight:,}  rejected {p.rejected:,}  {rate:,.0f} tx/s"
        )
        self.bar.update(self._task, completed=p.committed, detail=detail)

    def note(self, line: str) -> None:
        self.bar.console.print(line)


def _table(result: BenchResult, where: str) -> Table:
    lat = result.latency
    table = Table(title=f"assetledger bench ({where})", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    table.add_row("finalized transfers/s", f"{result.tps:,.1f}")
    table.add_row("window", f"{result.window_s:.1f} s")
    if result.blocks:
        table.add_row(
            "blocks", f"{result.blocks:,} ({result.committed_total / result.blocks:,.1f} tx/block)"
        )
    table.add_row(
        "latency submit->commit",
        f"p50 {lat.p50:,.0f} ms  p95 {lat.p95:,.0f} ms  p99 {lat.p99:,.0f} ms  max {lat.max:,.0f} ms",
    )
    table.add_row(
        "committed / submitted",
        f"{result.committed:,} in window ({result.committed_total:,} in all) / {result.submitted:,}",
    )
    reasons = ", ".join(f"{r} x{n}" for r, n in sorted(result.rejected_reasons.items()))
    table.add_row("rejected", f"{result.rejected:,}" + (f" ({reasons})" if reasons else ""))
    if result.uncommitted:
        table.add_row("not committed by the end", f"{result.uncommitted:,}")
    for name, mib in sorted(result.rss_mib_by_node.items()):
        table.add_row(f"peak RSS {name}", f"{mib:,.1f} MiB")
    if not result.rss_mib_by_node:
        table.add_row("peak RSS", "unknown (no node pids: start the cluster with `cluster up`)")
    c = result.ceiling
    table.add_row(
        "verify ceiling",
        f"{c.verify_per_s_one_core:,.0f}/s x {c.cores} cores / {c.validators} validators"
        f" = {c.tps:,.0f} tx/s",
    )
    table.add_row("achieved / ceiling", f"{result.ceiling_ratio:.1%}")
    table.add_row(
        "load average (1 min)", f"{result.load_avg[0]:.2f} before, {result.load_avg[1]:.2f} after"
    )
    table.add_row("benchmark client CPU", f"{result.client_cpu_s:.1f} s")
    if result.node_cpu_s:
        table.add_row(
            "node CPU per transfer (all nodes)",
            f"{result.node_cpu_ms_per_tx:.2f} ms -> at most {result.cpu_bound_tps:,.0f} tx/s"
            f" on {result.ceiling.cores} free cores",
        )
    return table


async def _run(
    root: Path | None, nodes: int, options: BenchOptions, reporter: RichReporter
) -> BenchResult:
    target_cm: AbstractAsyncContextManager[Target] = (
        existing_cluster(root, warn=reporter.note) if root is not None else local_cluster(nodes)
    )
    async with target_cm as target:
        reporter.note(
            f"cluster: {target.validators} validators, {len(target.reachable)} reachable"
            f" ({target.layout.root}){'' if target.started_here else ', already running'}"
        )
        return await run_bench(target, options, reporter)


@click.command("bench")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Benchmark an already running cluster (its cluster.json gives endpoints and keys).",
)
@click.option(
    "--nodes",
    type=click.IntRange(1, NODES_MAX),
    default=None,
    help=f"Start a fresh cluster of N validators in a temp dir [default: {NODES_DEFAULT}].",
)
@click.option(
    "--txs",
    type=click.IntRange(1),
    default=None,
    help=f"Transfers to pre-sign [default: {TXS_DEFAULT:,}, or with --duration enough for"
    f" {TXS_PER_S_PLANNED:,} tx/s].",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Measurement window in seconds (stop submitting then). Default: until every transfer commits.",
)
@click.option(
    "--clients",
    type=click.IntRange(1, CLIENTS_MAX),
    default=8,
    show_default=True,
    help="Client connections, spread over the nodes.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Most admitted transfers awaiting their commit at once.",
)
@click.option(
    "--holders",
    type=click.IntRange(2),
    default=None,
    help="Accounts that transfer among themselves [default: min(1000, txs/4)].",
)
@click.option(
    "--watch",
    type=click.Choice([w.value for w in Watch]),
    default=Watch.BLOCKS.value,
    show_default=True,
    help="Learn commits from a block stream (one frame per block) or a receipt stream (one per tx).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the figures.")
def bench(
    *,
    root: Path | None,
    nodes: int | None,
    txs: int | None,
    duration: float | None,
    clients: int,
    in_flight: int,
    holders: int | None,
    watch: str,
    as_json: bool,
) -> None:
    """Drive pre-signed transfers at a cluster; report finalized tx/s, latency and memory."""
    if root is not None and nodes is not None:
        raise UserError("give either --dir (a running cluster) or --nodes (a fresh one), not both")
    try:
        if txs is None:
            txs = TXS_DEFAULT if duration is None else math.ceil(duration * TXS_PER_S_PLANNED)
        options = BenchOptions(
            txs=txs,
            duration_s=duration,
            clients=clients,
            in_flight_max=in_flight,
            holders=holders,
            watch=Watch(watch),
        )
    except BenchError as exc:
        raise UserError(str(exc)) from None
    stderr = Console(stderr=True)
    try:
        with RichReporter(stderr) as reporter:
            result = trio.run(_run, root, nodes or NODES_DEFAULT, options, reporter)
    except BenchError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        emit_json(result.to_json())
    else:
        Console().print(
            _table(result, str(root) if root else f"{nodes or NODES_DEFAULT} local validators")
        )
