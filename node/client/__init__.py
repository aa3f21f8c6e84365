"""Python client of the assetledger wire API: `AsyncClient` (trio) and `Client` (blocking)."""

from node.client.async_client import AsyncClient, SendOutcome
from node.client.connection import ClientConnection, Subscription, open_connection
from node.client.errors import (
    ApiError,
    ClientError,
    ConnectionLostError,
    FinalityError,
    ProtocolError,
    RequestTimeoutError,
)
from node.client.finality import verify_finality
from node.client.inclusion import block_tx_ids, verify_inclusion
from node.client.sync_client import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientConnection",
    "ClientError",
    "ConnectionLostError",
    "FinalityError",
    "ProtocolError",
    "RequestTimeoutError",
    "SendOutcome",
    "Subscription",
    "block_tx_ids",
    "open_connection",
    "verify_finality",
    "verify_inclusion",
]
