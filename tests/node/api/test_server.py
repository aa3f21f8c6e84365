"""The client API server over in-memory streams: every op, every limit, every refusal."""

from __future__ import annotations

import logging
import struct

import pytest
import trio

from consensus.encoding import pack
from node.api.errors import (
    InvalidArgumentError,
    NotFoundError,
    RejectedError,
    UnavailableError,
)
from node.api.limits import ApiLimits
from node.api.results import BlockInfo, ReceiptInfo, StatusInfo
from node.api.server import ClientApiServer
from node.client.finality import verify_finality
from tests.node.api.fake_backend import CHAIN_ID, VALIDATORS, FakeBackend
from tests.node.api.helpers import ALICE, ISSUER, Peer, connect_raw, pub, transfer


def make(**limits: int) -> tuple[FakeBackend, ClientApiServer]:
    backend = FakeBackend()
    backend.add_asset("BOND", 2, pub(ISSUER))
    backend.fund("BOND", pub(ALICE), 10_000)
    return backend, ClientApiServer(backend, limits=ApiLimits(**limits))


def error(frame: list[object]) -> tuple[object, str]:
    assert frame[1] == "error", frame
    payload = frame[2]
    assert isinstance(payload, dict)
    return frame[0], str(payload["code"])


async def test_status_and_balance(nursery: trio.Nursery) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    response = await peer.request(1, "status", {})
    assert response[:2] == [1, "ok"]
    status = StatusInfo.from_wire(response[2])
    assert status.chain_id == CHAIN_ID and status.height == 0
    assert [v.name for v in status.validators] == ["v0", "v1", "v2", "v3"]
    response = await peer.request(2, "balance", {"asset": "BOND", "account": pub(ALICE)})
    assert response == [2, "ok", {"asset": "BOND", "account": pub(ALICE), "balance": 10_000}]


async def test_pipelined_requests_are_answered_out_of_order(nursery: trio.Nursery) -> None:
    backend, server = make()
    gate = backend.gates["balance"] = trio.Event()
    peer = connect_raw(nursery, server)
    await peer.send([10, "balance", {"asset": "BOND", "account": pub(ALICE)}])
    await peer.send([11, "status", {}])
    first = await peer.recv()
    assert first[:2] == [11, "ok"]  # the slow balance did not hold up status
    gate.set()
    second = await peer.recv()
    assert second[:2] == [10, "ok"]


async def test_submit_then_receipt_with_a_verifiable_proof(nursery: trio.Nursery) -> None:
    backend, server = make()
    peer = connect_raw(nursery, server)
    stx = transfer(ALICE, 0)
    assert await peer.request(1, "submit", {"tx": stx.encode()}) == [1, "ok", {"tx_id": stx.tx_id}]
    _, code = error(await peer.request(2, "receipt", {"tx_id": stx.tx_id}))
    assert code == "not_found"
    backend.commit_block()
    response = await peer.request(3, "receipt", {"tx_id": stx.tx_id})
    receipt = ReceiptInfo.from_wire(response[2])
    assert receipt.status == "applied" and receipt.height == 1
    verify_finality(receipt, VALIDATORS, CHAIN_ID)


async def test_submit_wait_answers_at_commit(nursery: trio.Nursery) -> None:
    backend, server = make()
    peer = connect_raw(nursery, server)
    stx = transfer(ALICE, 0)
    await peer.send([5, "submit_wait", {"tx": stx.encode(), "timeout_ms": 10_000}])
    await trio.testing.wait_all_tasks_blocked()
    assert server.pending_waits == 1
    backend.commit_block()
    response = await peer.recv()
    assert response[:2] == [5, "ok"]
    assert ReceiptInfo.from_wire(response[2]).proof is not None
    assert server.pending_waits == 0


async def test_submit_wait_times_out(nursery: trio.Nursery, autojump_clock: object) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    stx = transfer(ALICE, 0)
    start = trio.current_time()
    response = await peer.request(5, "submit_wait", {"tx": stx.encode(), "timeout_ms": 1500})
    assert error(response) == (5, "timeout")
    assert stx.tx_id.hex() in response[2]["message"]
    assert trio.current_time() - start == pytest.approx(1.5)
    assert server.pending_waits == 0


