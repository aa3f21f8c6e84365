"""Authenticated, encrypted, bounded trio transport between approved validators.

Imports none of our other layers: keys, chain id and peer addresses arrive as plain values,
messages are opaque bytes. Wire format: docs/p2p.md.
"""

from p2p.config import PeerInfo, TransportLimits, TransportTimeouts
from p2p.errors import FrameError, HandshakeError, MessageTooLargeError, P2PError
from p2p.network import PeerNetwork
from p2p.stats import NetworkStats, PeerStats
from p2p.transport import TcpTransport, Transport

__all__ = [
    "FrameError",
    "HandshakeError",
    "MessageTooLargeError",
    "NetworkStats",
    "P2PError",
    "PeerInfo",
    "PeerNetwork",
    "PeerStats",
    "TcpTransport",
    "Transport",
    "TransportLimits",
    "TransportTimeouts",
]
