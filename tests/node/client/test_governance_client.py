"""AsyncClient and Client governance calls against the real server (fake backend)."""

from __future__ import annotations

import dataclasses

import nacl.signing
import pytest

from node.api.governance_results import EvidenceEntry
from node.api.server import ClientApiServer
from node.client import ApiError, Client, ProtocolError
from tests.node.api.fake_backend import VALIDATORS, FakeBackend
from tests.node.client.cli_helpers import REGULATOR, REGULATOR_2
from tests.node.client.server_thread import serving
from tests.node.client.test_async_client import client_for

NEW_KEY = nacl.signing.SigningKey(b"\x66" * 32).verify_key.encode()


async def test_governance_calls_follow_the_ledger() -> None:
    backend = FakeBackend(autocommit=True)
    async with client_for(ClientApiServer(backend)) as client:
        before = await client.validators()
        assert (before.epoch, before.pending_validators, before.height) == (0, None, 0)
        outcome = await client.send(
            "add_validator",
            {"name": "v4", "public_key": NEW_KEY, "address": "127.0.0.1:9004"},
            key=REGULATOR,
            cosigners=[REGULATOR_2],
            wait=True,
        )
        assert outcome.status == "committed"
        after = await client.validators()
        assert after.pending_last_seq == 48 and after.pending_validators is not None
        assert [v.name for v in after.pending_validators] == ["v0", "v1", "v2", "v3", "v4"]
        assert (await client.validators(height=1)).last_seq == 48
        with pytest.raises(ApiError, match="not_found"):
            await client.validators(height=3)

        page = await client.governance()
        (record,) = page.records
        assert (record.kind, record.tx_id, record.effective_from_seq) == (
            "add_validator",
            outcome.tx_id,
            49,
        )
        assert record.args["public_key"] == NEW_KEY
        assert len(record.signatures) == 2
        assert (await client.governance(before_height=1)).records == ()

        assert (await client.evidence()).records == ()
        entry = EvidenceEntry(
            height=1,
            tx_id=bytes(32),
            validator="v3",
            public_key=VALIDATORS[3][1],
            epoch=0,
            message_kind="checkpoint",
            view=0,
            seq=16,
            first=b"a",
            second=b"b",
            reporter=VALIDATORS[0][1],
        )
        backend.add_evidence(entry)
        assert (await client.evidence(limit=1)).records == (entry,)
        with pytest.raises(ApiError, match="bad_request"):
            await client.evidence(limit=0)
        # Pages by height, newest first, never splitting a block (two records at height 2).
        for height, seq in ((2, 17), (2, 18), (3, 19)):
            backend.add_evidence(dataclasses.replace(entry, height=height, seq=seq))
        pages: list[list[int]] = []
        before_height: int | None = None
        while True:
            evidence = await client.evidence(limit=1, before_height=before_height)
            pages.append([r.seq for r in evidence.records])
            before_height = evidence.next_before_height
            if before_height is None:
                break
        assert pages == [[19], [18, 17], [16]]


async def test_a_malformed_governance_result_is_a_protocol_error() -> None:
    backend = FakeBackend()
    backend.add_evidence(
        EvidenceEntry(
            height=1,
            tx_id=bytes(32),
            validator="v3",
            public_key=b"short",  # a node sending this is broken; the client says so
            epoch=0,
            message_kind="prepare",
            view=0,
            seq=1,
            first=b"a",
            second=b"b",
            reporter=VALIDATORS[0][1],
        )
    )
    async with client_for(ClientApiServer(backend)) as client:
        with pytest.raises(ProtocolError, match="public_key"):
            await client.evidence()


def test_sync_client_governance_calls() -> None:
    backend = FakeBackend()
    with serving(ClientApiServer(backend)) as (host, port):
        client = Client(host, port)
        info = client.validators()
        assert [v.name for v in info.validators] == [name for name, _ in VALIDATORS]
        assert info.regulator_keys == (REGULATOR.verify_key.encode(),)
        assert client.governance(limit=5).next_before_height is None
        assert client.evidence().records == ()
        assert client.evidence(limit=3, before_height=5).next_before_height is None
        with pytest.raises(ApiError, match="not_found"):
            client.validators(height=2)
