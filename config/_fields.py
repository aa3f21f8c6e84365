"""Checks shared by the parsers and the dataclasses' ``__post_init__``.

Two levels:
- value checks (`check_int`, `check_str`, ...) take a field name and a Python value; the
  dataclasses call them so that an invalid object cannot be built, not even by code that
  bypasses the TOML parsers;
- `TableReader` walks a TOML-parsed mapping, rejects unknown keys and wrong TOML types, and
  converts TOML spellings (hex strings, "host:port") to the Python values the dataclasses hold.

A bool is never accepted as an int (Python's `True == 1` must not sneak through), and a float
is never accepted anywhere: every quantity in the system is an integer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from config.errors import ConfigError

KEY_BYTES = 32
HASH_BYTES = 32
INT64_MAX = 2**63 - 1
PORT_MAX = 65_535
HOST_CHARS_MAX = 253
PATH_CHARS_MAX = 4096
NAME_PATTERN = re.compile(r"[a-z0-9-]{1,32}")
_HEX = re.compile(r"[0-9a-fA-F]*")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_REPR_CHARS_MAX = 40


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, for error messages."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, tuple):
        return "array"
    return type(value).__name__


def shown(value: Any) -> str:
    """A short rendering of a bad value: its type, and the value itself when scalar."""
    if isinstance(value, (bool, int, float, str)):
        text = repr(value) if not isinstance(value, bool) else str(value).lower()
        if len(text) > _REPR_CHARS_MAX:
            text = text[: _REPR_CHARS_MAX - 3] + "..."
        return f"{toml_type(value)} {text}"
    return toml_type(value)


# ---------------------------------------------------------------- value checks


def check_int(field: str, value: Any, lo: int, hi: int) -> int:
    if type(value) is not int:
        raise ConfigError(field, f"expected an integer, got {shown(value)}")
    if not lo <= value <= hi:
        raise ConfigError(field, f"{value} is out of range (expected {lo}..{hi})")
    return value


def check_str(
    field: str,
    value: Any,
    *,
    pattern: re.Pattern[str] | None = None,
    expected: str = "",
    chars_min: int = 1,
    chars_max: int = 256,
) -> str:
    if type(value) is not str:
        raise ConfigError(field, f"expected a string, got {shown(value)}")
    if not chars_min <= len(value) <= chars_max:
        raise ConfigError(field, f"{len(value)} characters (expected {chars_min}..{chars_max})")
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(field, f"{value!r} is not {expected or 'valid'}")
    return value


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    allowed = sorted(choices)
    if type(value) is not str:
        raise ConfigError(field, f"expected a string, got {shown(value)}")
    if value not in allowed:
        raise ConfigError(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def check_bytes(field: str, value: Any, size: int) -> bytes:
    if type(value) is not bytes:
        raise ConfigError(field, f"expected {size} bytes, got {type(value).__name__}")
    if len(value) != size:
        raise ConfigError(field, f"not {size} bytes (got {len(value)} bytes)")
    return value


def check_tuple(field: str, value: Any, kind: type, items_min: int, items_max: int) -> tuple:
    if type(value) is not tuple:
        raise ConfigError(field, f"expected a tuple, got {type(value).__name__}")
    if not items_min <= len(value) <= items_max:
        raise ConfigError(field, f"{len(value)} items (expected {items_min}..{items_max})")
    for index, item in enumerate(value):
        if not isinstance(item, kind):
            raise ConfigError(
                f"{field}[{index}]", f"expected {kind.__name__}, got {type(item).__name__}"
            )
    return value


def check_unique(
    field: str, values: Iterable[Any], attr: str | None = None, render: Any = repr
) -> None:
    """Raise on the first repeat: ``field[j].attr: duplicate attr <v> (same as field[i])``."""
    seen: dict[Any, int] = {}
    suffix = f".{attr}" if attr else ""
    for index, value in enumerate(values):
        if value in seen:
            raise ConfigError(
                f"{field}[{index}]{suffix}",
                f"duplicate {attr or 'value'} {render(value)} (same as {field}[{seen[value]}])",
            )
        seen[value] = index


def check_host(field: str, host: Any) -> str:
    if type(host) is not str:
        raise ConfigError(field, f"expected a host string, got {shown(host)}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # An all-digit last label ("999.1.1.1") is a mistyped IPv4 address, never a name.
        if not _HOSTNAME.fullmatch(host) or host.rsplit(".", 1)[-1].isdigit():
            raise ConfigError(field, f"{host!r} is not an IP address or host name") from None
    return host


def check_port(field: str, port: Any, port_min: int) -> int:
    if type(port) is not int or not port_min <= port <= PORT_MAX:
        raise ConfigError(field, f"port {port!r} is out of range (expected {port_min}..{PORT_MAX})")
    return port


def parse_host_port(field: str, text: Any, *, port_min: int = 1) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> (host, port). Port 0 only if port_min is 0."""
    if type(text) is not str:
        raise ConfigError(field, f'expected a "host:port" string, got {shown(text)}')
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep or ":" not in host:
            raise ConfigError(field, f'{text!r} is not "[ipv6]:port"')
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ConfigError(
                field, f'{text!r} is not "host:port" (write IPv6 hosts as "[addr]:port")'
            )
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ConfigError(field, f"{text!r} has no numeric port (expected {port_min}..{PORT_MAX})")
    try:
        check_host(field, host)
        check_port(field, int(port_text), port_min)
    except ConfigError as exc:
        raise ConfigError(field, f"{text!r}: {exc.reason}") from None
    return host, int(port_text)


