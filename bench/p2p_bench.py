"""Throughput of one encrypted p2p link on loopback.

    /work/venv/bin/python bench/p2p_bench.py [--large-count N] [--small-count N] [--mode M]

Two processes (one per core, like two nodes), each a PeerNetwork, and then both ends in one
trio process (one core); the sender pushes
messages through send()/send_wait() (backpressure, nothing dropped) and the receiver drains
`incoming`. Reported: payload MB/s with 64 KiB messages and messages/s with 200-byte
messages (coalesced by the sender). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time
from multiprocessing.connection import Connection as Pipe

import nacl.signing
import trio

from p2p import PeerInfo, PeerNetwork, TransportLimits

CHAIN_ID = "bench-chain"
LIMITS = TransportLimits(
    frame_bytes_max=4 << 20,
    coalesce_bytes_max=256 << 10,
    send_queue_messages_max=20_000,
    send_queue_bytes_max=64 << 20,
    incoming_messages_max=20_000,
    read_bytes_max=256 << 10,
)


def _peer(name: str, seed: bytes, port: int) -> PeerInfo:
    key = nacl.signing.SigningKey(seed)
    return PeerInfo(name=name, public_key=bytes(key.verify_key), address=("127.0.0.1", port))


async def _node(
    role: str, seeds: dict[str, bytes], pipe: Pipe, count: int, size: int
) -> tuple[float, int]:
    me, other = ("tx", "rx") if role == "tx" else ("rx", "tx")
    net = PeerNetwork(
        chain_id=CHAIN_ID,
        identity=nacl.signing.SigningKey(seeds[me]),
        self_name=me,
        listen=("127.0.0.1", 0),
        peers=[],
        limits=LIMITS,
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(net.run)
        pipe.send(port)
        other_port = await trio.to_thread.run_sync(pipe.recv)
        net.update_peers([_peer(other, seeds[other], other_port)])
        while other not in net.connected_peers():
            await trio.sleep(0.01)
        result = await (_send if role == "tx" else _receive)(net, other, count, size)
        # Let the last frames drain before tearing the link down.
        await trio.to_thread.run_sync(pipe.send, result)
        await trio.to_thread.run_sync(pipe.recv)
        nursery.cancel_scope.cancel()
    return result


async def _send(net: PeerNetwork, other: str, count: int, size: int) -> tuple[float, int]:
    message = os.urandom(size)
    start = time.perf_counter()
    for _ in range(count):
        # Fast path without a checkpoint; when the queue is full (send() refuses and counts
        # a drop) wait for room instead, so every message is delivered.
        if not net.send(other, message):
            await net.send_wait(other, message)
    while net.queued_messages(other):
        await trio.sleep(0.001)
    return time.perf_counter() - start, net.stats()[other].frames_out


async def _receive(net: PeerNetwork, other: str, count: int, size: int) -> tuple[float, int]:
    # Drain with receive_nowait: awaiting receive() per message costs a checkpoint each,
    # which alone caps a consumer near 100k messages/s.
    incoming = net.incoming
    _, message = await incoming.receive()
    assert len(message) == size
    start = time.perf_counter()
    received = 1
    # Delivery is at most once: a bug or a lost connection must show up, not hang the bench.
    with trio.move_on_after(120):
        while received < count:
            try:
                incoming.receive_nowait()
                received += 1
            except trio.WouldBlock:
                await incoming.receive()
                received += 1
    if received < count:
        raise SystemExit(f"only {received} of {count} messages arrived: {net.stats()[other]}")
    return time.perf_counter() - start, net.stats()[other].frames_in


def _process(role: str, seeds: dict[str, bytes], pipe: Pipe, count: int, size: int) -> None:
    trio.run(_node, role, seeds, pipe, count, size)


def run_link(count: int, size: int) -> tuple[float, int]:
    """Returns (receiver seconds from first to last message, frames received)."""
    seeds = {"tx": os.urandom(32), "rx": os.urandom(32)}
    ctx = multiprocessing.get_context("spawn")
    tx_parent, tx_child = ctx.Pipe()
    rx_parent, rx_child = ctx.Pipe()
    tx = ctx.Process(target=_process, args=("tx", seeds, tx_child, count, size))
    rx = ctx.Process(target=_process, args=("rx", seeds, rx_child, count, size))
    tx.start()
    rx.start()
    tx_port, rx_port = tx_parent.recv(), rx_parent.recv()
    tx_parent.send(rx_port)
    rx_parent.send(tx_port)
    rx_seconds, frames = rx_parent.recv()
    tx_parent.recv()
    tx_parent.send("done")
    rx_parent.send("done")
    tx.join()
    rx.join()
    return rx_seconds, frames


async def _one_process(count: int, size: int) -> tuple[float, int]:
    """Both ends in one trio run (one core), as in a single-process test cluster."""
    keys = {name: nacl.signing.SigningKey.generate() for name in ("tx", "rx")}
    nets = {
        name: PeerNetwork(
            chain_id=CHAIN_ID,
            identity=keys[name],
            self_name=name,
            listen=("127.0.0.1", 0),
            peers=[],
            limits=LIMITS,
        )
        for name in keys
    }
    async with trio.open_nursery() as nursery:
        ports = {name: await nursery.start(net.run) for name, net in nets.items()}
        nets["tx"].update_peers([_peer_key("rx", keys["rx"], ports["rx"])])
        nets["rx"].update_peers([_peer_key("tx", keys["tx"], ports["tx"])])
        while not nets["tx"].connected_peers():
            await trio.sleep(0.01)
        nursery.start_soon(_send, nets["tx"], "rx", count, size)
        result = await _receive(nets["rx"], "tx", count, size)
        nursery.cancel_scope.cancel()
    return result


def _peer_key(name: str, key: nacl.signing.SigningKey, port: int) -> PeerInfo:
    return PeerInfo(name=name, public_key=bytes(key.verify_key), address=("127.0.0.1", port))


def _report(label: str, large: tuple[float, int], small: tuple[float, int], args) -> None:
    seconds, frames = large
    mb = args.large_count * (64 << 10) / 1e6
    print(
        f"[{label}] 64 KiB messages: {args.large_count} in {seconds:.3f} s = "
        f"{mb / seconds:.1f} MB/s payload ({frames} frames)"
    )
    seconds, frames = small
    print(
        f"[{label}] 200 B messages:  {args.small_count} in {seconds:.3f} s = "
        f"{args.small_count / seconds:,.0f} msgs/s ({frames} frames, "
        f"{args.small_count / max(frames, 1):.0f} msgs/frame)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large-count", type=int, default=4_000)
    parser.add_argument("--small-count", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=["two-process", "one-process", "both"], default="both")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cpus, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}"
    )
    if args.mode in {"two-process", "both"}:
        large = run_link(args.large_count, 64 << 10)
        small = run_link(args.small_count, 200)
        _report("two processes", large, small, args)
    if args.mode in {"one-process", "both"}:
        large = trio.run(_one_process, args.large_count, 64 << 10)
        small = trio.run(_one_process, args.small_count, 200)
        _report("one process", large, small, args)


if __name__ == "__main__":
    main()
