"""`assetledger demo`: a 4-validator cluster of real processes and the regulated-asset story.

With no arguments it creates the cluster in a temporary directory, starts each validator as
its own process, tells the story over the wire (node.cluster.story), stops every node and
removes the directory. Whatever happens (an error, Ctrl-C), no node process is left running.

`--data-dir DIR` runs the offline, single-process ledger walk-through instead (no network).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import click
import trio
from rich.console import Console

from node.cli.errors import UserError
from node.client import ClientError
from node.cluster.init import FAST_TIMEOUTS, PORTS_PER_NODE, init_cluster
from node.cluster.layout import ClusterError
from node.cluster.offline_story import run_demo
from node.cluster.ports import NoFreePortsError, free_port_block
from node.cluster.processes import ClusterProcesses
from node.cluster.story import run_story

DEMO_NODES = 4
DEMO_CHAIN_ID = "assetledger-demo"


def _as_interrupt(signum: int, frame: object) -> None:
    os.kill(os.getpid(), signal.SIGINT)


def run_cluster_demo(root: Path, console: Console, *, base_port: int | None = None) -> None:
    """Create a cluster in `root` (new or empty), run the story, always stop every node."""
    try:
        base = base_port or free_port_block(DEMO_NODES * PORTS_PER_NODE)
    except NoFreePortsError as exc:
        raise UserError(f"{exc}; pass --base-port") from exc
    started = time.monotonic()
    try:
        layout = init_cluster(
            root,
            nodes=DEMO_NODES,
            base_port=base,
            chain_id=DEMO_CHAIN_ID,
            timeouts=FAST_TIMEOUTS,
            log_format="text",
        )
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    console.print(
        f"[bold]assetledger demo[/bold] · {DEMO_NODES} validators as separate processes on"
        f" 127.0.0.1:{base}-{base + DEMO_NODES * PORTS_PER_NODE - 1} · cluster {root}",
        soft_wrap=True,
    )
    procs = ClusterProcesses(layout)
    # SIGTERM/SIGHUP become SIGINT, which trio turns into KeyboardInterrupt at a safe point,
    # so the `finally` below stops the nodes whichever way the demo is interrupted.
    previous = {
        signum: signal.signal(signum, _as_interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        trio.run(run_story, procs, console)
    except (ClusterError, ClientError) as exc:
        raise UserError(f"{exc}\n(node logs: {root}/node-*/node.log)") from exc
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        # Also on Ctrl-C (KeyboardInterrupt) and errors: SIGTERM all, SIGKILL stragglers.
        clean = procs.stop_all(timeout_s=5.0)
        procs.kill_all()
        stopped = "stopped cleanly" if all(clean.values()) else "stopped (some killed)"
        console.print(
            f"\nall {DEMO_NODES} validators {stopped} · demo took {time.monotonic() - started:.1f} s"
        )


@click.command()
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Create the demo cluster in this new directory and keep it (keys, logs, data).",
)
@click.option("--base-port", type=int, default=None, help="First of 12 ports (default: free ones).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Instead: the offline single-process ledger walk-through, its ledger in this new directory.",
)
def demo(root: Path | None, base_port: int | None, data_dir: Path | None) -> None:
    """Run 4 validators as real processes and walk through a regulated-asset story."""
    console = Console()
    if data_dir is not None:
        if data_dir.exists() and any(data_dir.iterdir()):
            raise click.UsageError(f"{data_dir} is not empty; give a new directory")
        run_demo(data_dir, console)
        return
    if root is not None:
        run_cluster_demo(root, console, base_port=base_port)
        return
    with tempfile.TemporaryDirectory(prefix="assetledger-demo-") as tmp:
        run_cluster_demo(Path(tmp) / "cluster", console, base_port=base_port)
