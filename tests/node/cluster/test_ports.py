"""Port blocks for throwaway clusters are free and stay clear of the ephemeral range."""

from __future__ import annotations

import socket

from node.cluster.ports import _ephemeral_low, free_port_block


def test_the_block_is_free_and_below_the_ephemeral_range() -> None:
    base = free_port_block(12)
    assert base + 12 <= _ephemeral_low()
    for port in range(base, base + 12):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
