"""`assetledger cluster ...`: create a local cluster, run it as real processes, inject faults.

assetledger cluster init --nodes 4 --dir ./c        keys, genesis, one config per node
assetledger cluster up --dir ./c                    start all, wait for a block, keep running
assetledger cluster status --dir ./c [--json]       (from another terminal)
assetledger cluster kill|restart|pause|resume --dir ./c node-2
assetledger cluster partition --dir ./c node-0 node-1,node-2,node-3   (needs `init --proxies`)
assetledger cluster heal --dir ./c
assetledger cluster down --dir ./c                  stop every node
assetledger cluster add-node --dir ./c [--json]     one more validator (then: tx add-validator)
assetledger cluster rotate-key --dir ./c node-1     a new key (then: tx rotate-validator-key,
assetledger cluster restart --dir ./c node-1 --switch-key          and restart with it)
See docs/governance.md for the validator-set drills.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click
import trio
from rich.console import Console
from rich.table import Table

from config.errors import ConfigError
from config.genesis import ConsensusParams
from node.cli.errors import UserError
from node.cli.output import emit_json
from node.cluster.add_node import add_node
from node.cluster.bootstrap import bring_up
from node.cluster.init import DEFAULT_BASE_PORT, DEFAULT_CHAIN_ID, FAST_TIMEOUTS, init_cluster
from node.cluster.key_rotation import (
    KeyApproval,
    SwitchedKey,
    key_approval,
    prepare_rotation,
    prepared_key,
    switch_key,
)
from node.cluster.layout import ClusterError, ClusterLayout
from node.cluster.partition import parse_groups, read_plan
from node.cluster.processes import ClusterProcesses, ProcessState
from node.cluster.status import NodeStatus, cluster_status, wait_ready
from node.runtime.byzantine import ByzantineMode

MONITOR_INTERVAL_S = 1.0
PEERS_SETTLE_S = 3.0


def _dir_option() -> Any:
    return click.option(
        "--dir",
        "root",
        required=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="The cluster directory (made by `assetledger cluster init`).",
    )


def _open(root: Path) -> ClusterProcesses:
    try:
        return ClusterProcesses.open(root)
    except ClusterError as exc:
        raise UserError(str(exc)) from exc


def layout_json(layout: ClusterLayout) -> dict[str, Any]:
    return {
        "dir": str(layout.root),
        "chain_id": layout.chain_id,
        "genesis": str(layout.genesis_file),
        "regulator_key": str(layout.regulator_key),
        "issuer_key": str(layout.issuer_key),
        "nodes": [
            {
                "name": n.name,
                "client": n.client,
                "peer": f"{n.host}:{n.peer_port}",
                "metrics": f"{n.host}:{n.metrics_port}",
                "public_key": n.public_key,
                "config": str(layout.config_file(n.name)),
                "log": str(layout.log_file(n.name)),
            }
            for n in layout.nodes
        ],
        "links": [{"src": k.src, "dst": k.dst, "port": k.port} for k in layout.links],
    }


def status_table(rows: list[NodeStatus], title: str = "cluster") -> Table:
    table = Table(title=title)
    for column in ("node", "client", "pid", "process", "height", "view", "primary", "peers"):
        table.add_column(
            column, justify="right" if column in ("height", "view", "peers") else "left"
        )
    heights = [r.height for r in rows if r.height is not None]
    top = max(heights, default=None)
    for r in rows:
        s = r.status
        process = {
            ProcessState.RUNNING: "[green]running[/green]",
            ProcessState.PAUSED: "[yellow]paused[/yellow]",
            ProcessState.STOPPED: "[red]stopped[/red]",
        }[r.process]
        if r.process is ProcessState.RUNNING and s is None:
            process = "[yellow]no answer[/yellow]"
        height = "-" if s is None else str(s.height)
        if s is not None and top is not None and s.height < top:
            height = f"[yellow]{height}[/yellow]"
        table.add_row(
            r.name,
            r.client,
            "-" if r.pid is None else str(r.pid),
            process,
            height,
            "-" if s is None else str(s.view),
            "-" if s is None else s.primary,
            "-" if r.peers is None else str(r.peers),
        )
    return table


@click.group()
def cluster() -> None:
    """Local multi-node clusters for testers: create, run, inspect, inject faults."""


def _consensus_option(field: str, help_text: str) -> Any:
    """`--field-name`: one genesis [consensus] parameter, its default shown."""
    return click.option(
        "--" + field.replace("_", "-"),
        field,
        type=int,
        default=getattr(ConsensusParams(), field),
        show_default=True,
        help=help_text,
    )


@cluster.command("init")
@click.option("--nodes", type=int, default=4, show_default=True, help="Validators (3f+1).")
@_dir_option()
@click.option("--base-port", type=int, default=DEFAULT_BASE_PORT, show_default=True)
@click.option("--chain-id", default=DEFAULT_CHAIN_ID, show_default=True)
@click.option(
    "--fast-timeouts",
    is_flag=True,
    help="Test profile: 20 ms ticks, 1 s view-change timeout (quick fault drills on loopback).",
)
@click.option(
    "--proxies",
    is_flag=True,
    help="Route every peer link through a local TCP proxy so `cluster partition` can cut it"
    " (uses n x (n-1) more ports after the nodes' ports).",
)
@_consensus_option(
    "checkpoint_interval_seqs",
    "Genesis consensus K: a checkpoint every K sequence numbers.",
)
@_consensus_option(
    "log_window_seqs",
    "Genesis consensus W: the PBFT log window, a multiple of K and at least 2K.",
)
@_consensus_option(
    "tx_bytes_max",
    "Genesis consensus: the largest encoded transaction.",
)
@_consensus_option(
    "memo_bytes_max",
    "Genesis consensus: the largest memo (at most half of --tx-bytes-max).",
)
@_consensus_option(
    "batch_txs_max",
    "Genesis consensus: transactions per block proposal.",
)
@_consensus_option(
    "batch_bytes_max",
    "Genesis consensus: encoded transactions per proposal (a wider window needs less).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def init_command(
    *,
    nodes: int,
    root: Path,
    base_port: int,
    chain_id: str,
    fast_timeouts: bool,
    proxies: bool,
    checkpoint_interval_seqs: int,
    log_window_seqs: int,
    tx_bytes_max: int,
    memo_bytes_max: int,
    batch_txs_max: int,
    batch_bytes_max: int,
    as_json: bool,
) -> None:
    """Generate validator, regulator and issuer keys, the genesis and one config per node."""
    try:
        consensus = ConsensusParams(
            checkpoint_interval_seqs=checkpoint_interval_seqs,
            log_window_seqs=log_window_seqs,
            tx_bytes_max=tx_bytes_max,
            memo_bytes_max=memo_bytes_max,
            batch_txs_max=batch_txs_max,
            batch_bytes_max=batch_bytes_max,
        )
    except ConfigError as exc:
        flag = "--" + exc.field.replace("_", "-")
        raise UserError(f"genesis {exc.under('consensus')} ({flag})") from exc
    try:
        layout = init_cluster(
            root,
            nodes=nodes,
            base_port=base_port,
            chain_id=chain_id,
            timeouts=FAST_TIMEOUTS if fast_timeouts else None,
            proxies=proxies,
            consensus=consensus,
        )
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    except Exception as exc:  # config validation (e.g. a bad chain id) -> one line
        raise UserError(f"cannot create the cluster: {exc}") from exc
    if as_json:
        emit_json(layout_json(layout))
        return
    console = Console()
    console.print(f"cluster of {nodes} validators in {root} (chain {chain_id})")
    for n in layout.nodes:
        console.print(
            f"  {n.name}: client {n.client}  peer {n.peer_port}  metrics {n.metrics_port}"
        )
    if layout.links:
        ports = [link.port for link in layout.links]
        console.print(f"  link proxies: ports {min(ports)}..{max(ports)} (cluster partition|heal)")
    console.print(f"regulator key: {layout.regulator_key}\nissuer key:    {layout.issuer_key}")
    console.print(f"start it with: assetledger cluster up --dir {root}")


async def _up(procs: ClusterProcesses, console: Console, timeout_s: float) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        names = ", ".join(procs.names)
        console.print(f"starting {names} (logs: {procs.layout.root}/<node>/node.log)")
        with console.status("waiting for the nodes to connect and commit a first block"):
            height = await bring_up(procs, timeout_s=timeout_s)
        console.print(f"[green]cluster up[/green]: block {height} committed on every node")
        # The peers gauge refreshes once a second: give it a moment to show the full mesh.
        rows = await cluster_status(procs)
        with trio.move_on_after(PEERS_SETTLE_S):
            while not all(r.peers == len(rows) - 1 for r in rows):
                await trio.sleep(0.2)
                rows = await cluster_status(procs)
        console.print(status_table(rows, title=str(procs.layout.root)))
        console.print(
            "running; Ctrl-C stops every node. From another terminal: "
            f"assetledger cluster status|kill|restart|pause|resume --dir {procs.layout.root} NODE"
            + (
                f"; assetledger cluster partition|heal --dir {procs.layout.root}"
                if procs.layout.links
                else ""
            )
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_monitor, procs, console)
            async for signum in signals:
                console.print(f"{signal.Signals(signum).name}: stopping the cluster")
                nursery.cancel_scope.cancel()
                break


async def _monitor(procs: ClusterProcesses, console: Console) -> None:
    """Report nodes that stop, pause or come back (e.g. drills from another terminal)."""
    last = {i.name: i for i in procs.info()}
    while True:
        await trio.sleep(MONITOR_INTERVAL_S)
        procs.reload()  # nodes added with `cluster add-node` from another terminal
        for info in procs.info():
            before = last.get(info.name)
            if before is None:
                console.print(f"{info.name}: added to the cluster ({info.state.value})")
            elif (info.state, info.pid) != (before.state, before.pid):
                code = procs.exit_code(info.name)
                extra = (
                    f" (exit code {code})"
                    if info.state is ProcessState.STOPPED and code is not None
                    else ""
                )
                pid = f" pid {info.pid}" if info.pid is not None else ""
                console.print(f"{info.name}: {info.state.value}{pid}{extra}")
            last[info.name] = info


@cluster.command("up")
@_dir_option()
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the nodes to serve and commit a first block.",
)
def up(root: Path, timeout_s: float) -> None:
    """Start every node as its own process and keep running until Ctrl-C or SIGTERM."""
    procs = _open(root)
    console = Console()
    try:
        trio.run(_up, procs, console, timeout_s)
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    finally:
        clean = procs.stop_all()
        killed = [n for n, ok in clean.items() if not ok]
        if killed:
            console.print(f"[yellow]had to kill -9: {', '.join(killed)}[/yellow]")
        console.print("all nodes stopped")


@cluster.command("down")
@_dir_option()
def down(root: Path) -> None:
    """Stop every running node of the cluster (SIGTERM, then SIGKILL after 10 s)."""
    procs = _open(root)
    clean = procs.stop_all()
    for name, ok in clean.items():
        click.echo(f"{name}: {'stopped' if ok else 'killed (did not stop in time)'}")
    if not clean:
        click.echo("no node was running")


@cluster.command("status")
@_dir_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(root: Path, as_json: bool) -> None:
    """Every node's process state, height, view, primary and connected peers."""
    procs = _open(root)
    rows = trio.run(cluster_status, procs)
    network = None
    if procs.layout.links:
        try:
            network = read_plan(procs.layout).describe()
        except ClusterError as exc:
            network = f"unknown ({exc})"
    if as_json:
        emit_json({"dir": str(root), "nodes": [r.to_json() for r in rows], "network": network})
        return
    console = Console()
    console.print(status_table(rows, title=str(root)))
    if network is not None:
        console.print(f"network: {network}")


