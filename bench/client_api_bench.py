"""Client API throughput over loopback TCP: framing, dispatch, the writer, the client.

The backend is the in-memory fake from the tests (no LMDB), so the figures are the API
layer's own cost: what one node spends per client request before the ledger does any work.

Prints:
- sequential round trips/s (one request at a time, one connection);
- pipelined requests/s on one connection (`--window` requests in flight);
- pipelined requests/s over `--connections` connections;
- submits/s of pre-signed transfers, pipelined (includes decode + Ed25519 verify in the fake).

The server runs in its own process, so client and server do not share one core.

    python bench/client_api_bench.py [--requests 20000] [--window 64] [--connections 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path

import nacl.signing
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.api.limits import ApiLimits
from node.api.server import ClientApiServer
from node.client import AsyncClient
from tests.node.api.fake_backend import FakeBackend
from tests.node.api.helpers import ALICE, ISSUER, pub, transfer


async def pipelined(count: int, window: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Run `count` calls with at most `window` in flight; return calls per second."""
    slots = trio.Semaphore(window)

    async def one(i: int) -> None:
        try:
            await call(i)
        finally:
            slots.release()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(count):
            await slots.acquire()
            nursery.start_soon(one, i)
    return count / (time.perf_counter() - start)


def serve_forever(conn: Connection, window: int, transfers: int) -> None:
    """Server process: the API over the fake backend, its port sent back through `conn`."""
    backend = FakeBackend()
    backend.add_asset("BOND", 2, pub(ISSUER))
    backend.fund("BOND", pub(ALICE), 10**15)
    limits = ApiLimits(requests_in_flight_max=max(256, window), pending_waits_max=10)
    server = ClientApiServer(backend, limits=limits)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(server.serve, ("127.0.0.1", 0))
            conn.send(port)

    trio.run(run)


async def measure(args: argparse.Namespace, host: str, port: int) -> None:
    async with AsyncClient.connect(host, port) as client:
        n = args.requests // 4
        start = time.perf_counter()
        for _ in range(n):
            await client.balance("BOND", pub(ALICE))
        rate = n / (time.perf_counter() - start)
        print(f"sequential balance round trips, 1 connection:   {rate:10,.0f} /s")

        rate = await pipelined(
            args.requests, args.window, lambda i: client.balance("BOND", pub(ALICE))
        )
        print(f"pipelined balance, 1 connection, window {args.window:<4}: {rate:10,.0f} /s")

        # One signer per transaction: pipelined submits may arrive in any order, and the
        # fake insists on sequential nonces per signer.
        signers = [
            nacl.signing.SigningKey(i.to_bytes(32, "big")) for i in range(1, args.transfers + 1)
        ]
        txs = [transfer(key, 0, amount=1).encode() for key in signers]
        rate = await pipelined(len(txs), args.window, lambda i: client.submit(txs[i]))
        print(f"pipelined submit (decode + verify), 1 connection: {rate:8,.0f} /s")

    clients: list[AsyncClient] = []
    async with trio.open_nursery() as nursery:
        ready = trio.Event()
        done = trio.Event()

        async def hold() -> None:
            async with AsyncClient.connect(host, port) as c:
                clients.append(c)
                if len(clients) == args.connections:
                    ready.set()
                await done.wait()

        for _ in range(args.connections):
            nursery.start_soon(hold)
        await ready.wait()
        rate = await pipelined(
            args.requests,
            args.window * args.connections,
            lambda i: clients[i % len(clients)].balance("BOND", pub(ALICE)),
        )
        print(f"pipelined balance, {args.connections} connections:            {rate:10,.0f} /s")
        done.set()


def main(args: argparse.Namespace) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, trio {trio.__version__}")
    print("server in its own process; client in this one; loopback TCP")
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=serve_forever, args=(theirs, args.window, args.transfers), daemon=True
    )
    server.start()
    try:
        port = ours.recv()
        trio.run(measure, args, "127.0.0.1", port)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--transfers", type=int, default=5_000)
    main(parser.parse_args())
