"""Tiny typed readers for decoded msgpack maps: every field checked, every error names it.

Used for requests on the server and for results on the client (a client must not trust a
server's shapes blindly either). Unknown keys are refused, so a typo in a client is a clear
`bad_request`, not a silently ignored argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

U64_MAX = 2**64 - 1
I64_MAX = 2**63 - 1


class SchemaError(ValueError):
    """A decoded value does not have the documented shape. The message names the field."""


class Fields:
    """Reader over one map; call `done()` last to refuse unknown keys."""

    __slots__ = ("_map", "_seen", "_where")

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, Mapping):
            raise SchemaError(f"{where}: expected a map, got {type(obj).__name__}")
        self._map: Mapping[str, Any] = obj
        self._where = where
        self._seen: set[str] = set()

    def _fail(self, name: str, what: str) -> NoReturn:
        raise SchemaError(f"{self._where}.{name}: {what}")

    def _get(self, name: str, optional: bool) -> Any:
        self._seen.add(name)
        if name not in self._map:
            if optional:
                return None
            self._fail(name, "missing")
        return self._map[name]

    def opt_integer(self, name: str, lo: int = 0, hi: int = U64_MAX) -> int | None:
        value = self._get(name, True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(name, f"expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            self._fail(name, f"{value} outside [{lo}, {hi}]")
        return value

    def integer(self, name: str, lo: int = 0, hi: int = U64_MAX) -> int:
        self._require(name)
        value = self.opt_integer(name, lo, hi)
        if value is None:
            self._fail(name, "expected an integer, got nil")
        return value

    def boolean(self, name: str) -> bool:
        value = self._get(name, False)
        if not isinstance(value, bool):
            self._fail(name, f"expected a boolean, got {type(value).__name__}")
        return value

    def opt_binary(
        self, name: str, size: int | None = None, *, size_max: int | None = None
    ) -> bytes | None:
        value = self._get(name, True)
        if value is None:
            return None
        if not isinstance(value, bytes):
            self._fail(name, f"expected bytes, got {type(value).__name__}")
        if size is not None and len(value) != size:
            self._fail(name, f"expected {size} bytes, got {len(value)}")
        if size_max is not None and len(value) > size_max:
            self._fail(name, f"{len(value)} bytes exceeds {size_max}")
        return value

    def binary(self, name: str, size: int | None = None, *, size_max: int | None = None) -> bytes:
        self._require(name)
        value = self.opt_binary(name, size, size_max=size_max)
        if value is None:
            self._fail(name, "expected bytes, got nil")
        return value

    def opt_text(
        self, name: str, *, size_max: int = 256, choices: tuple[str, ...] | None = None
    ) -> str | None:
        value = self._get(name, True)
        if value is None:
            return None
        if not isinstance(value, str):
            self._fail(name, f"expected a string, got {type(value).__name__}")
        if len(value.encode()) > size_max:
            self._fail(name, f"longer than {size_max} bytes")
        if choices is not None and value not in choices:
            self._fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def text(
        self, name: str, *, size_max: int = 256, choices: tuple[str, ...] | None = None
    ) -> str:
        self._require(name)
        value = self.opt_text(name, size_max=size_max, choices=choices)
        if value is None:
            self._fail(name, "expected a string, got nil")
        return value

    def array(self, name: str, *, items_max: int = 100_000) -> list[Any]:
        value = self._get(name, False)
        if not isinstance(value, list):
            self._fail(name, f"expected an array, got {type(value).__name__}")
        if len(value) > items_max:
            self._fail(name, f"more than {items_max} items")
        return value

    def _require(self, name: str) -> None:
        if name not in self._map:
            self._seen.add(name)
            self._fail(name, "missing")

    def raw(self, name: str, *, optional: bool = False) -> Any:
        return self._get(name, optional)

    def sub(self, name: str) -> str:
        """Path of a nested field, for errors raised while reading it."""
        return f"{self._where}.{name}"

    def done(self) -> None:
        extra = sorted(set(self._map) - self._seen)
        if extra:
            # Keys come from the client: bound what we echo back.
            shown = ", ".join(repr(key[:32]) for key in extra[:5])
            more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
            raise SchemaError(f"{self._where}: unknown field(s) {shown}{more}")


def str_list(items: list[Any], where: str, *, size_max: int = 256) -> list[str]:
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or len(item.encode()) > size_max:
            raise SchemaError(f"{where}[{i}]: expected a string of at most {size_max} bytes")
        out.append(item)
    return out


def bytes_list(items: list[Any], where: str, *, size: int) -> list[bytes]:
    out: list[bytes] = []
    for i, item in enumerate(items):
        if not isinstance(item, bytes) or len(item) != size:
            raise SchemaError(f"{where}[{i}]: expected {size} bytes")
        out.append(item)
    return out
