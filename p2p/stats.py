"""Counters for the node's metrics (plain ints; the node exports them)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(slots=True, kw_only=True)
class PeerStats:
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    # Connections installed for this peer; reconnects = installs after the first.
    connects: int = 0
    reconnects: int = 0
    disconnects: int = 0
    dial_failures: int = 0
    handshake_failures: int = 0
    # Inbound connections from this (known) peer that we refused: wrong chain, duplicate
    # connection lost the tie-break, bad signature.
    refusals: int = 0
    # Closed for a protocol violation after the handshake (oversize, malformed, auth-failed).
    protocol_errors: int = 0
    keepalive_timeouts: int = 0
    drops_queue_full: int = 0
    # Messages taken from the queue but lost with a connection that closed under them.
    drops_in_flight: int = 0

    def snapshot(self) -> PeerStats:
        return replace(self)


@dataclass(slots=True, kw_only=True)
class NetworkStats:
    """Counters not attributable to an approved peer (no per-peer state exists for them)."""

    inbound_accepted: int = 0
    refused_unknown_key: int = 0
    refused_handshakes_full: int = 0
    handshake_failures_inbound: int = 0
    drops_unknown_peer: int = 0

    def snapshot(self) -> NetworkStats:
        return replace(self)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
