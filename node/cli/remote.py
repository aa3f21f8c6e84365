"""Shared plumbing of the commands that talk to a node: --node, --key, --json, errors.

Every failure a user can cause or fix (unreachable node, bad key file, bad hex, a refusal
from the node) becomes one `UserError` line; a traceback means our bug.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import nacl.signing
import trio

from config.errors import ConfigError
from config.keyfile import KeyFileError, load_key_file
from config.node_config import parse_host_port
from node.cli.errors import UserError
from node.client import (
    ApiError,
    AsyncClient,
    ConnectionLostError,
    FinalityError,
    ProtocolError,
    RequestTimeoutError,
)
from node.tx import TxError

T = TypeVar("T")
NODE_ENV = "ASSETLEDGER_NODE"
NODE_DEFAULT = "127.0.0.1:7001"
KEY_BYTES = 32
HASH_BYTES = 32


def node_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--node",
        "node",
        default=NODE_DEFAULT,
        envvar=NODE_ENV,
        show_default=True,
        metavar="HOST:PORT",
        help=f"Client port of a node (or set {NODE_ENV}).",
    )(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def parse_node(text: str) -> tuple[str, int]:
    try:
        # parse_host_port lives in config/_fields.py; node_config re-exports it.
        return parse_host_port("--node", text)
    except ConfigError as exc:
        raise UserError(f"{exc}; write it as HOST:PORT, e.g. 127.0.0.1:7001") from None


def load_keys(paths: tuple[Path, ...]) -> list[nacl.signing.SigningKey]:
    if not paths:
        raise UserError(
            "no --key given; pass the signer's key file (create one with assetledger keygen)"
        )
    keys = []
    for path in paths:
        try:
            keys.append(load_key_file(path))
        except KeyFileError as exc:
            raise UserError(str(exc)) from None
    return keys


def parse_hex(text: str, option: str, size: int, what: str) -> bytes:
    cleaned = text.strip().removeprefix("0x")
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise UserError(
            f"{option}: {text!r} is not hex; expected {2 * size} hex characters ({what})"
        ) from None
    if len(value) != size:
        raise UserError(
            f"{option}: expected {2 * size} hex characters ({what}), got {len(cleaned)}"
        )
    return value


def parse_public_key(text: str, option: str) -> bytes:
    return parse_hex(text, option, KEY_BYTES, "a public key, as printed by assetledger keygen")


def run_with_client(node: str, call: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Connect to `node`, run `call`, and turn every client failure into one UserError line."""
    host, port = parse_node(node)

    async def main() -> T:
        async with AsyncClient.connect(host, port) as client:
            return await call(client)

    try:
        return trio.run(main)
    except ConnectionLostError as exc:
        raise UserError(f"{exc} (--node {node})") from None
    except RequestTimeoutError as exc:
        raise UserError(f"{exc} (node {node}); the node may be overloaded, retry later") from None
    except ProtocolError as exc:
        raise UserError(f"{exc}; is {node} an assetledger client port?") from None
    except ApiError as exc:
        raise UserError(f"node refused: {exc}") from None
    except FinalityError as exc:
        raise UserError(f"finality proof does not verify: {exc}") from None
    except TxError as exc:
        raise UserError(f"invalid transaction: {exc}") from None
