"""Specific error types of the p2p layer.

Every failure caused by a remote peer (or by bytes on the wire) is one of these, with a short
machine-readable `reason` for logs and counters. Only the connection concerned is closed.
"""

from __future__ import annotations


class P2PError(Exception):
    """Base of every p2p error. `reason` is a stable short code (e.g. "bad-signature")."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class HandshakeError(P2PError):
    """The handshake failed: malformed message, wrong chain, unknown key, bad signature, EOF."""


class FrameError(P2PError):
    """A frame after the handshake is oversized, malformed, or fails authentication."""


class MessageTooLargeError(ValueError):
    """A local caller tried to send a message that can never fit in one frame (our bug)."""