def _node_action(name: str, help_text: str) -> Any:
    def decorate(fn: Any) -> Any:
        fn = click.argument("node")(fn)
        fn = _dir_option()(fn)
        return cluster.command(name, help=help_text)(fn)

    return decorate


def _signal_node(root: Path, node: str, act: str, done: str, signal_name: str) -> None:
    procs = _open(root)
    try:
        pid = getattr(procs, act)(node)
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    click.echo(f"{node}: {done} (pid {pid}, {signal_name})")


@_node_action("kill", "kill -9 one node (a crash: no clean shutdown).")
def kill(root: Path, node: str) -> None:
    _signal_node(root, node, "kill", "killed", "SIGKILL")


@_node_action("pause", "Freeze one node with SIGSTOP (its peers see silence).")
def pause(root: Path, node: str) -> None:
    _signal_node(root, node, "pause", "paused", "SIGSTOP")


@_node_action("resume", "Resume a paused node with SIGCONT.")
def resume(root: Path, node: str) -> None:
    _signal_node(root, node, "resume", "resumed", "SIGCONT")


@cluster.command("restart")
@_dir_option()
@click.argument("node")
@click.option("--hard", is_flag=True, help="kill -9 instead of a clean SIGTERM stop.")
@click.option("--timeout", "timeout_s", type=float, default=20.0, show_default=True)
@click.option(
    "--byzantine",
    type=click.Choice([m.value for m in ByzantineMode]),
    default=None,
    help="Fault drill: restart it misbehaving (withhold-votes: it sends no PREPARE/COMMIT;"
    " censor: as primary it leaves half the signers out of its blocks)."
    " A plain restart makes it honest again.",
)
@click.option(
    "--switch-key",
    is_flag=True,
    help="Key rotation: start it with the key made by `cluster rotate-key` (the old key file is"
    " kept as validator.<hex>.retired.key). Refused unless the ledger approves the new key.",
)
def restart(
    *,
    root: Path,
    node: str,
    hard: bool,
    timeout_s: float,
    byzantine: str | None,
    switch_key: bool,
) -> None:
    """Stop one node (if running) and start it again from its data directory."""
    procs = _open(root)
    try:
        note = _check_switch(procs, node) if switch_key else None
        if switch_key:
            # Stopped first: a running node must never see its key file move under it.
            if hard and procs.pid(node) is not None:
                procs.kill(node)
            else:
                procs.stop(node)
            switched = _switch(procs, node)
            click.echo(
                f"{node}: key {switched.old_public_key.hex()} retired"
                f" ({switched.retired_key_file.name}); now {switched.new_public_key.hex()}"
            )
        pid = procs.restart(node, hard=hard, byzantine=byzantine)
        ready = trio.run(lambda: wait_ready(procs, [node], timeout_s=timeout_s))
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    mode = "" if byzantine is None else f" in byzantine mode {byzantine}"
    click.echo(f"{node}: restarted{mode} (pid {pid}), serving at height {ready[node].height}")
    if note is not None:
        click.echo(note)


