"""Plain, validated inputs of the p2p layer: who the peers are, and the limits and timeouts."""

from __future__ import annotations

from dataclasses import dataclass

from p2p.errors import MessageTooLargeError

PUBLIC_KEY_BYTES = 32
AEAD_TAG_BYTES = 16
# Frame plaintext = 1 type byte + records of (u32 length, message); see docs/p2p.md.
FRAME_TYPE_BYTES = 1
RECORD_HEADER_BYTES = 4
CHAIN_ID_BYTES_MAX = 255
NAME_CHARS_MAX = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerInfo:
    """One approved validator: its name, Ed25519 public key, and where it listens."""

    name: str
    public_key: bytes
    address: tuple[str, int]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= NAME_CHARS_MAX:
            raise ValueError(f"peer name must be 1..{NAME_CHARS_MAX} characters: {self.name!r}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError(f"peer {self.name}: public_key must be {PUBLIC_KEY_BYTES} bytes")
        host, port = self.address
        if not isinstance(host, str) or not host:
            raise ValueError(f"peer {self.name}: address host must be a non-empty string")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"peer {self.name}: address port must be 1..65535, got {port!r}")


def _positive(owner: object, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(owner).__name__}.{name} must be a positive int: {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportLimits:
    """Every queue and buffer of the transport is bounded by one of these."""

    # Largest value of a frame's length field: ciphertext incl. the 16-byte tag.
    frame_bytes_max: int = 4 << 20
    # Per-peer send queue; when either bound would be exceeded, send() drops the NEW message.
    send_queue_messages_max: int = 10_000
    send_queue_bytes_max: int = 64 << 20
    # The sender packs queued messages into one frame until it holds this many plaintext bytes.
    coalesce_bytes_max: int = 256 << 10
    # Bound of the shared `incoming` channel (messages); a full channel stalls the readers.
    incoming_messages_max: int = 10_000
    # Bytes asked of the socket per read.
    read_bytes_max: int = 256 << 10
    # Unauthenticated inbound connections being handshaken at once; more are closed at once.
    handshakes_inflight_max: int = 64

    def __post_init__(self) -> None:
        _positive(
            self,
            frame_bytes_max=self.frame_bytes_max,
            send_queue_messages_max=self.send_queue_messages_max,
            send_queue_bytes_max=self.send_queue_bytes_max,
            coalesce_bytes_max=self.coalesce_bytes_max,
            incoming_messages_max=self.incoming_messages_max,
            read_bytes_max=self.read_bytes_max,
            handshakes_inflight_max=self.handshakes_inflight_max,
        )
        if self.frame_bytes_max >= 1 << 32:
            raise ValueError("TransportLimits.frame_bytes_max must fit the u32 length field")
        if self.message_bytes_max < 1:
            raise ValueError("TransportLimits.frame_bytes_max too small to carry a message")
        if self.coalesce_bytes_max > self.frame_plaintext_bytes_max:
            raise ValueError(
                "TransportLimits.coalesce_bytes_max must be <= frame_bytes_max - 16 "
                "(one coalesced frame must fit the frame limit)"
            )

    @property
    def frame_plaintext_bytes_max(self) -> int:
        return self.frame_bytes_max - AEAD_TAG_BYTES

    @property
    def message_bytes_max(self) -> int:
        """Largest message send() accepts: it must fit alone in one frame."""
        return self.frame_plaintext_bytes_max - FRAME_TYPE_BYTES - RECORD_HEADER_BYTES

    def check_message(self, message: bytes) -> None:
        if len(message) > self.message_bytes_max:
            raise MessageTooLargeError(
                f"message of {len(message)} bytes exceeds message_bytes_max "
                f"{self.message_bytes_max} (frame_bytes_max {self.frame_bytes_max})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportTimeouts:
    """All durations in milliseconds, measured on trio's clock (mockable in tests)."""

    handshake_timeout_ms: int = 5_000
    # An idle sender emits a KEEPALIVE frame this often.
    keepalive_interval_ms: int = 2_000
    # A connection that received nothing for this long is closed as dead.
    peer_dead_after_ms: int = 10_000
    reconnect_backoff_min_ms: int = 100
    reconnect_backoff_max_ms: int = 10_000
    # A connection that lived at least this long resets the dial backoff to its minimum.
    connection_stable_after_ms: int = 5_000

    def __post_init__(self) -> None:
        _positive(
            self,
            handshake_timeout_ms=self.handshake_timeout_ms,
            keepalive_interval_ms=self.keepalive_interval_ms,
            peer_dead_after_ms=self.peer_dead_after_ms,
            reconnect_backoff_min_ms=self.reconnect_backoff_min_ms,
            reconnect_backoff_max_ms=self.reconnect_backoff_max_ms,
            connection_stable_after_ms=self.connection_stable_after_ms,
        )
        if self.peer_dead_after_ms <= self.keepalive_interval_ms:
            raise ValueError(
                "TransportTimeouts.peer_dead_after_ms must exceed keepalive_interval_ms, "
                "or idle but healthy peers would be declared dead"
            )
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_min_ms:
            raise ValueError(
                "TransportTimeouts.reconnect_backoff_max_ms must be >= reconnect_backoff_min_ms"
            )


def check_chain_id(chain_id: str) -> bytes:
    if not isinstance(chain_id, str):
        raise ValueError("chain_id must be a str")
    raw = chain_id.encode("utf-8")
    if not 0 < len(raw) <= CHAIN_ID_BYTES_MAX:
        raise ValueError(f"chain_id must be 1..{CHAIN_ID_BYTES_MAX} UTF-8 bytes")
    return raw
