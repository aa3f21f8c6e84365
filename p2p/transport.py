"""Where byte streams come from. TCP in production; tests plug in an in-memory network so
the full PeerNetwork runs under MockClock without real sockets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

StreamHandler = Callable[[trio.abc.Stream], Awaitable[None]]


class Transport(Protocol):
    async def connect(self, address: tuple[str, int]) -> trio.abc.Stream:
        """Open a stream to `address`; raise OSError if nobody is there."""
        ...

    async def serve(
        self,
        listen: tuple[str, int],
        handler: StreamHandler,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind, report the bound port via task_status, then run handler per connection."""
        ...


class TcpTransport:
    async def connect(self, address: tuple[str, int]) -> trio.abc.Stream:
        host, port = address
        # trio sets TCP_NODELAY: the sender coalesces itself, Nagle would only add latency.
        return await trio.open_tcp_stream(host, port)

    async def serve(
        self,
        listen: tuple[str, int],
        handler: StreamHandler,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        host, port = listen
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port = listeners[0].socket.getsockname()[1]
        task_status.started(bound_port)
        await trio.serve_listeners(handler, listeners)
