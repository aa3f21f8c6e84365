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


def _check_map(pairs: dict[Any, Any]) -> dict[Any, Any]:
    """msgpack's `object_hook`: runs only for maps, so map-free data pays nothing for it.

    Keys must be strings in sorted order. (Duplicate keys collapse into one entry, so the
    re-encoding comparison in `unpack` rejects them.)"""
    previous: str | None = None
    for key in pairs:
        if type(key) is not str:
            raise DecodeError(f"not canonical: map key {key!r} is not a string")
        if previous is not None and key <= previous:
            raise DecodeError("not canonical: map keys are not sorted")
        previous = key
    return pairs


def _too_deep(obj: list[Any] | dict[Any, Any]) -> bool:
    """True if some value sits deeper than NESTING_DEPTH_MAX (`obj` is at depth 0).

    Level by level over containers only, without recursion: a transaction costs three
    list comprehensions."""
    level = [obj]
    for _ in range(NESTING_DEPTH_MAX):
        level = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) is list or type(item) is dict
        ]
        if not level:
            return False
    # `level` holds the containers at depth NESTING_DEPTH_MAX: any item of theirs is too deep.
    return any(level)


def unpack(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Decode untrusted bytes; reject anything that is not exactly canonical.

    The canonical check costs a few C calls instead of a Python walk over every item:
    - msgpack itself bounds sizes, rejects ext types and keeps ints in the 64-bit range
      (the format has no wider int); the nesting depth is checked over containers only;
    - maps are checked (string keys, sorted) by an `object_hook` that only maps trigger;
    - re-encoding must give the input bytes back, which rejects every non-minimal form
      (ints, lengths, float32 where a float64 would be written...);
    - a float64 re-encodes to itself, so when the input holds a 0xcb byte (the float64
      marker, possibly just payload) it is encoded once more with single floats: a float
      then comes out different, anything else identical.
    """
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
            object_hook=_check_map,
            max_bin_len=limits.bin_bytes_max,
            max_str_len=limits.str_bytes_max,
            max_array_len=limits.array_items_max,
            max_map_len=limits.map_items_max,
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the encoded object") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        # msgpack signals limits, truncation, bad UTF-8 and unhashable keys this way.
        raise DecodeError(f"malformed msgpack: {exc}") from exc
    kind = type(obj)
    if (kind is list or kind is dict) and _too_deep(obj):
        raise DecodeError(f"not canonical: nesting deeper than {NESTING_DEPTH_MAX}")
    if type(data) is not bytes:
        data = bytes(data)
    if msgpack.packb(obj, use_bin_type=True) != data:
        raise DecodeError("not canonical: re-encoding gives different bytes")
    if b"\xcb" in data:
        try:
            single = msgpack.packb(obj, use_bin_type=True, use_single_float=True)
        except OverflowError:  # only a float can be out of single-float range
            single = b""
        if single != data:
            raise DecodeError("not canonical: floats have no canonical encoding")
    return obj


def digest(data: bytes) -> bytes:
    """SHA-256, the one hash of the system (ids, block hashes, state digests)."""
    return hashlib.sha256(data).digest()


def object_digest(obj: Any) -> bytes:
    """Hash of the canonical encoding of `obj`."""
    return digest(pack(obj))
