"""AsyncClient against the real server (fake backend) over in-memory streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from consensus.certificate import CommitCertificate
from node.api.limits import ApiLimits
from node.api.results import FinalityProof
from node.api.server import ClientApiServer
from node.client import (
    ApiError,
    AsyncClient,
    ConnectionLostError,
    FinalityError,
    ProtocolError,
    RequestTimeoutError,
    verify_finality,
)
from node.client.async_client import REQUEST_TIMEOUT_S_DEFAULT
from node.client.connection import connection_over
from node.finality import FinalityRecord
from node.tx import TxBuildError, TxLimits, decode_signed_transaction
from tests.node.api.fake_backend import CHAIN_ID, VALIDATORS, FakeBackend
from tests.node.api.helpers import ALICE, BOB, ISSUER, connect_stream, pub


def make_backend() -> FakeBackend:
    backend = FakeBackend(autocommit=True)
    backend.add_asset("BOND", 2, pub(ISSUER))
    backend.fund("BOND", pub(ALICE), 10_000)
    return backend


@asynccontextmanager
async def client_for(
    server: ClientApiServer,
    address: str = "10.0.0.1",
    *,
    request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
) -> AsyncIterator[AsyncClient]:
    async with trio.open_nursery() as nursery:
        stream = connect_stream(nursery, server, address)
        async with connection_over(stream) as connection:
            yield AsyncClient(connection, request_timeout_s=request_timeout_s)
        await stream.aclose()


TRANSFER = {"asset_id": "BOND", "to_account": pub(BOB), "amount": 250}


async def test_queries() -> None:
    backend = make_backend()
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        assert (await client.status()).chain_id == CHAIN_ID
        assert await client.chain_id() == CHAIN_ID
        assert await client.balance("BOND", pub(ALICE)) == 10_000
        assert (await client.asset("BOND")).decimals == 2
        assert (await client.account(pub(ALICE))).registered
        with pytest.raises(ApiError) as info:
            await client.asset("NOPE")
        assert info.value.code == "not_found"


async def test_send_and_wait_commits_with_a_verifiable_proof() -> None:
    backend = make_backend()
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        outcome = await client.send("transfer", TRANSFER, key=ALICE, wait=True)
        assert outcome.status == "committed" and outcome.height == 1 and outcome.reason is None
        assert outcome.to_json()["tx_id"] == outcome.tx_id.hex()
        assert outcome.receipt is not None
        record = client.verify_finality(outcome.receipt, VALIDATORS, CHAIN_ID)
        assert record.certificate.seq == 1
        assert await client.balance("BOND", pub(BOB)) == 250


async def test_nonces_come_from_the_node_then_advance_locally() -> None:
    backend = make_backend()
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        first = await client.send("transfer", TRANSFER, key=ALICE)
        second = await client.send("transfer", TRANSFER, key=ALICE)
        assert (first.status, second.status) == ("pending", "pending")
        assert [stx.body.nonce for stx in backend.mempool] == [0, 1]
        assert backend.calls.count("next_nonce") == 1
        # An explicit nonce that is wrong is rejected and the cache is dropped.
        bad = await client.send("transfer", TRANSFER, key=ALICE, nonce=7)
        assert (bad.status, bad.reason, bad.height) == ("rejected", "bad_nonce", None)
        third = await client.send("transfer", TRANSFER, key=ALICE)
        assert third.status == "pending"
        assert backend.mempool[-1].body.nonce == 2
        assert backend.calls.count("next_nonce") == 2


async def test_ledger_rejection_is_reported_with_height() -> None:
    backend = make_backend()
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        outcome = await client.send("transfer", {**TRANSFER, "amount": 10**9}, key=ALICE, wait=True)
        assert (outcome.status, outcome.reason, outcome.height) == (
            "rejected",
            "insufficient_balance",
            1,
        )


async def test_every_kind_can_be_built_and_decodes_back() -> None:
    backend = make_backend()
    server = ClientApiServer(backend)
    account = pub(BOB)
    audit = {"reason_code": "COURT", "order_ref": "ORD-1"}
    cases: dict[str, dict[str, object]] = {
        "register_account": {"account": account, "category": "individual", "kyc_hash": bytes(32)},
        "revoke_account": {"account": account},
        "grant_role": {"account": account, "role": "issuer"},
        "revoke_role": {"account": account, "role": "registrar"},
        "set_supply_cap": {"asset_id": "BOND", "cap": 10**9},
        "force_transfer": {
            "asset_id": "BOND",
            "from_account": pub(ALICE),
            "to_account": account,
            "amount": 5,
            **audit,
        },
        "recover_account": {"lost_account": pub(ALICE), "new_account": account, **audit},
        "freeze": {"account": account, "asset_id": None, **audit},
        "unfreeze": {"account": account, "asset_id": "BOND", **audit},
        "create_asset": {"asset_id": "NEW", "name": "New", "decimals": 2, "cap": 100},
        "mint": {"asset_id": "BOND", "to_account": account, "amount": 5},
        "burn": {"asset_id": "BOND", "amount": 5},
        "pause": {"asset_id": "BOND"},
        "unpause": {"asset_id": "BOND"},
        "transfer": TRANSFER,
    }
    async with client_for(server) as client:
        for nonce, (kind, args) in enumerate(cases.items()):
            stx = await client.build(kind, args, key=ISSUER, cosigners=[ALICE], nonce=nonce)
            decoded = decode_signed_transaction(stx.encode())
            assert decoded.body.kind == kind and len(decoded.signatures) == 2
        with pytest.raises(TxBuildError):
            await client.build("teleport", {}, key=ALICE)


async def test_build_checks_the_chains_limits_not_the_librarys_defaults() -> None:
    """A chain with a longer memo (genesis [consensus] memo_bytes_max) gets it from the
    client too; a chain with a shorter one is refused locally, naming the limit."""
    memo = "m" * 600  # over the default 256
    wide = make_backend()
    wide.tx_limits = TxLimits(tx_bytes_max=8192, memo_bytes_max=1024)
    async with client_for(ClientApiServer(wide)) as client:
        assert await client.tx_limits() == wide.tx_limits
        stx = await client.build("transfer", TRANSFER, key=ALICE, memo=memo)
        assert stx.body.memo == memo
        outcome = await client.send("transfer", TRANSFER, key=ALICE, memo=memo, wait=True)
        assert outcome.status == "committed", outcome
    narrow = make_backend()
    narrow.tx_limits = TxLimits(memo_bytes_max=16)
    async with client_for(ClientApiServer(narrow)) as client:
        with pytest.raises(TxBuildError, match="memo_bytes_max=16"):
            await client.build("transfer", TRANSFER, key=ALICE, memo="seventeen bytes!!")
        assert narrow.calls.count("status") == 1  # learnt once, with the chain id


async def test_pipelined_requests_share_one_connection() -> None:
    backend = make_backend()
    gate = backend.gates["balance"] = trio.Event()
    server = ClientApiServer(backend)
    results: dict[int, int] = {}
    async with client_for(server) as client:

        async def ask(i: int) -> None:
            results[i] = await client.balance("BOND", pub(ALICE))

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(ask, i)
            await trio.testing.wait_all_tasks_blocked()
            assert (await client.status()).height == 0  # answered while 20 are pending
            gate.set()
    assert results == dict.fromkeys(range(20), 10_000)


async def test_client_timeout(autojump_clock: object) -> None:
    backend = make_backend()
    backend.gates["status"] = trio.Event()  # never released
    server = ClientApiServer(backend)
    async with client_for(server, request_timeout_s=2.0) as client:
        start = trio.current_time()
        with pytest.raises(RequestTimeoutError, match=r"within 2\.0 s"):
            await client.status()
        assert trio.current_time() - start == pytest.approx(2.0)
        # The late answer (if any) is dropped; the connection still works.
        assert await client.balance("BOND", pub(ALICE)) == 10_000


async def test_submit_wait_timeout_is_pending(autojump_clock: object) -> None:
    backend = make_backend()
    backend.autocommit = False
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        outcome = await client.send("transfer", TRANSFER, key=ALICE, wait=True, timeout_ms=500)
        assert (outcome.status, outcome.height, outcome.reason) == ("pending", None, None)
        assert len(backend.mempool) == 1


async def test_connection_refusal_is_an_api_error() -> None:
    backend = make_backend()
    server = ClientApiServer(backend, limits=ApiLimits(connections_per_address_max=1))
    async with client_for(server) as first:
        assert (await first.status()).height == 0
        async with client_for(server) as second:
            with pytest.raises(ApiError) as info:
                await second.status()
            assert info.value.code == "too_many_connections"


async def test_lost_connection_fails_pending_and_later_requests() -> None:
    backend = make_backend()
    backend.gates["status"] = trio.Event()
    server = ClientApiServer(backend)
    async with trio.open_nursery() as nursery:
        stream = connect_stream(nursery, server)
        async with connection_over(stream) as connection:
            client = AsyncClient(connection)

            async def close_soon() -> None:
                await trio.testing.wait_all_tasks_blocked()
                await stream.aclose()

            nursery.start_soon(close_soon)
            with pytest.raises(ConnectionLostError):
                await client.status()
            with pytest.raises(ConnectionLostError):
                await client.status()


async def test_a_server_sending_garbage_is_a_protocol_error() -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    async with connection_over(client_side) as connection:
        client = AsyncClient(connection)
        async with trio.open_nursery() as nursery:

            async def garbage() -> None:
                await server_side.receive_some(1 << 16)
                await server_side.send_all(b"\x00\x00\x00\x01\xc1")

            nursery.start_soon(garbage)
            with pytest.raises(ConnectionLostError, match="malformed"):
                await client.status()
        assert isinstance(connection._closed, ProtocolError)


async def test_subscriptions_stream_and_cancel_on_exit() -> None:
    backend = make_backend()
    backend.autocommit = False
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        backend.commit_block()
        backend.commit_block()
        heights = []
        async with client.subscribe_blocks(1) as blocks:
            async for block in blocks:
                heights.append(block.height)
                verify_finality(block.proof(), VALIDATORS, CHAIN_ID)
                if block.height == 3:
                    break
                if block.height == 2:
                    backend.commit_block()
        assert heights == [1, 2, 3]
        await trio.testing.wait_all_tasks_blocked()
        assert server.subscriptions == 0
        assert (await client.status()).height == 3


async def test_receipt_subscription() -> None:
    backend = make_backend()
    backend.autocommit = False
    server = ClientApiServer(backend)
    async with client_for(server) as client:
        tx_id = await client.submit(await client.build("transfer", TRANSFER, key=ALICE))
        backend.commit_block()
        async with client.subscribe_receipts(1) as receipts:
            async for receipt in receipts:
                assert receipt.tx_id == tx_id and receipt.status == "applied"
                break


# --- finality proofs -------------------------------------------------------------------


def _proof() -> FinalityProof:
    backend = make_backend()
    return backend.commit_block().proof()


def test_verify_finality_accepts_a_good_proof() -> None:
    record = verify_finality(_proof(), VALIDATORS, CHAIN_ID)
    assert len(record.certificate.commits) == 3


def _with(proof: FinalityProof, **changes: object) -> FinalityProof:
    fields = {
        "height": proof.height,
        "block_hash": proof.block_hash,
        "certificate": proof.certificate,
    }
    fields.update(changes)
    return FinalityProof(**fields)  # type: ignore[arg-type]


def test_verify_finality_refuses_what_does_not_hold() -> None:
    proof = _proof()
    record = FinalityRecord.decode(proof.certificate, bytes_max=1 << 20)
    cert = record.certificate
    forged = CommitCertificate(
        view=cert.view,
        seq=cert.seq,
        digest=cert.digest,
        commits=((cert.commits[0][0], bytes(64)), *cert.commits[1:]),
    )
    too_few = CommitCertificate(
        view=cert.view, seq=cert.seq, digest=cert.digest, commits=cert.commits[:2]
    )

    def carrying(certificate: CommitCertificate, payload: bytes = record.payload) -> bytes:
        return FinalityRecord(payload=payload, certificate=certificate).encode()

    cases = [
        (_with(proof, height=2), "sequence 1"),
        (_with(proof, certificate=carrying(cert, record.payload + b"x")), "different payload"),
        (_with(proof, certificate=b"\x00"), "not \\[payload, certificate\\]"),
        (_with(proof, certificate=carrying(forged)), "bad COMMIT signature"),
        (_with(proof, certificate=carrying(too_few)), "quorum"),
    ]
    for bad, message in cases:
        with pytest.raises(FinalityError, match=message):
            verify_finality(bad, VALIDATORS, CHAIN_ID)
    with pytest.raises(FinalityError, match="bad COMMIT signature"):
        verify_finality(proof, VALIDATORS, "other-chain")
    strangers = [(f"v{i}", bytes([9]) * 32) for i in range(4)]
    with pytest.raises(FinalityError):
        verify_finality(proof, strangers, CHAIN_ID)
    with pytest.raises(FinalityError, match="no validators"):
        verify_finality(proof, [], CHAIN_ID)


class _SlowReader(trio.abc.Stream):
    """Server side that takes 3 bytes per 0.1 s, so writing a frame takes ~2 s."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.sleep(0.1)
        return await self.inner.receive_some(3)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_timeout_never_cuts_a_frame_in_half(autojump_clock: object) -> None:
    """The caller's deadline passes while its frame is being written: the frame still goes
    out whole (then the caller gets its timeout), so the connection stays usable."""
    backend = make_backend()
    server = ClientApiServer(backend)
    async with trio.open_nursery() as nursery:
        client_side, server_side = trio.testing.lockstep_stream_pair()
        nursery.start_soon(server.handle_stream, _SlowReader(server_side), "10.0.0.1")
        async with connection_over(client_side) as connection:
            client = AsyncClient(connection, request_timeout_s=0.5)
            with pytest.raises(RequestTimeoutError):
                await client.balance("BOND", pub(ALICE))
            client.request_timeout_s = 100
            assert await client.balance("BOND", pub(ALICE)) == 10_000
        assert server.errors_sent == {}
        await client_side.aclose()


async def test_a_node_that_stops_reading_fails_the_connection(autojump_clock: object) -> None:
    client_side, _server_side = trio.testing.lockstep_stream_pair()  # nobody reads
    async with connection_over(client_side) as connection:
        client = AsyncClient(connection, request_timeout_s=100)
        with pytest.raises(ConnectionLostError, match="did not accept a frame"):
            await client.status()
        with pytest.raises(ConnectionLostError):
            await client.status()
