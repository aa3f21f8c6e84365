"""Shared output helpers: `--json` prints exactly one JSON object on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()
