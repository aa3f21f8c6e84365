"""Size limits for transactions (units last). Validated on creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from config.genesis import REGULATOR_KEYS_MAX
from consensus.encoding import DecodeLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class TxLimits:
    tx_bytes_max: int = 4096  # whole signed transaction as received
    memo_bytes_max: int = 256  # memo, counted in UTF-8 bytes when it is text
    signatures_max: int = 16  # signer + co-signers (regulators)
    # Derived once: decoding runs per transaction and must not rebuild it each time.
    _decode: DecodeLimits = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 256 <= self.tx_bytes_max <= 1 << 20:
            raise ValueError(f"tx_bytes_max must be 256..1048576, got {self.tx_bytes_max}")
        if not 0 <= self.memo_bytes_max <= self.tx_bytes_max // 2:
            raise ValueError(
                f"memo_bytes_max must be 0..tx_bytes_max/2 ({self.tx_bytes_max // 2}),"
                f" got {self.memo_bytes_max}"
            )
        if not 1 <= self.signatures_max <= 64:
            raise ValueError(f"signatures_max must be 1..64, got {self.signatures_max}")
        object.__setattr__(
            self,
            "_decode",
            DecodeLimits(
                buffer_bytes_max=self.tx_bytes_max,
                bin_bytes_max=self.tx_bytes_max,
                str_bytes_max=self.tx_bytes_max,
                # +1: say "too many", not "malformed"; set_regulator_keys lists up to 64 keys.
                array_items_max=max(8, self.signatures_max + 1, REGULATOR_KEYS_MAX + 1),
                map_items_max=0,  # no maps anywhere in a transaction
            ),
        )

    def decode_limits(self) -> DecodeLimits:
        """msgpack limits tight enough that nothing inside a tx can exceed the tx itself."""
        return self._decode


DEFAULT_TX_LIMITS = TxLimits()
