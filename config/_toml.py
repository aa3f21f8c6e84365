"""Reading TOML files with a size bound, and writing the small TOML subset we emit.

tomllib only reads; the writers here cover exactly what genesis and node files need
(strings, integers, arrays of those, tables, arrays of tables), so the output of
`genesis_to_toml` / `node_config_to_toml` is always accepted by tomllib.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from config.errors import ConfigError

_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def read_toml(path: Path, bytes_max: int) -> dict[str, Any]:
    """Read and parse `path`; every failure is a ConfigError naming the file (and line)."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            # Read one byte past the bound so an oversized file is detected without
            # pulling an arbitrarily large file into memory.
            raw = handle.read(bytes_max + 1)
    except FileNotFoundError:
        raise ConfigError(name, "no such file") from None
    except OSError as exc:
        raise ConfigError(name, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > bytes_max:
        raise ConfigError(name, f"larger than {bytes_max} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, f"not UTF-8 (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError carries the position only inside its message.
        message = str(exc)
        match = _LINE.search(message)
        where = f"{name}: line {match.group(1)}" if match else name
        reason = message[: match.start()] if match else message
        raise ConfigError(where, f"invalid TOML: {reason}") from None


def toml_string(value: str) -> str:
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"no TOML spelling for {value!r} here")  # our bug, not input
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML spelling for {type(value).__name__}")


def toml_pairs(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    """`key = value` lines; pairs whose value is None are omitted (optional fields)."""
    return [f"{key} = {toml_value(value)}" for key, value in pairs if value is not None]