async def test_admission_refusal_carries_the_reason(nursery: trio.Nursery) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    response = await peer.request(1, "submit", {"tx": transfer(ALICE, 3).encode()})
    assert response == [
        1,
        "error",
        {"code": "rejected", "message": "transaction rejected: bad_nonce", "reason": "bad_nonce"},
    ]
    response = await peer.request(
        2, "submit", {"tx": transfer(ALICE, 0, chain_id="other").encode()}
    )
    assert response[2]["reason"] == "wrong_chain"
    response = await peer.request(3, "submit", {"tx": b"\x93garbage"})
    assert response[2]["reason"] == "malformed"


async def test_check_is_a_dry_run(nursery: trio.Nursery) -> None:
    backend, server = make()
    peer = connect_raw(nursery, server)
    good = transfer(ALICE, 0).encode()
    assert await peer.request(1, "check", {"tx": good}) == [
        1,
        "ok",
        {"accepted": True, "reason": None},
    ]
    assert backend.mempool == []
    response = await peer.request(2, "check", {"tx": transfer(ALICE, 9).encode()})
    assert response[2] == {"accepted": False, "reason": "bad_nonce"}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "balance.asset: missing"),
        ({"asset": "BOND", "account": b"short"}, "balance.account: expected 32 bytes"),
        ({"asset": 5, "account": bytes(32)}, "balance.asset: expected a string"),
        ({"asset": "BOND", "account": bytes(32), "extra": 1}, "unknown field(s) 'extra'"),
    ],
)
async def test_bad_arguments_are_a_bad_request_and_the_connection_stays(
    nursery: trio.Nursery, args: dict[str, object], field: str
) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    response = await peer.request(1, "balance", args)
    assert error(response) == (1, "bad_request")
    assert field in response[2]["message"]
    assert (await peer.request(2, "status", {}))[1] == "ok"


async def test_unknown_op(nursery: trio.Nursery) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    assert error(await peer.request(1, "transmogrify", {})) == (1, "unknown_op")
    assert (await peer.request(2, "status", {}))[1] == "ok"


async def test_submit_wait_timeout_is_bounded(nursery: trio.Nursery) -> None:
    _, server = make(wait_ms_max=1000)
    peer = connect_raw(nursery, server)
    args = {"tx": transfer(ALICE, 0).encode(), "timeout_ms": 1001}
    assert error(await peer.request(1, "submit_wait", args)) == (1, "bad_request")


async def test_oversized_transaction_is_a_bad_request(nursery: trio.Nursery) -> None:
    _, server = make(tx_bytes_max=300)
    peer = connect_raw(nursery, server)
    assert error(await peer.request(1, "submit", {"tx": bytes(301)})) == (1, "bad_request")


async def test_a_request_id_in_use_is_refused(nursery: trio.Nursery) -> None:
    backend, server = make()
    gate = backend.gates["status"] = trio.Event()
    peer = connect_raw(nursery, server)
    await peer.send([1, "status", {}])
    await peer.send([1, "status", {}])
    assert error(await peer.recv()) == (1, "bad_request")
    gate.set()
    assert (await peer.recv())[:2] == [1, "ok"]


async def test_too_many_requests_in_flight(nursery: trio.Nursery) -> None:
    backend, server = make(requests_in_flight_max=2)
    gate = backend.gates["status"] = trio.Event()
    peer = connect_raw(nursery, server)
    for request_id in (1, 2, 3):
        await peer.send([request_id, "status", {}])
    assert error(await peer.recv()) == (3, "too_many_requests")
    gate.set()
    assert sorted([(await peer.recv())[0], (await peer.recv())[0]]) == [1, 2]
    assert (await peer.request(4, "status", {}))[1] == "ok"  # the connection stayed up


