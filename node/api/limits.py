"""Every bound the client API enforces, named with units last and validated on creation.

The node runtime builds this with `from_node_config(limits, timeouts, chain)`; tests build it
directly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from config.genesis import ConsensusParams
from config.node_config import Limits, Timeouts
from node.api.framing import FRAME_BYTES_MAX_DEFAULT, validate_frame_bytes_max


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiLimits:
    frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT
    # Per connection: requests being served at once (a subscription is not counted here).
    requests_in_flight_max: int = 256
    # Per remote IP address: open connections.
    connections_per_address_max: int = 64
    # Node-wide: open connections (many addresses must not exhaust file descriptors).
    connections_max: int = 1024
    # Node-wide: submit_wait requests waiting for a commit.
    pending_waits_max: int = 20_000
    # Per connection: open subscriptions (they also count as requests in flight).
    subscriptions_per_connection_max: int = 64
    # Node-wide: open subscriptions.
    subscriptions_max: int = 1024
    # Per connection: frames queued for the writer; a client that stops reading blocks its own
    # request tasks (backpressure), never the node.
    send_queue_frames_max: int = 256
    # A frame whose first byte arrived must be complete within this (slow-sender defence).
    frame_timeout_ms: int = 30_000
    # Upper bound of submit_wait's timeout_ms.
    wait_ms_max: int = 60_000
    # Largest encoded transaction accepted in submit/submit_wait/check.
    tx_bytes_max: int = 16 << 10

    def __post_init__(self) -> None:
        validate_frame_bytes_max(self.frame_bytes_max)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ApiLimits.{f.name} must be a positive integer, got {value!r}")
        if self.tx_bytes_max > self.frame_bytes_max:
            raise ValueError(
                f"ApiLimits.tx_bytes_max ({self.tx_bytes_max}) cannot exceed frame_bytes_max ({self.frame_bytes_max})"
            )


def from_node_config(
    limits: Limits, timeouts: Timeouts, chain: ConsensusParams, **overrides: int
) -> ApiLimits:
    """The client API's share of the node configuration and of the chain's parameters
    (genesis [consensus]: the largest transaction); `overrides` for the rest."""
    values = {
        "frame_bytes_max": limits.frame_bytes_max,
        "requests_in_flight_max": limits.client_requests_in_flight_max,
        "connections_per_address_max": limits.client_connections_per_address_max,
        "connections_max": limits.client_connections_max,
        "pending_waits_max": limits.pending_waits_max,
        "subscriptions_per_connection_max": limits.subscriptions_max,
        "wait_ms_max": timeouts.client_wait_max_ms,
        "tx_bytes_max": chain.tx_bytes_max,
    }
    values.update(overrides)
    return ApiLimits(**values)
