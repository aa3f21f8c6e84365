"""The blocking `Client` over real loopback TCP."""

from __future__ import annotations

import pytest

from node.api.server import ClientApiServer
from node.client import ApiError, Client, ConnectionLostError
from tests.node.api.fake_backend import CHAIN_ID, FakeBackend
from tests.node.api.helpers import ALICE, BOB, ISSUER, pub
from tests.node.client.server_thread import serving


def test_sync_client_end_to_end() -> None:
    backend = FakeBackend(autocommit=True)
    backend.add_asset("BOND", 2, pub(ISSUER))
    backend.fund("BOND", pub(ALICE), 1_000)
    with serving(ClientApiServer(backend)) as (host, port):
        client = Client(host, port)
        assert client.status().chain_id == CHAIN_ID
        args = {"asset_id": "BOND", "to_account": pub(BOB), "amount": 300}
        first = client.send("transfer", args, key=ALICE, wait=True)
        second = client.send("transfer", args, key=ALICE, wait=True)
        assert (first.status, second.status) == ("committed", "committed")
        assert (first.height, second.height) == (1, 2)
        assert client.balance("BOND", pub(BOB)) == 600
        assert client.receipt(first.tx_id).status == "applied"
        with pytest.raises(ApiError, match="not_found"):
            client.block(9)


def test_unreachable_node_is_a_clear_error() -> None:
    backend = FakeBackend()
    with serving(ClientApiServer(backend)) as (host, port):
        pass  # the port is free again once the server stopped
    with pytest.raises(ConnectionLostError, match=f"cannot connect to {host}:{port}"):
        Client(host, port, connect_timeout_s=5).status()
