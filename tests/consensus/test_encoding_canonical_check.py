"""`unpack`'s canonical check (C re-encoding plus container-only checks) accepts exactly what
the reference rule accepts: bytes that `pack` would produce from the decoded object."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.encoding import NESTING_DEPTH_MAX, DecodeError, EncodingError, pack, unpack

# Anything msgpack can write, canonical or not: floats, unsorted and non-string map keys.
raw_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.binary(max_size=16)
    | st.text(max_size=8)
)
raw_values = st.recursive(
    raw_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.binary(max_size=2), inner, max_size=4)
    ),
    max_leaves=16,
)


def _reference_accepts(data: bytes) -> bool:
    """The rule, spelled out slowly: decodes, and `pack` of the result gives `data` back."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return pack(obj) == data
    except (EncodingError, ValueError, TypeError):
        return False


@given(raw_values, st.booleans())
def test_fast_check_matches_the_reference(obj: object, single_float: bool) -> None:
    try:
        data = msgpack.packb(obj, use_bin_type=True, use_single_float=single_float)
    except OverflowError:  # a float beyond single-float range: write it as a double
        data = msgpack.packb(obj, use_bin_type=True)
    try:
        unpack(data)
        accepted = True
    except DecodeError:
        accepted = False
    assert accepted == _reference_accepts(data)


def _nested(levels: int, leaf: object) -> object:
    for _ in range(levels):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize(
    "levels", [NESTING_DEPTH_MAX - 1, NESTING_DEPTH_MAX, NESTING_DEPTH_MAX + 1]
)
@pytest.mark.parametrize("leaf", [[], 1, {}, {"k": 1}])
def test_depth_limit_is_the_same_as_packs(levels: int, leaf: object) -> None:
    data = msgpack.packb(_nested(levels, leaf), use_bin_type=True)
    try:
        pack(_nested(levels, leaf))
        pack_ok = True
    except EncodingError:
        pack_ok = False
    if pack_ok:
        assert unpack(data) == _nested(levels, leaf)
    else:
        with pytest.raises(DecodeError, match="nesting"):
            unpack(data)


@pytest.mark.parametrize(
    "data",
    [
        msgpack.packb(1.0),  # float64: re-encodes to itself, caught by the single-float pass
        msgpack.packb(1.0, use_single_float=True),  # float32
        msgpack.packb([b"\xcb" * 9, 2.5], use_bin_type=True),  # marker byte inside a payload too
        msgpack.packb({"a": 1, "b": {"d": 1, "c": 2}}),  # unsorted inner map
        msgpack.packb({b"k": 1}, use_bin_type=True),  # bytes key
        b"\x82\xa1a\x01\xa1a\x02",  # duplicate key
    ],
)
def test_floats_and_bad_maps_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError, match="not canonical"):
        unpack(data)


def test_float_too_large_for_single_precision_is_refused_cleanly() -> None:
    with pytest.raises(DecodeError, match="not canonical"):
        unpack(msgpack.packb([1, 3.5e38]))


def test_float_marker_in_a_payload_is_not_a_float() -> None:
    obj = [b"\xcb\xca" * 8, "x\u00cb"]
    assert unpack(pack(obj)) == obj