def _check_switch(procs: ClusterProcesses, node: str) -> str | None:
    """Refuse to switch to a key the ledger does not approve (the node would not start);
    a note if it is approved only from the next epoch on."""
    new_key = prepared_key(procs.layout, node)
    if new_key is None:
        raise ClusterError(
            f"{node} has no prepared key; create one with"
            f" `assetledger cluster rotate-key --dir {procs.layout.root} {node}`"
        )
    answer = trio.run(lambda: key_approval(procs.layout, node, new_key))
    if answer.approval is KeyApproval.NONE:
        raise ClusterError(
            f"the ledger (asked {answer.asked}) does not approve key {new_key.hex()} for {node};"
            f" the regulator submits `assetledger tx rotate-validator-key --name {node}"
            f" --public-key {new_key.hex()}` first"
        )
    if answer.approval is KeyApproval.PENDING:
        return (
            f"note: the new key governs from block {(answer.info.pending_last_seq or 0) + 1}"
            f" (the next epoch); until then {node} follows the chain without voting"
        )
    return None


def _switch(procs: ClusterProcesses, node: str) -> SwitchedKey:
    switched = switch_key(procs.layout.root, node)
    procs.layout = switched.layout
    return switched


@cluster.command("add-node")
@_dir_option()
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="The new validator's name ([a-z0-9-]; default: the next free node-<i>).",
)
@click.option("--timeout", "timeout_s", type=float, default=20.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def add_node_command(root: Path, name: str | None, timeout_s: float, as_json: bool) -> None:
    """Create and start one more validator (key, config, ports) in a local cluster.

    It follows the chain as an observer until the regulator approves it with
    `assetledger tx add-validator`; then it syncs and votes from the next epoch boundary."""
    try:
        added = add_node(root, name=name)
        procs = ClusterProcesses(added.layout)
        pid = procs.start(added.entry.name)
        ready = trio.run(lambda: wait_ready(procs, [added.entry.name], timeout_s=timeout_s))
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    entry, layout = added.entry, added.layout
    first = layout.nodes[0]
    approve = (
        f"assetledger tx add-validator --name {entry.name} --public-key {entry.public_key}"
        f" --address {added.address} --key {layout.regulator_key} --node {first.client} --wait"
    )
    if as_json:
        emit_json(
            {
                "name": entry.name,
                "public_key": entry.public_key,
                "address": added.address,
                "client": entry.client,
                "metrics": f"{entry.host}:{entry.metrics_port}",
                "key_file": str(layout.key_file(entry.name)),
                "config": str(layout.config_file(entry.name)),
                "log": str(layout.log_file(entry.name)),
                "pid": pid,
                "height": ready[entry.name].height,
                "approve_command": approve,
            }
        )
        return
    click.echo(f"name:       {entry.name}")
    click.echo(f"public key: {entry.public_key}")
    click.echo(f"address:    {added.address}   (client {entry.client})")
    click.echo(f"started (pid {pid}); it follows as an observer until approved. The regulator:")
    click.echo(f"  {approve}")


@cluster.command("rotate-key")
@_dir_option()
@click.argument("node")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def rotate_key(root: Path, node: str, as_json: bool) -> None:
    """Key rotation, step 1: write NODE's next key (validator.next.key) and print it.

    The node keeps running with its old key. Then the regulator submits
    `tx rotate-validator-key`, and `cluster restart NODE --switch-key` puts the new key in
    place (after the epoch boundary, or before it: the node then observes until it)."""
    try:
        prepared = prepare_rotation(root, node)
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    layout = ClusterLayout.load(root)
    approve = (
        f"assetledger tx rotate-validator-key --name {node}"
        f" --public-key {prepared.new_public_key.hex()} --key {layout.regulator_key}"
        f" --node {layout.node(node).client} --wait"
    )
    switch = f"assetledger cluster restart --dir {layout.root} {node} --switch-key"
    if as_json:
        emit_json(
            {
                "name": node,
                "old_public_key": prepared.old_public_key.hex(),
                "public_key": prepared.new_public_key.hex(),
                "key_file": str(prepared.next_key_file),
                "approve_command": approve,
                "switch_command": switch,
            }
        )
        return
    click.echo(f"{node}: new key {prepared.new_public_key.hex()} in {prepared.next_key_file}")
    click.echo(f"  (current key {prepared.old_public_key.hex()} stays in use for now)")
    click.echo(f"the regulator approves it:  {approve}")
    click.echo(f"then switch the node to it: {switch}")


@cluster.command("partition")
@_dir_option()
@click.argument("groups", nargs=-1, required=True)
def partition(root: Path, groups: tuple[str, ...]) -> None:
    """Cut the network between groups of nodes (comma-separated names), e.g. `node-0
    node-1,node-2,node-3`. Nodes not named form one more group together, so `partition
    node-0` isolates node-0. Replaces any earlier partition. Needs `init --proxies`."""
    procs = _open(root)
    try:
        plan, applied = procs.partition(parse_groups(procs.layout, groups))
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    when = "in effect" if applied else "recorded; it takes effect when the cluster starts"
    click.echo(f"partitioned: {plan.describe()} ({when})")


@cluster.command("heal")
@_dir_option()
def heal(root: Path) -> None:
    """Undo `cluster partition`: every node may reach every node again (they redial)."""
    procs = _open(root)
    try:
        plan, applied = procs.partition(())
    except ClusterError as exc:
        raise UserError(str(exc)) from exc
    click.echo(f"network {plan.describe()}" + ("" if applied else " (no proxies running)"))