async def test_too_many_connections_from_one_address(nursery: trio.Nursery) -> None:
    _, server = make(connections_per_address_max=2)
    first = connect_raw(nursery, server, "10.0.0.1")
    second = connect_raw(nursery, server, "10.0.0.1")
    assert (await first.request(1, "status", {}))[1] == "ok"
    assert (await second.request(1, "status", {}))[1] == "ok"
    third = connect_raw(nursery, server, "10.0.0.1")
    assert error(await third.recv()) == (None, "too_many_connections")
    await third.expect_closed()
    other = connect_raw(nursery, server, "10.0.0.2")
    assert (await other.request(1, "status", {}))[1] == "ok"
    # Closing one frees its slot.
    await first.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    again = connect_raw(nursery, server, "10.0.0.1")
    assert (await again.request(1, "status", {}))[1] == "ok"


async def test_too_many_connections_node_wide(nursery: trio.Nursery) -> None:
    _, server = make(connections_max=2)
    first = connect_raw(nursery, server, "10.0.0.1")
    second = connect_raw(nursery, server, "10.0.0.2")
    assert (await first.request(1, "status", {}))[1] == "ok"
    assert (await second.request(1, "status", {}))[1] == "ok"
    third = connect_raw(nursery, server, "10.0.0.3")  # a fresh address is refused too
    response = await third.recv()
    assert error(response) == (None, "too_many_connections")
    assert "at most 2 client connections" in str(response)
    await third.expect_closed()
    await second.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    again = connect_raw(nursery, server, "10.0.0.3")
    assert (await again.request(1, "status", {}))[1] == "ok"


async def test_too_many_pending_waits(nursery: trio.Nursery) -> None:
    backend, server = make(pending_waits_max=1)
    peer = connect_raw(nursery, server)
    await peer.send([1, "submit_wait", {"tx": transfer(ALICE, 0).encode(), "timeout_ms": 60_000}])
    await trio.testing.wait_all_tasks_blocked()
    response = await peer.request(
        2, "submit_wait", {"tx": transfer(ALICE, 1).encode(), "timeout_ms": 60_000}
    )
    assert error(response) == (2, "too_many_waits")
    assert len(backend.mempool) == 1  # the refused wait did not submit its transaction
    backend.commit_block()
    assert (await peer.recv())[:2] == [1, "ok"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x00\x00\x03\xc1\xc1\xc1", "malformed_frame"),
        (struct.pack(">I", 1 << 24), "frame_too_large"),
        (struct.pack(">I", 3) + pack([1, 2]), "malformed_frame"),
        (struct.pack(">I", 4) + b"\x93\xcd\x00\x01", "malformed_frame"),  # not canonical
        (struct.pack(">I", 0), "malformed_frame"),
    ],
)
async def test_a_bad_frame_closes_only_its_connection(
    nursery: trio.Nursery, data: bytes, code: str
) -> None:
    _, server = make()
    bystander = connect_raw(nursery, server)
    bad = connect_raw(nursery, server, "10.0.0.9")
    await bad.send_bytes(data)
    assert error(await bad.recv()) == (None, code)
    await bad.expect_closed()
    assert (await bystander.request(1, "status", {}))[1] == "ok"
    assert server.errors_sent[code] == 1


@pytest.mark.parametrize(
    "envelope",
    [
        [1, "status"],
        ["1", "status", {}],
        [-1, "status", {}],
        [True, "status", {}],
        [1, 2, {}],
        [1, "status", []],
        {"id": 1},
    ],
)
async def test_a_bad_envelope_is_a_malformed_frame(nursery: trio.Nursery, envelope: object) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    await peer.send(envelope)
    assert error(await peer.recv()) == (None, "malformed_frame")
    await peer.expect_closed()


async def test_a_bad_frame_after_good_ones_in_one_read_still_closes(
    nursery: trio.Nursery,
) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    good = pack([1, "status", {}])
    await peer.send_bytes(struct.pack(">I", len(good)) + good + b"\xff\xff\xff\xff")
    # The good request was dispatched, but closing cancels whatever is still in flight:
    # it may or may not be answered; the error frame always comes, then the close.
    frame = await peer.recv()
    if frame[0] == 1:
        frame = await peer.recv()
    assert error(frame) == (None, "frame_too_large")
    await peer.expect_closed()


