"""Fixtures of the CLI tests: a fake-backend node on a loopback port and key files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.keyfile import write_key_file
from node.api.server import ClientApiServer
from tests.node.api.fake_backend import FakeBackend
from tests.node.api.helpers import ALICE, ISSUER, pub
from tests.node.client.cli_helpers import REGULATOR, REGULATOR_2
from tests.node.client.server_thread import serving


@pytest.fixture
def backend() -> FakeBackend:
    backend = FakeBackend(autocommit=True)
    backend.add_asset("BOND", 2, pub(ISSUER))
    backend.fund("BOND", pub(ALICE), 10_000)
    return backend


@pytest.fixture
def node(backend: FakeBackend) -> Iterator[str]:
    with serving(ClientApiServer(backend)) as (host, port):
        yield f"{host}:{port}"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, key in [
        ("alice", ALICE),
        ("issuer", ISSUER),
        ("regulator", REGULATOR),
        ("regulator2", REGULATOR_2),
    ]:
        paths[name] = tmp_path / f"{name}.key"
        write_key_file(paths[name], key)
    return paths