def format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_address(field: str, value: Any) -> str:
    """A peer address "host:port" (port 1..65535) kept as the string the operator wrote."""
    parse_host_port(field, value, port_min=1)
    return value


# ---------------------------------------------------------------- TOML tables


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class TableReader:
    """One TOML table at `path`: typed getters that name the field in every error.

    Call `finish()` after reading every key you know; any key left over is a typo or a setting
    this version does not have, and is rejected rather than silently ignored.
    """

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"expected a table, got {shown(data)}")
        self._data = data
        self._path = path
        self._known: set[str] = set()

    @property
    def path(self) -> str:
        return self._path

    def field(self, key: str) -> str:
        return join(self._path, key)

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ConfigError(self.field(key), reason)

    def _take(self, key: str, required: bool) -> Any:
        self._known.add(key)
        if key not in self._data:
            if required:
                self.fail(key, "missing (required)")
            return None
        return self._data[key]

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, *, required: bool = True) -> Any:
        return self._take(key, required)

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self._take(key, default is None)
        if value is None:
            assert default is not None
            return default
        return check_int(self.field(key), value, lo, hi)

    def optional_int(self, key: str, lo: int, hi: int) -> int | None:
        value = self._take(key, False)
        return None if value is None else check_int(self.field(key), value, lo, hi)

    def string(self, key: str, default: str | None = None) -> str:
        value = self._take(key, default is None)
        if value is None:
            assert default is not None
            return default
        if type(value) is not str:
            self.fail(key, f"expected a string, got {shown(value)}")
        return value

    def optional_str(self, key: str) -> str | None:
        value = self._take(key, False)
        if value is not None and type(value) is not str:
            self.fail(key, f"expected a string, got {shown(value)}")
        return value

    def hex_bytes(self, key: str, size: int, *, required: bool = True) -> bytes | None:
        value = self._take(key, required)
        return None if value is None else hex_to_bytes(self.field(key), value, size)

    def array(self, key: str, items_max: int, *, required: bool = False) -> list[Any]:
        value = self._take(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, f"expected an array, got {shown(value)}")
        if len(value) > items_max:
            self.fail(key, f"{len(value)} items exceeds the maximum of {items_max}")
        return value

    def table(self, key: str, *, required: bool = False) -> TableReader:
        value = self._take(key, required)
        return TableReader({} if value is None else value, self.field(key))

    def tables(self, key: str, items_max: int, *, required: bool = False) -> list[TableReader]:
        return [
            TableReader(item, f"{self.field(key)}[{index}]")
            for index, item in enumerate(self.array(key, items_max, required=required))
        ]

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._known)
        if unknown:
            allowed = ", ".join(sorted(self._known))
            self.fail(unknown[0], f"unknown key (allowed: {allowed})")


def hex_to_bytes(field: str, value: Any, size: int) -> bytes:
    if type(value) is not str:
        raise ConfigError(field, f"expected {size * 2} hex digits, got {shown(value)}")
    if not _HEX.fullmatch(value):
        raise ConfigError(field, f"not hex (expected {size * 2} hex digits, no 0x prefix)")
    if len(value) % 2:
        raise ConfigError(field, f"odd number of hex digits ({len(value)}; expected {size * 2})")
    if len(value) != size * 2:
        raise ConfigError(field, f"not {size} bytes of hex (got {len(value) // 2} bytes)")
    return bytes.fromhex(value)
