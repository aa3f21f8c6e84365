"""Find a block of consecutive free loopback ports for a throwaway cluster (demo, tests).

Blocks are picked below the kernel's ephemeral range: ports the OS hands to outgoing
connections (every peer dial, every client) would otherwise collide with a block that was
free a moment ago, while its nodes are still starting.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
EPHEMERAL_LOW_DEFAULT = 32_768
PORT_LOW = 10_000
ATTEMPTS_MAX = 200


class NoFreePortsError(Exception):
    """No block of consecutive free ports was found."""


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_LOW_DEFAULT


def block_is_free(host: str, base: int, count: int) -> bool:
    """Whether `count` ports from `base` can all be bound on `host` right now."""
    socks: list[socket.socket] = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            socks.append(s)
            s.bind((host, port))
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()
    return True


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """A base port with `count` consecutive ports free right now.

    Best effort: another program may still take one before the nodes bind; the node then
    exits with a clear `address already in use` error in its log."""
    top = _ephemeral_low() - count
    if top <= PORT_LOW:
        top = 65_000 - count  # an unusual ephemeral range: search above it instead
    rng = random.SystemRandom()  # not logic: just spread concurrent clusters apart
    for _ in range(ATTEMPTS_MAX):
        base = rng.randrange(PORT_LOW, top)
        if block_is_free(host, base, count):
            return base
    raise NoFreePortsError(
        f"no {count} consecutive free ports on {host} after {ATTEMPTS_MAX} tries"
    )
