"""Canonical msgpack: one object, one byte string, one hash.

Rules (every signed or hashed structure follows them):

1. Structures are msgpack arrays with a fixed field order; maps are allowed only with
   string keys and are always written with keys sorted, so insertion order never leaks
   into the bytes.
2. Only None, bool, int (64-bit range), bytes, str, list/tuple and dict. No floats: amounts
   are integers in base units, and a float has more than one encoding.
3. Untrusted bytes are decoded with msgpack's own size limits, and must re-encode to the
   exact same bytes; anything else is rejected, so two different byte strings can never
   decode to the same object (and therefore the same id).

This module lives in `consensus/` because it is the lowest layer that signs and hashes;
`node/` depends on it, never the other way round.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgpack

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
NESTING_DEPTH_MAX = 16


class EncodingError(ValueError):
    """An object cannot be encoded canonically (our bug or a caller passing a float)."""


class DecodeError(ValueError):
    """Untrusted bytes are not a valid canonical encoding. The message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    """Bounds applied while decoding untrusted bytes (units last: sizes in bytes/items)."""

    buffer_bytes_max: int = 1 << 20
    bin_bytes_max: int = 1 << 20
    str_bytes_max: int = 64 << 10
    array_items_max: int = 100_000
    map_items_max: int = 1_000


DEFAULT_LIMITS = DecodeLimits()


def _normalise(obj: Any, depth: int) -> Any:
    if depth > NESTING_DEPTH_MAX:
        raise EncodingError(f"nesting deeper than {NESTING_DEPTH_MAX}")
    if obj is None or isinstance(obj, (bool, bytes, str)):
        return obj
    if isinstance(obj, int):
        if not INT_MIN <= obj <= INT_MAX:
            raise EncodingError(f"integer {obj} outside the 64-bit range")
        return obj
    if isinstance(obj, (list, tuple)):
        return [_normalise(item, depth + 1) for item in obj]
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise EncodingError(f"map key {key!r} is not a string")
        return {key: _normalise(obj[key], depth + 1) for key in sorted(obj)}
    raise EncodingError(f"type {type(obj).__name__} has no canonical encoding")


def pack(obj: Any) -> bytes:
    """Encode `obj` canonically. Raises EncodingError for values outside the rules."""
    return msgpack.packb(_normalise(obj, 0), use_bin_type=True)


def unpack(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Decode untrusted bytes; reject anything that is not exactly canonical."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > limits.buffer_bytes_max:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {limits.buffer_bytes_max}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=limits.bin_bytes_max,
            max_str_len=limits.str_bytes_max,
            max_array_len=limits.array_items_max,
            max_map_len=limits.map_items_max,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the encoded object") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        # msgpack signals limits, truncation, bad UTF-8 and unhashable keys this way.
        raise DecodeError(f"malformed msgpack: {exc}") from exc
    try:
        again = pack(obj)
    except EncodingError as exc:
        raise DecodeError(f"not canonical: {exc}") from exc
    if again != bytes(data):
        raise DecodeError("not canonical: re-encoding gives different bytes")
    return obj


def digest(data: bytes) -> bytes:
    """SHA-256, the one hash of the system (ids, block hashes, state digests)."""
    return hashlib.sha256(data).digest()


def object_digest(obj: Any) -> bytes:
    """Hash of the canonical encoding of `obj`."""
    return digest(pack(obj))
