"""Structured logs: one event per line with node name, view and height.

`json` format is for machines (one JSON object per line); `text` for people reading a terminal.
The context (view, height) is read from a callable at emit time, so every line carries the
node's position without each call site passing it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class _ContextFilter(logging.Filter):
    def __init__(self, node: str, context: Callable[[], dict[str, Any]]):
        super().__init__()
        self._node = node
        self._context = context

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self._node
        for key, value in self._context().items():
            setattr(record, key, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line[key] = value.hex() if isinstance(value, bytes) else value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = " ".join(
            f"{k}={v.hex()[:16] if isinstance(v, bytes) else v}" for k, v in _fields(record).items()
        )
        text = f"{stamp} {record.levelname.lower():7} {record.getMessage()} {fields}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(
    *,
    node: str,
    level: str,
    fmt: str,
    context: Callable[[], dict[str, Any]],
    stream: TextIO | None = None,
) -> logging.Logger:
    """Return the node's logger, writing one event per line to `stream` (stderr by default)."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {sorted(LEVELS)}")
    if fmt not in ("json", "text"):
        raise ValueError(f"log format {fmt!r}: expected json or text")
    logger = logging.getLogger(f"assetledger.{node}")
    logger.handlers.clear()
    logger.filters.clear()
    logger.propagate = False
    logger.setLevel(LEVELS[level])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.addFilter(_ContextFilter(node, context))
    return logger
