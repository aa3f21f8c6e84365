"""One client connection: framing, request ids, pipelining, streams.

Any number of tasks may issue requests at once; each gets a fresh id and waits on its own
channel, and the reader task routes every response by id, so responses may arrive in any
order. One writer task sends every frame (a trio stream allows one writer at a time).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from consensus.encoding import EncodingError
from node.api.framing import (
    FRAME_BYTES_MAX_DEFAULT,
    FrameDecoder,
    FrameError,
    decode_body,
    decode_limits_for,
    encode_body,
)
from node.api.requests import REQUEST_ID_MAX, FrameKind, Op, request_body
from node.api.schema import Fields, SchemaError
from node.client.errors import (
    ApiError,
    ClientError,
    ConnectionLostError,
    ProtocolError,
    RequestTimeoutError,
)

RECEIVE_BYTES_MAX = 64 << 10
STREAM_BUFFER_FRAMES = 64
WRITE_TIMEOUT_S = 30.0
OUTGOING_FRAMES_MAX = 1024  # queued by callers before they wait (backpressure)
_FRAME_KINDS = {k.value for k in FrameKind}
_Frame = tuple[str, Any]


def _error_from(payload: Any) -> ApiError:
    try:
        f = Fields(payload, "error")
        code = f.text("code", size_max=64)
        message = f.text("message", size_max=4096)
        reason = f.opt_text("reason", size_max=64)
        f.done()
    except SchemaError as exc:
        return ApiError("internal", f"unreadable error frame ({exc})")
    return ApiError(code, message, reason)


class ClientConnection:
    def __init__(self, stream: trio.abc.Stream, *, frame_bytes_max: int) -> None:
        self._stream = stream
        self.frame_bytes_max = frame_bytes_max
        self._decode_limits = decode_limits_for(frame_bytes_max)
        self._ids = itertools.count(1)
        self._pending: dict[int, trio.MemorySendChannel[_Frame]] = {}
        # Frames go through one writer task, which coalesces what is queued into one write
        # (one syscall for a burst of pipelined requests) and is never cancelled by a caller's
        # deadline, so a frame is never cut in half.
        self._outgoing, self._outgoing_receive = trio.open_memory_channel[bytes](
            OUTGOING_FRAMES_MAX
        )
        self._closed: ClientError | None = None

    # --- reader ---------------------------------------------------------------------

    async def run_reader(self) -> None:
        """Route frames until the stream ends; then fail every pending request."""
        decoder = FrameDecoder(self.frame_bytes_max)
        try:
            while True:
                try:
                    data = await self._stream.receive_some(RECEIVE_BYTES_MAX)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise ConnectionLostError(f"connection lost: {exc}") from exc
                if not data:
                    raise ConnectionLostError("the node closed the connection")
                try:
                    bodies = decoder.feed(data)
                except FrameError as exc:
                    raise ProtocolError(f"bad frame from the node: {exc}") from exc
                for body in bodies:
                    await self._route(body)
                if decoder.error is not None:
                    raise ProtocolError(f"bad frame from the node: {decoder.error}")
        except ClientError as exc:
            self._fail_all(exc)

    async def _route(self, body: bytes) -> None:
        try:
            obj = decode_body(body, self._decode_limits)
        except FrameError as exc:
            raise ProtocolError(f"bad frame from the node: {exc}") from exc
        if not isinstance(obj, list) or len(obj) != 3 or obj[1] not in _FRAME_KINDS:
            raise ProtocolError("frame is not [request_id, kind, payload]")
        request_id, kind, payload = obj
        if request_id is None:
            # A connection-level error: the node is about to close this connection.
            error = _error_from(payload) if kind == FrameKind.ERROR else None
            raise error or ProtocolError("frame without request id that is not an error")
        channel = self._pending.get(request_id)
        if channel is None:
            return  # an answer to a request we gave up on (timeout); harmless
        if kind in (FrameKind.OK, FrameKind.ERROR, FrameKind.END):
            del self._pending[request_id]
            # Capacity >= 1 is reserved for this; a receiver already gone just drops it.
            with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
                channel.send_nowait((kind, payload))
            channel.close()
        else:
            # Stream events: a slow consumer slows this connection, never the node.
            try:
                await channel.send((kind, payload))
            except trio.BrokenResourceError:
                self._pending.pop(request_id, None)

    async def run_writer(self) -> None:
        """Write queued frames, coalesced, until the connection closes."""
        try:
            async with self._outgoing_receive:
                async for frame in self._outgoing_receive:
                    chunks = [frame]
                    while True:
                        try:
                            chunks.append(self._outgoing_receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    with trio.move_on_after(WRITE_TIMEOUT_S) as write:
                        await self._stream.send_all(b"".join(chunks))
                    if write.cancelled_caught:
                        raise ConnectionLostError(
                            f"the node did not accept a frame within {WRITE_TIMEOUT_S} s; reconnect"
                        )
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._fail_all(ConnectionLostError(f"connection lost: {exc}"))
        except ConnectionLostError as exc:
            self._fail_all(exc)
            await trio.aclose_forcefully(self._stream)

    def _fail_all(self, exc: ClientError) -> None:
        if self._closed is None:  # the first cause is the one worth reporting
            self._closed = exc
        for channel in self._pending.values():
            channel.close()
        self._pending.clear()

    # --- requests -------------------------------------------------------------------

    async def _send_request(
        self, op: Op | str, args: dict[str, Any], capacity: int
    ) -> tuple[int, trio.MemoryReceiveChannel[_Frame]]:
        if isinstance(self._closed, ApiError):
            raise self._closed
        if self._closed is not None:
            raise ConnectionLostError(f"connection closed: {self._closed}")
        request_id = next(self._ids)
        if request_id > REQUEST_ID_MAX:
            raise ClientError("request ids exhausted on this connection; reconnect")
        try:
            frame = encode_body(request_body(request_id, op, args), self.frame_bytes_max)
        except (FrameError, EncodingError) as exc:
            raise ClientError(f"cannot send {op}: {exc}") from exc
        send, receive = trio.open_memory_channel[_Frame](capacity)
        self._pending[request_id] = send
        try:
            await self._outgoing.send(frame)  # whole frame queued, or not at all
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._pending.pop(request_id, None)
            raise self._closed_error() from None
        return request_id, receive

    def _closed_error(self) -> ClientError:
        return ConnectionLostError(f"connection closed before the answer: {self._closed}")

    async def request(
        self, op: Op | str, args: dict[str, Any], *, timeout_s: float | None = None
    ) -> Any:
        """Send one request and return its result; raises ApiError for an error answer."""
        deadline = math.inf if timeout_s is None else trio.current_time() + timeout_s
        request_id: int | None = None
        try:
            with trio.CancelScope(deadline=deadline) as scope:
                request_id, receive = await self._send_request(op, args, 1)
                async with receive:
                    try:
                        kind, payload = await receive.receive()
                    except trio.EndOfChannel:
                        if isinstance(self._closed, ApiError):
                            raise self._closed from None
                        raise self._closed_error() from None
            if scope.cancelled_caught:
                raise RequestTimeoutError(f"no answer to {op} within {timeout_s} s")
        finally:
            if request_id is not None:
                self._pending.pop(request_id, None)
        if kind == FrameKind.OK:
            return payload
        if kind == FrameKind.ERROR:
            raise _error_from(payload)
        raise ProtocolError(f"unexpected {kind} frame answering {op}")

    @asynccontextmanager
    async def stream(self, op: Op | str, args: dict[str, Any]) -> AsyncIterator[Subscription]:
        """Open a stream (subscribe); leaving the block cancels it on the node."""
        request_id, receive = await self._send_request(op, args, STREAM_BUFFER_FRAMES)
        subscription = Subscription(self, request_id, receive)
        try:
            yield subscription
        finally:
            self._pending.pop(request_id, None)
            receive.close()
            if not subscription.ended and self._closed is None:
                # Best effort: the node stops producing; the answer does not matter.
                with trio.move_on_after(5), contextlib.suppress(ClientError):
                    await self.request(Op.CANCEL, {"target": request_id})


class Subscription:
    """Async iterator over the payloads of a stream; ends on the node's `end` frame."""

    def __init__(
        self,
        connection: ClientConnection,
        request_id: int,
        receive: trio.MemoryReceiveChannel[_Frame],
    ) -> None:
        self._connection = connection
        self.request_id = request_id
        self._receive = receive
        self.ended = False
        self.end_reason: str | None = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        if self.ended:
            raise StopAsyncIteration
        try:
            kind, payload = await self._receive.receive()
        except trio.EndOfChannel:
            self.ended = True
            raise self._connection._closed_error() from None
        if kind == FrameKind.EVENT:
            return payload
        self.ended = True
        if kind == FrameKind.END:
            self.end_reason = payload.get("reason") if isinstance(payload, dict) else None
            raise StopAsyncIteration
        if kind == FrameKind.ERROR:
            raise _error_from(payload)
        raise ProtocolError(f"unexpected {kind} frame in a stream")


