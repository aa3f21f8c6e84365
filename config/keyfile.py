"""Ed25519 key files: created owner-only (0600), never overwritten, checked on load.

Format (JSON, so an operator can read the public half):
    {"type": "ed25519", "public_key": "<64 hex>", "seed": "<64 hex>"}
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nacl.signing

KEY_TYPE = "ed25519"
SEED_BYTES = 32
KEY_FILE_MODE = 0o600


class KeyFileError(Exception):
    """A key file is missing, unreadable, malformed, too permissive or already exists."""


def generate_key_file(path: Path) -> nacl.signing.SigningKey:
    """Create a fresh key at `path` (mode 0600). Refuses to overwrite anything."""
    key = nacl.signing.SigningKey.generate()
    write_key_file(path, key)
    return key


def write_key_file(path: Path, key: nacl.signing.SigningKey) -> None:
    body = json.dumps(
        {
            "type": KEY_TYPE,
            "public_key": key.verify_key.encode().hex(),
            "seed": key.encode().hex(),
        }
    )
    try:
        # O_EXCL makes "refuse to overwrite" atomic; the mode is set at creation, so the
        # secret is never readable by others, not even for an instant.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError as exc:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(body + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_key_file(path: Path) -> nacl.signing.SigningKey:
    """Load a key written by `write_key_file`, refusing files others can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"{path}: not a valid key file: not UTF-8 text") from exc
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"{path}: no such key file (create one with `assetledger keygen`)"
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: readable by group or others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}"
        )
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("type") != KEY_TYPE:
            raise ValueError(f"type must be {KEY_TYPE!r}")
        seed = bytes.fromhex(data["seed"])
        if len(seed) != SEED_BYTES:
            raise ValueError(f"seed must be {SEED_BYTES} bytes of hex")
        key = nacl.signing.SigningKey(seed)
        public = data.get("public_key")
        if public is not None and public != key.verify_key.encode().hex():
            raise ValueError("public_key does not match the seed")
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a valid key file: {exc}") from exc
    return key