@pytest.mark.parametrize(
    ("failure", "code", "reason"),
    [
        (NotFoundError("no such thing"), "not_found", None),
        (RejectedError("account_frozen"), "rejected", "account_frozen"),
        (UnavailableError("node is syncing"), "unavailable", None),
        (InvalidArgumentError("nope"), "bad_request", None),
    ],
)
async def test_backend_exceptions_map_to_error_codes(
    nursery: trio.Nursery, failure: Exception, code: str, reason: str | None
) -> None:
    backend, server = make()
    backend.failures["status"] = failure
    peer = connect_raw(nursery, server)
    response = await peer.request(1, "status", {})
    assert error(response) == (1, code)
    assert response[2].get("reason") == reason


async def test_a_backend_bug_is_internal_and_logged(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    backend, server = make()
    backend.failures["status"] = KeyError("secret internals")
    peer = connect_raw(nursery, server)
    with caplog.at_level(logging.ERROR, logger="assetledger.api"):
        response = await peer.request(1, "status", {})
    assert response == [
        1,
        "error",
        {"code": "internal", "message": "internal error; see the node log"},
    ]
    assert "secret internals" in caplog.text
    assert (await peer.request(2, "asset", {"asset": "BOND"}))[1] == "ok"


async def test_a_response_above_the_frame_limit_fails_only_that_request(
    nursery: trio.Nursery,
) -> None:
    backend, server = make(frame_bytes_max=4096, tx_bytes_max=1024)
    backend.blocks.append(
        BlockInfo(height=1, block_hash=bytes(32), tx_ids=(), block=bytes(5000), certificate=b"")
    )
    peer = connect_raw(nursery, server)
    assert error(await peer.request(1, "block", {"height": 1})) == (1, "frame_too_large")
    assert (await peer.request(2, "status", {}))[1] == "ok"


async def test_block_and_history(nursery: trio.Nursery) -> None:
    backend, server = make()
    peer = connect_raw(nursery, server)
    for nonce in range(3):
        await peer.request(nonce, "submit", {"tx": transfer(ALICE, nonce).encode()})
        backend.commit_block()
    block = BlockInfo.from_wire((await peer.request(10, "block", {"height": 2}))[2])
    assert block.height == 2 and len(block.tx_ids) == 1
    verify_finality(block.proof(), VALIDATORS, CHAIN_ID)
    assert error(await peer.request(11, "block", {"height": 4})) == (11, "not_found")
    page = (await peer.request(12, "history", {"account": pub(ALICE), "limit": 2}))[2]
    assert len(page["tx_ids"]) == 2 and page["next_cursor"] is not None
    rest = await peer.request(
        13, "history", {"account": pub(ALICE), "limit": 2, "cursor": page["next_cursor"]}
    )
    assert len(rest[2]["tx_ids"]) == 1 and rest[2]["next_cursor"] is None


async def test_subscription_streams_blocks_until_cancelled(nursery: trio.Nursery) -> None:
    backend, server = make()
    peer = connect_raw(nursery, server)
    backend.commit_block()  # height 1 exists before subscribing
    await peer.send([7, "subscribe", {"kind": "blocks", "from_height": 1}])
    assert (await peer.recv())[:2] == [7, "event"]
    backend.commit_block()
    event = await peer.recv()
    assert event[:2] == [7, "event"] and event[2]["height"] == 2
    assert await peer.request(8, "cancel", {"target": 7}) == [8, "ok", {}]
    assert await peer.recv() == [7, "end", {"reason": "cancelled"}]
    assert server.subscriptions == 0
    assert error(await peer.request(9, "cancel", {"target": 7})) == (9, "not_found")


async def test_receipt_subscription(nursery: trio.Nursery) -> None:
    backend, server = make()
    peer = connect_raw(nursery, server)
    await peer.send([1, "subscribe", {"kind": "receipts", "from_height": 1}])
    await peer.request(2, "submit", {"tx": transfer(ALICE, 0).encode()})
    await peer.request(3, "submit", {"tx": transfer(ALICE, 1, amount=10**9).encode()})
    backend.commit_block()
    first, second = await peer.recv(), await peer.recv()
    assert first[2]["status"] == "applied"
    assert second[2]["status"] == "rejected" and second[2]["reason"] == "insufficient_balance"


async def test_too_many_subscriptions_node_wide(nursery: trio.Nursery) -> None:
    _, server = make(subscriptions_max=1)
    first = connect_raw(nursery, server, "10.0.0.1")
    second = connect_raw(nursery, server, "10.0.0.2")
    await first.send([1, "subscribe", {"kind": "blocks", "from_height": 1}])
    await trio.testing.wait_all_tasks_blocked()
    response = await second.request(1, "subscribe", {"kind": "blocks", "from_height": 1})
    assert error(response) == (1, "too_many_subscriptions")
    # Closing the first connection releases its subscription.
    await first.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert server.subscriptions == 0


async def test_a_client_that_vanishes_mid_request_leaves_the_server_clean(
    nursery: trio.Nursery,
) -> None:
    backend, server = make()
    gate = backend.gates["status"] = trio.Event()
    peer = connect_raw(nursery, server)
    await peer.send([1, "status", {}])
    await peer.send([2, "subscribe", {"kind": "blocks", "from_height": 1}])
    await peer.send([3, "submit_wait", {"tx": transfer(ALICE, 0).encode(), "timeout_ms": 9000}])
    await trio.testing.wait_all_tasks_blocked()
    assert server.pending_waits == 1 and server.subscriptions == 1
    await peer.stream.aclose()
    gate.set()
    await trio.testing.wait_all_tasks_blocked()
    assert (server.pending_waits, server.subscriptions, server.connections_open) == (0, 0, 0)


async def test_a_client_that_does_not_read_only_stalls_itself(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    _, server = make(send_queue_frames_max=2, requests_in_flight_max=4)
    stalled = connect_raw(nursery, server, "10.0.0.1")
    # memory_stream_pair has no buffer: unread responses block the server's writer.
    with trio.move_on_after(1):
        for request_id in range(100):
            await stalled.send([request_id, "status", {}])
    other = connect_raw(nursery, server, "10.0.0.2")
    assert (await other.request(1, "status", {}))[1] == "ok"


async def test_serves_real_tcp_on_loopback(nursery: trio.Nursery) -> None:
    _, server = make()
    host, port = await nursery.start(server.serve, ("127.0.0.1", 0))
    stream = await trio.open_tcp_stream(host, port)
    peer = Peer(stream)
    assert (await peer.request(1, "status", {}))[1] == "ok"
    await stream.aclose()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="requests_in_flight_max"):
        ApiLimits(requests_in_flight_max=0)
    with pytest.raises(ValueError, match="tx_bytes_max"):
        ApiLimits(frame_bytes_max=1024, tx_bytes_max=2048)


async def test_too_many_subscriptions_per_connection(nursery: trio.Nursery) -> None:
    _, server = make(subscriptions_per_connection_max=1)
    peer = connect_raw(nursery, server)
    await peer.send([1, "subscribe", {"kind": "blocks", "from_height": 1}])
    response = await peer.request(2, "subscribe", {"kind": "receipts", "from_height": 1})
    assert error(response) == (2, "too_many_subscriptions")
    assert "per connection" in response[2]["message"]


def test_limits_from_the_node_config() -> None:
    from config.genesis import ConsensusParams
    from config.node_config import Limits, Timeouts
    from node.api.limits import from_node_config

    limits = from_node_config(
        Limits(),
        Timeouts(client_wait_max_ms=5000),
        ConsensusParams(tx_bytes_max=4096, memo_bytes_max=64),
        send_queue_frames_max=8,
    )
    assert limits.wait_ms_max == 5000
    assert limits.tx_bytes_max == 4096  # a chain parameter: genesis [consensus]
    assert limits.subscriptions_per_connection_max == Limits().subscriptions_max
    assert limits.send_queue_frames_max == 8


async def test_an_event_above_the_frame_limit_ends_its_stream(nursery: trio.Nursery) -> None:
    backend, server = make(frame_bytes_max=4096, tx_bytes_max=1024)
    backend.blocks.append(
        BlockInfo(height=1, block_hash=bytes(32), tx_ids=(), block=bytes(5000), certificate=b"")
    )
    peer = connect_raw(nursery, server)
    response = await peer.request(1, "subscribe", {"kind": "blocks", "from_height": 1})
    assert error(response) == (1, "frame_too_large")
    await trio.testing.wait_all_tasks_blocked()
    assert server.subscriptions == 0
    assert (await peer.request(1, "status", {}))[1] == "ok"  # the id is free again


async def test_error_messages_quoting_client_input_stay_small(nursery: trio.Nursery) -> None:
    _, server = make()
    peer = connect_raw(nursery, server)
    args = {f"{i:04d}" + "k" * 60_000: 1 for i in range(15)}
    response = await peer.request(1, "status", args)
    assert error(response) == (1, "bad_request")
    assert "and 10 more" in response[2]["message"]
    assert len(response[2]["message"]) < 400
    assert (await peer.request(2, "status", {}))[1] == "ok"


async def test_a_server_bug_in_one_connection_spares_the_others(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = make()
    healthy = connect_raw(nursery, server, "10.0.0.1")
    assert (await healthy.request(1, "status", {}))[1] == "ok"

    def broken(*args: object) -> None:
        raise RuntimeError("bug in dispatch")

    with monkeypatch.context() as patch, caplog.at_level(logging.ERROR, logger="assetledger.api"):
        from node.api import server as server_module

        patch.setattr(server_module, "parse_envelope", broken)
        victim = connect_raw(nursery, server, "10.0.0.2")
        await victim.send([1, "status", {}])
        await victim.expect_closed()
    assert "bug in dispatch" in caplog.text
    assert (await healthy.request(2, "status", {}))[1] == "ok"
    assert server.connections_open == 1


async def test_a_frame_trickled_too_slowly_closes_the_connection(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    _, server = make(frame_timeout_ms=2000)
    peer = connect_raw(nursery, server)
    frame = struct.pack(">I", 100) + b"\x93"
    start = trio.current_time()
    await peer.send_bytes(frame)
    assert error(await peer.recv()) == (None, "frame_timeout")
    await peer.expect_closed()
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_an_idle_connection_is_not_timed_out(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    _, server = make(frame_timeout_ms=2000)
    peer = connect_raw(nursery, server)
    await trio.sleep(3600)
    assert (await peer.request(1, "status", {}))[1] == "ok"
    # Bytes arriving steadily within the window per frame are fine.
    good = pack([2, "status", {}])
    data = struct.pack(">I", len(good)) + good
    for byte in data:
        await peer.send_bytes(bytes([byte]))
        await trio.sleep(0.1)
    assert (await peer.recv())[:2] == [2, "ok"]


async def test_the_frame_clock_restarts_for_each_frame(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    _, server = make(frame_timeout_ms=2000)
    peer = connect_raw(nursery, server)
    stream = b"".join(
        struct.pack(">I", len(body)) + body for body in (pack([i, "status", {}]) for i in range(10))
    )
    # Chunks straddle frame boundaries, so a partial frame is always buffered; in total
    # this takes far longer than one frame's window, but each frame completes in time.
    assert len(stream) % 14 == 0  # 14-byte frames, 5-byte chunks: boundaries rarely align
    for start in range(0, len(stream), 5):
        await peer.send_bytes(stream[start : start + 5])
        await trio.sleep(0.5)
    ids = sorted([(await peer.recv())[0] for _ in range(10)])
    assert ids == list(range(10))
