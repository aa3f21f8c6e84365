"""Replica configuration: the validator set, limits and timeouts, validated on creation.

Time is counted in ticks (the host decides how long a tick is); sizes are in bytes; counts
are in items. Every queue, window and buffer of the replica is bounded by one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.signing import PUBLIC_KEY_BYTES


class ConfigError(ValueError):
    """A replica configuration is inconsistent. The message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaLimits:
    """Bounds on everything the replica keeps or accepts (units last)."""

    checkpoint_interval_seqs: int = 16
    log_window_seqs: int = 32  # high watermark = stable checkpoint + this
    batch_bytes_max: int = 64 << 10
    message_bytes_max: int = 4 << 20  # one consensus message on the wire
    future_view_messages_per_peer_max: int = 64
    fetch_blocks_max: int = 64  # blocks asked for in one state-transfer request
    verify_cache_entries_max: int = 4096

    def __post_init__(self) -> None:
        for name in (
            "checkpoint_interval_seqs",
            "log_window_seqs",
            "batch_bytes_max",
            "message_bytes_max",
            "future_view_messages_per_peer_max",
            "fetch_blocks_max",
            "verify_cache_entries_max",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.log_window_seqs < 2 * self.checkpoint_interval_seqs:
            # A window of two checkpoint intervals lets the primary keep proposing while the
            # previous checkpoint is still collecting its 2f+1 signatures.
            raise ConfigError(
                "log_window_seqs must be at least 2 * checkpoint_interval_seqs "
                f"({self.log_window_seqs} < {2 * self.checkpoint_interval_seqs})"
            )
        # A VIEW-CHANGE or NEW-VIEW carries at most one payload per sequence in the window.
        needed = self.log_window_seqs * (self.batch_bytes_max + 1024) + (64 << 10)
        if self.message_bytes_max < needed:
            raise ConfigError(
                f"message_bytes_max {self.message_bytes_max} cannot carry a full log window "
                f"({self.log_window_seqs} x batch_bytes_max {self.batch_bytes_max}); "
                f"needs at least {needed}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaTimeouts:
    """Timers, in ticks."""

    view_change_timeout_ticks: int = 40  # no progress on pending work -> VIEW-CHANGE
    # A transaction ready at this node waited this long while others were ordered -> VIEW-CHANGE
    request_timeout_ticks: int = 200
    view_change_backoff_max: int = 6  # timeout doubles per failed view, at most 2**this
    retransmit_interval_ticks: int = 10  # resend own votes for the open window
    fetch_retry_ticks: int = 20  # wait before asking peers for missing blocks again
    new_view_resend_ticks: int = 10  # at most one NEW-VIEW reply per peer per interval

    def __post_init__(self) -> None:
        for name in (
            "view_change_timeout_ticks",
            "request_timeout_ticks",
            "retransmit_interval_ticks",
            "fetch_retry_ticks",
            "new_view_resend_ticks",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.request_timeout_ticks < self.view_change_timeout_ticks:
            # Shorter, it would blame a primary for a wait the R8 timer is still timing.
            raise ConfigError(
                f"request_timeout_ticks ({self.request_timeout_ticks}) must not be below"
                f" view_change_timeout_ticks ({self.view_change_timeout_ticks})"
            )
        if not 0 <= self.view_change_backoff_max <= 20:
            raise ConfigError("view_change_backoff_max must be within 0..20")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaConfig:
    """Who we are, who the validators are (ordered: primary = view mod n), and the limits.

    One config per epoch (consensus.epochs). A replica whose name is not in `validators`
    follows the chain as an observer (state transfer only, never votes): a validator whose
    epoch has not begun yet, or one that was removed. Only `observer_ok` configs allow that.
    """

    chain_id: str
    validators: tuple[tuple[str, bytes], ...]
    name: str
    limits: ReplicaLimits = field(default_factory=ReplicaLimits)
    timeouts: ReplicaTimeouts = field(default_factory=ReplicaTimeouts)
    epoch: int = 0
    observer_ok: bool = False
    observe_only: bool = False  # in the set, but without its key here: follow, never vote

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise ConfigError("chain_id must not be empty")
        if len(self.validators) < 1:
            raise ConfigError("validators must not be empty")
        names = [name for name, _ in self.validators]
        if len(set(names)) != len(names):
            raise ConfigError("validator names must be unique")
        keys = [key for _, key in self.validators]
        if len(set(keys)) != len(keys):
            raise ConfigError("validator public keys must be unique")
        for name, key in self.validators:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"validator name {name!r} must be a non-empty string")
            if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_BYTES:
                raise ConfigError(f"validator {name} public key must be {PUBLIC_KEY_BYTES} bytes")
        if (self.name not in names or self.observe_only) and not self.observer_ok:
            raise ConfigError(f"own name {self.name!r} is not a validator")
        if not isinstance(self.epoch, int) or self.epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {self.epoch!r}")

    @property
    def member(self) -> bool:
        """True if this replica votes in its epoch."""
        return not self.observe_only and any(name == self.name for name, _ in self.validators)

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def quorum(self) -> int:
        """2f + 1 when n = 3f + 1; in general the smallest size whose pairs share f + 1."""
        return (self.n + self.f) // 2 + 1
