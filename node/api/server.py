"""The client API server: one trio task per connection, one task per request, one writer.

Theory of operation
1. The reader task decodes frames in order. A frame that cannot be read as a canonical
   `[request_id, op, args]` poisons the stream, so the connection gets one error frame (request
   id nil) and closes; every other connection is untouched.
2. A well-formed request is validated synchronously; bad arguments, unknown ops, duplicate
   request ids and limit refusals are answered at once and the connection stays up.
3. Each accepted request runs in its own task, so slow ops (submit_wait, subscriptions) never
   hold up fast ones; responses carry the request id and may arrive in any order.
4. All frames of a connection go through one bounded channel to one writer, which coalesces
   whatever is queued into one `send_all`. A client that stops reading fills its own channel
   and stalls its own requests (backpressure) -- never the node or other clients.
5. Limits: requests in flight per connection (subscriptions count too), connections per remote
   address, pending submit_waits and subscriptions node-wide. All counters are plain ints
   touched only from trio tasks of this server (one thread), so no locks.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import Counter
from typing import Any

import trio

from consensus.encoding import EncodingError
from node.api.backend import ClientBackend
from node.api.errors import BackendError, ErrorCode, TooManyWaitsError, WaitTimeoutError
from node.api.framing import (
    FrameDecoder,
    FrameTooLargeError,
    MalformedFrameError,
    decode_body,
    decode_limits_for,
    encode_body,
)
from node.api.limits import ApiLimits
from node.api.requests import (
    AccountArgs,
    AssetArgs,
    BalanceArgs,
    BlockArgs,
    CancelArgs,
    Envelope,
    EvidenceArgs,
    GovernanceArgs,
    HistoryArgs,
    NoArgs,
    Op,
    OpArgs,
    SubmitWaitArgs,
    SubscribeArgs,
    SubscriptionKind,
    TxArgs,
    TxIdArgs,
    ValidatorsArgs,
    end_body,
    error_body,
    event_body,
    ok_body,
    parse_args,
    parse_envelope,
)
from node.api.results import BalanceInfo, NonceInfo, SubmitResult
from node.api.schema import SchemaError

RECEIVE_BYTES_MAX = 64 << 10
# How long a closing connection may take to flush its last frames (error frame included).
CLOSE_FLUSH_S = 5.0

END_CANCELLED = "cancelled"
# Error messages may quote client input; bounded so an error frame always fits.
ERROR_MESSAGE_CHARS_MAX = 1000


class ClientApiServer:
    def __init__(
        self,
        backend: ClientBackend,
        *,
        limits: ApiLimits | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.backend = backend
        self.limits = limits or ApiLimits()
        self.log = log or logging.getLogger("assetledger.api")
        self._decode_limits = decode_limits_for(self.limits.frame_bytes_max)
        self._connections_by_address: dict[str, int] = {}
        self.pending_waits = 0
        self.subscriptions = 0
        self.connections_open = 0
        # Error frames sent, by code: exported as metrics, and asserted on by tests.
        self.errors_sent: Counter[str] = Counter()

    async def serve(
        self,
        listen: tuple[str, int],
        *,
        task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on `listen` (port 0 picks a free port) and serve until cancelled.

        `nursery.start(server.serve, ...)` returns the bound (host, port) once listening."""
        host, port = listen
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()
        self.log.info("client api listening on %s:%s", bound[0], bound[1])
        task_status.started((bound[0], bound[1]))
        await trio.serve_listeners(self._handle_tcp, listeners)

    async def _handle_tcp(self, stream: trio.SocketStream) -> None:
        try:
            address = str(stream.socket.getpeername()[0])
        except OSError:
            await stream.aclose()
            return
        await self.handle_stream(stream, address)

    async def handle_stream(self, stream: trio.abc.Stream, address: str) -> None:
        """Serve one connection from `address` (an IP; the per-address limit keys on it)."""
        try:
            count = self._connections_by_address.get(address, 0)
            refusal = None
            if self.connections_open >= self.limits.connections_max:
                refusal = (
                    f"the node serves at most {self.limits.connections_max} client connections;"
                    " retry later"
                )
            elif count >= self.limits.connections_per_address_max:
                refusal = (
                    f"at most {self.limits.connections_per_address_max} connections per address;"
                    " close one and retry"
                )
            if refusal is not None:
                self.errors_sent[ErrorCode.TOO_MANY_CONNECTIONS] += 1
                frame = encode_body(
                    error_body(None, ErrorCode.TOO_MANY_CONNECTIONS, refusal),
                    self.limits.frame_bytes_max,
                )
                with trio.move_on_after(CLOSE_FLUSH_S):
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await stream.send_all(frame)
                return
            self._connections_by_address[address] = count + 1
            self.connections_open += 1
            try:
                await _Connection(self, stream, address).run()
            except Exception:
                # Our bug, confined to this connection: the listener and every other
                # connection keep running.
                self.log.exception("client connection from %s failed", address)
            finally:
                self.connections_open -= 1
                remaining = self._connections_by_address[address] - 1
                if remaining:
                    self._connections_by_address[address] = remaining
                else:
                    del self._connections_by_address[address]
        finally:
            await trio.aclose_forcefully(stream)

    def encode(self, body: list[Any]) -> bytes:
        if body[1] == "error":
            self.errors_sent[body[2]["code"]] += 1
            message = body[2]["message"]
            if len(message) > ERROR_MESSAGE_CHARS_MAX:
                body[2]["message"] = message[:ERROR_MESSAGE_CHARS_MAX] + "..."
        return encode_body(body, self.limits.frame_bytes_max)


