"""A client API server on a loopback port, run by trio in a background thread.

For code that blocks (the sync `Client`, click's CliRunner): the test thread cannot run trio
itself while it waits. `nursery.start` reports the bound port, so nothing sleeps or polls.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from node.api.server import ClientApiServer


@contextmanager
def serving(server: ClientApiServer) -> Iterator[tuple[str, int]]:
    ready: queue.Queue[tuple[tuple[str, int], trio.lowlevel.TrioToken, trio.CancelScope]] = (
        queue.Queue()
    )
    failure: list[BaseException] = []

    async def main() -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                address = await nursery.start(server.serve, ("127.0.0.1", 0))
                ready.put((address, trio.lowlevel.current_trio_token(), scope))

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the test thread below
            failure.append(exc)
            ready.put(None)  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    item = ready.get(timeout=30)
    if item is None:
        raise failure[0]
    address, token, scope = item
    try:
        yield address
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=30)
        if failure:
            raise failure[0]