@asynccontextmanager
async def open_connection(
    host: str,
    port: int,
    *,
    frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
    connect_timeout_s: float = 10.0,
) -> AsyncIterator[ClientConnection]:
    """Connect to a node's client port; the connection closes when the block exits."""
    try:
        with trio.fail_after(connect_timeout_s):
            stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError as exc:
        raise ConnectionLostError(
            f"cannot connect to {host}:{port}: no answer within {connect_timeout_s} s"
        ) from exc
    except OSError as exc:
        cause = exc.__cause__
        # trio reports "all attempts failed" and keeps the per-address errors as the cause.
        errors = getattr(cause, "exceptions", None) or [cause or exc]
        detail = getattr(errors[0], "strerror", None) or str(errors[0])
        raise ConnectionLostError(
            f"cannot connect to {host}:{port} ({detail}); is the node running, and is this its client port?"
        ) from exc
    async with stream, connection_over(stream, frame_bytes_max=frame_bytes_max) as connection:
        yield connection


@asynccontextmanager
async def connection_over(
    stream: trio.abc.Stream, *, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT
) -> AsyncIterator[ClientConnection]:
    """A connection over an already open stream (tests use memory streams)."""
    connection = ClientConnection(stream, frame_bytes_max=frame_bytes_max)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run_reader)
            nursery.start_soon(connection.run_writer)
            try:
                yield connection
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Reader and writer record their errors instead of raising, so the group holds the caller's
        # own exception: give it back unwrapped (`except ApiError` must keep working).
        if len(group.exceptions) == 1:
            only = group.exceptions[0]
            raise only from only.__cause__
        raise