class _Connection:
    def __init__(self, server: ClientApiServer, stream: trio.abc.Stream, address: str) -> None:
        self.server = server
        self.limits = server.limits
        self.stream = stream
        self.address = address
        self.in_flight = 0
        # request id -> cancel scope of its task (subscriptions are cancelled through it).
        self.active: dict[int, trio.CancelScope] = {}
        self.subscription_ids: set[int] = set()
        self.send, self._receive = trio.open_memory_channel[bytes](
            self.limits.send_queue_frames_max
        )

    async def run(self) -> None:
        async with trio.open_nursery() as outer:
            outer.start_soon(self._writer, outer.cancel_scope)
            async with self.send:
                async with trio.open_nursery() as requests:
                    fatal = await self._read_loop(requests)
                    requests.cancel_scope.cancel()
                # The writer drains what is queued, then sees the channel closed and exits;
                # a client that does not read gets CLOSE_FLUSH_S, then is cut off.
                outer.cancel_scope.deadline = trio.current_time() + CLOSE_FLUSH_S
                if fatal is not None:
                    # debug, not info: a flood of garbage must not flood the log too; the
                    # counts are in errors_sent.
                    self.server.log.debug(
                        "closing client connection from %s: %s", self.address, fatal[2]["message"]
                    )
                    await self.send.send(self.server.encode(fatal))

    async def _writer(self, outer: trio.CancelScope) -> None:
        try:
            async with self._receive:
                async for frame in self._receive:
                    chunks = [frame]
                    # Coalesce: everything already queued goes out in one write.
                    while True:
                        try:
                            chunks.append(self._receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    await self.stream.send_all(b"".join(chunks))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The client is gone: nothing we compute for it can be delivered.
            outer.cancel()

    async def _read_loop(self, requests: trio.Nursery) -> list[Any] | None:
        """Returns the fatal error body to send before closing, or None on end of stream."""
        decoder = FrameDecoder(self.limits.frame_bytes_max)
        frame_timeout_s = self.limits.frame_timeout_ms / 1000
        frame_deadline = math.inf
        while True:
            # An idle connection may wait forever (subscribers do); a frame once begun must
            # be finished in time, so trickling bytes cannot pin a connection slot.
            if decoder.buffered_bytes == 0:
                frame_deadline = math.inf
            elif frame_deadline == math.inf:
                frame_deadline = trio.current_time() + frame_timeout_s
            data: bytes | bytearray = b""
            with trio.CancelScope(deadline=frame_deadline):
                try:
                    data = await self.stream.receive_some(RECEIVE_BYTES_MAX)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                if not data:
                    return None
            if not data:
                return error_body(
                    None,
                    ErrorCode.FRAME_TIMEOUT,
                    f"frame not completed within {self.limits.frame_timeout_ms} ms",
                )
            try:
                bodies = decoder.feed(data)
            except FrameTooLargeError as exc:
                return error_body(None, ErrorCode.FRAME_TOO_LARGE, str(exc))
            if bodies:
                frame_deadline = math.inf  # the clock runs per frame, not per connection
            for body in bodies:
                try:
                    envelope = parse_envelope(decode_body(body, self.server._decode_limits))
                except MalformedFrameError as exc:
                    return error_body(None, ErrorCode.MALFORMED_FRAME, str(exc))
                await self._dispatch(envelope, requests)
            if decoder.error is not None:
                return error_body(None, ErrorCode.FRAME_TOO_LARGE, str(decoder.error))

    async def _reply_error(
        self, request_id: int, code: ErrorCode, message: str, reason: str | None = None
    ) -> None:
        await self.send.send(self.server.encode(error_body(request_id, code, message, reason)))

    async def _dispatch(self, envelope: Envelope, requests: trio.Nursery) -> None:
        request_id = envelope.request_id
        try:
            op = Op(envelope.op)
        except ValueError:
            await self._reply_error(
                request_id,
                ErrorCode.UNKNOWN_OP,
                f"unknown op {envelope.op!r}; see docs/protocol.md",
            )
            return
        if request_id in self.active:
            await self._reply_error(
                request_id,
                ErrorCode.BAD_REQUEST,
                f"request_id {request_id} is still in use on this connection; use a fresh id",
            )
            return
        try:
            args = parse_args(
                op,
                envelope.args,
                tx_bytes_max=self.limits.tx_bytes_max,
                wait_ms_max=self.limits.wait_ms_max,
            )
        except SchemaError as exc:
            await self._reply_error(request_id, ErrorCode.BAD_REQUEST, str(exc))
            return
        if isinstance(args, CancelArgs):
            await self._cancel(request_id, args.target)
            return
        if self.in_flight >= self.limits.requests_in_flight_max:
            await self._reply_error(
                request_id,
                ErrorCode.TOO_MANY_REQUESTS,
                f"at most {self.limits.requests_in_flight_max} requests in flight per connection; wait for responses",
            )
            return
        scope = trio.CancelScope()
        if isinstance(args, SubscribeArgs):
            if len(self.subscription_ids) >= self.limits.subscriptions_per_connection_max:
                await self._reply_error(
                    request_id,
                    ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                    f"at most {self.limits.subscriptions_per_connection_max} subscriptions per connection; cancel one first",
                )
                return
            if self.server.subscriptions >= self.limits.subscriptions_max:
                await self._reply_error(
                    request_id,
                    ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                    f"the node serves at most {self.limits.subscriptions_max} subscriptions; retry later",
                )
                return
            self.server.subscriptions += 1
            self.subscription_ids.add(request_id)
            self.in_flight += 1
            self.active[request_id] = scope
            requests.start_soon(self._serve_subscription, request_id, args, scope)
            return
        self.in_flight += 1
        self.active[request_id] = scope
        requests.start_soon(self._serve_request, request_id, op, args, scope)

    async def _cancel(self, request_id: int, target: int) -> None:
        scope = self.active.get(target)
        if scope is None or target not in self.subscription_ids:
            await self._reply_error(
                request_id, ErrorCode.NOT_FOUND, f"no open subscription with request_id {target}"
            )
            return
        scope.cancel()
        await self.send.send(self.server.encode(ok_body(request_id, {})))

    async def _serve_request(
        self, request_id: int, op: Op, args: OpArgs, scope: trio.CancelScope
    ) -> None:
        try:
            with scope:
                try:
                    body = ok_body(request_id, await self._call(op, args))
                except BackendError as exc:
                    body = error_body(
                        request_id, exc.code, exc.message, getattr(exc, "reason", None)
                    )
                except Exception:
                    self.server.log.exception("client api %s failed", op)
                    body = error_body(
                        request_id, ErrorCode.INTERNAL, "internal error; see the node log"
                    )
                await self.send.send(self._encode_reply(request_id, body))
        finally:
            self.in_flight -= 1
            del self.active[request_id]

    def _encode_reply(self, request_id: int, body: list[Any]) -> bytes:
        try:
            return self.server.encode(body)
        except FrameTooLargeError as exc:
            return self.server.encode(
                error_body(request_id, ErrorCode.FRAME_TOO_LARGE, f"response too large: {exc}")
            )
        except EncodingError:
            self.server.log.exception("client api result cannot be encoded")
            return self.server.encode(
                error_body(request_id, ErrorCode.INTERNAL, "internal error; see the node log")
            )

    async def _call(self, op: Op, args: OpArgs) -> Any:
        backend = self.server.backend
        match args:
            case TxArgs(tx=tx) if op is Op.SUBMIT:
                return SubmitResult(tx_id=await backend.submit(tx)).to_wire()
            case TxArgs(tx=tx):
                return (await backend.check(tx)).to_wire()
            case SubmitWaitArgs():
                return await self._submit_wait(args)
            case TxIdArgs(tx_id=tx_id):
                return (await backend.receipt(tx_id)).to_wire()
            case BalanceArgs(asset=asset, account=account):
                balance = await backend.balance(asset, account)
                return BalanceInfo(asset=asset, account=account, balance=balance).to_wire()
            case AccountArgs(account=account) if op is Op.NONCE:
                nonce = await backend.next_nonce(account)
                return NonceInfo(account=account, next_nonce=nonce).to_wire()
            case AccountArgs(account=account):
                return (await backend.account(account)).to_wire()
            case AssetArgs(asset=asset):
                return (await backend.asset(asset)).to_wire()
            case BlockArgs(height=height):
                return (await backend.block(height)).to_wire()
            case NoArgs():
                return (await backend.status()).to_wire()
            case HistoryArgs(account=account, limit=limit, cursor=cursor):
                return (await backend.history(account, limit, cursor)).to_wire()
            case ValidatorsArgs(height=height):
                return (await backend.validators(height)).to_wire()
            case GovernanceArgs(limit=limit, before_height=before_height):
                return (await backend.governance(limit, before_height)).to_wire()
            case EvidenceArgs(limit=limit, before_height=before_height):
                return (await backend.evidence(limit, before_height)).to_wire()
        raise AssertionError(f"op {op} with {type(args).__name__} has no handler")

    async def _submit_wait(self, args: SubmitWaitArgs) -> Any:
        server = self.server
        if server.pending_waits >= self.limits.pending_waits_max:
            raise TooManyWaitsError(
                f"the node has {self.limits.pending_waits_max} pending waits; use submit and poll the receipt, or retry later"
            )
        # Reserve the slot before submitting: a tx we cannot wait for should not be admitted.
        server.pending_waits += 1
        try:
            tx_id = await server.backend.submit(args.tx)
            with trio.move_on_after(args.timeout_ms / 1000):
                return (await server.backend.wait_receipt(tx_id)).to_wire()
            raise WaitTimeoutError(
                f"transaction {tx_id.hex()} not committed within {args.timeout_ms} ms; it may still commit, query its receipt"
            )
        finally:
            server.pending_waits -= 1

    async def _serve_subscription(
        self, request_id: int, args: SubscribeArgs, scope: trio.CancelScope
    ) -> None:
        backend = self.server.backend
        try:
            body: list[Any] | None = None
            with scope:
                try:
                    height = args.from_height
                    while True:
                        block = await backend.wait_block(height)
                        if args.kind is SubscriptionKind.BLOCKS:
                            payloads = [block.to_wire()]
                        else:
                            payloads = [r.to_wire() for r in await backend.block_receipts(height)]
                        for payload in payloads:
                            await self.send.send(
                                self.server.encode(event_body(request_id, payload))
                            )
                        height += 1
                except FrameTooLargeError as exc:
                    # An event that cannot be framed ends the stream (an error frame is final).
                    body = error_body(
                        request_id, ErrorCode.FRAME_TOO_LARGE, f"event too large: {exc}"
                    )
                except BackendError as exc:
                    body = error_body(
                        request_id, exc.code, exc.message, getattr(exc, "reason", None)
                    )
                except Exception:
                    self.server.log.exception("client api subscription failed")
                    body = error_body(
                        request_id, ErrorCode.INTERNAL, "internal error; see the node log"
                    )
            if scope.cancelled_caught:
                body = end_body(request_id, END_CANCELLED)
            if body is not None:
                await self.send.send(self.server.encode(body))
        finally:
            self.in_flight -= 1
            self.server.subscriptions -= 1
            self.subscription_ids.discard(request_id)
            del self.active[request_id]
