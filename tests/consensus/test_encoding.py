"""Canonical msgpack: one object, one byte string; untrusted bytes are bounded and strict."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.encoding import (
    DecodeError,
    DecodeLimits,
    EncodingError,
    object_digest,
    pack,
    unpack,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@given(values)
def test_round_trip_is_exact(obj: object) -> None:
    data = pack(obj)
    assert unpack(data) == obj
    assert pack(unpack(data)) == data


def test_map_key_order_does_not_leak_into_bytes() -> None:
    assert pack({"b": 1, "a": 2}) == pack({"a": 2, "b": 1})
    assert object_digest({"b": 1, "a": 2}) == object_digest({"a": 2, "b": 1})


def test_tuples_and_lists_encode_the_same() -> None:
    assert pack((1, b"x")) == pack([1, b"x"])


@pytest.mark.parametrize(
    "obj",
    [1.5, {1: "int key"}, 2**64, -(2**63) - 1, {"s": {1, 2}}, object()],
)
def test_values_without_canonical_form_are_refused(obj: object) -> None:
    with pytest.raises(EncodingError):
        pack(obj)


def test_deep_nesting_is_refused() -> None:
    obj: list[object] = []
    for _ in range(40):
        obj = [obj]
    with pytest.raises(EncodingError):
        pack(obj)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "malformed"),
        (b"\x92\x01", "malformed"),  # truncated array
        (pack([1]) + b"\x00", "trailing"),
        (msgpack.packb({"b": 1, "a": 2}), "not canonical"),  # unsorted map
        (b"\xcd\x00\x01", "not canonical"),  # 1 as uint16 instead of fixint
        (msgpack.packb(1.0), "not canonical"),
        (b"\xc1", "malformed"),  # never-used byte
        (b"\x91" * 5000 + b"\x00", "malformed"),  # nesting bomb
    ],
)
def test_untrusted_bytes_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        unpack(data)


def test_limits_bound_memory_before_allocation() -> None:
    limits = DecodeLimits(buffer_bytes_max=1000, bin_bytes_max=10, array_items_max=3)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        unpack(b"\x00" * 1001, limits)
    with pytest.raises(DecodeError):
        unpack(pack(b"x" * 11), limits)
    with pytest.raises(DecodeError):
        unpack(pack([1, 2, 3, 4]), limits)
    # a header claiming a 4 GiB bin in a tiny buffer must not allocate it
    with pytest.raises(DecodeError):
        unpack(b"\xc6\xff\xff\xff\xff", limits)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_as_another_exception(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        unpack(data)
