from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nacl.signing
import pytest

from config.keyfile import KeyFileError, generate_key_file, load_key_file, write_key_file


def test_generate_creates_owner_only_file_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    key = generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key_file(path)
    assert loaded.encode() == key.encode()
    data = json.loads(path.read_text())
    assert data == {
        "type": "ed25519",
        "public_key": key.verify_key.encode().hex(),
        "seed": key.encode().hex(),
    }


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "node.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "node.key").stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    generate_key_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        generate_key_file(path)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, nacl.signing.SigningKey.generate())
    assert path.read_bytes() == before


def test_refuses_to_overwrite_any_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("precious")
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(path)
    assert path.read_text() == "precious"


def test_cannot_create_in_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot create"):
        generate_key_file(tmp_path / "missing" / "node.key")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_refuses_file_readable_by_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    generate_key_file(path)
    path.chmod(mode)
    with pytest.raises(
        KeyFileError, match=f"readable by group or others \\(mode {mode:o}\\); run chmod 600"
    ):
        load_key_file(path)


def test_owner_read_only_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    key = generate_key_file(path)
    path.chmod(0o400)
    assert load_key_file(path).encode() == key.encode()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key_file(tmp_path / "node.key")


def test_tampered_public_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    generate_key_file(path)
    data = json.loads(path.read_text())
    data["public_key"] = nacl.signing.SigningKey.generate().verify_key.encode().hex()
    path.write_text(json.dumps(data))
    with pytest.raises(KeyFileError, match="public_key does not match the seed"):
        load_key_file(path)


def _owner_only(path: Path, body: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body)
    return path


SEED = "11" * 32
GARBAGE = [
    ("", "not a valid key file"),
    ("not json", "not a valid key file"),
    ("[1, 2]", "not a JSON object"),
    ('{"type": "rsa", "seed": "' + SEED + '"}', "type must be 'ed25519'"),
    ('{"type": "ed25519"}', "not a valid key file: 'seed'"),
    ('{"type": "ed25519", "seed": "' + "11" * 31 + '"}', "seed must be 32 bytes"),
    ('{"type": "ed25519", "seed": "zz"}', "not a valid key file"),
    ('{"type": "ed25519", "seed": 17}', "not a valid key file"),
    ('{"type": "ed25519", "seed": "' + SEED + '", "public_key": "00"}', "does not match"),
]


@pytest.mark.parametrize(("body", "fragment"), GARBAGE)
def test_garbage_is_a_key_file_error(tmp_path: Path, body: str, fragment: str) -> None:
    path = _owner_only(tmp_path / "node.key", body)
    with pytest.raises(KeyFileError, match=f"^{path}: .*") as info:
        load_key_file(path)
    assert fragment in str(info.value)


def test_seed_without_public_key_loads(tmp_path: Path) -> None:
    path = _owner_only(tmp_path / "node.key", '{"type": "ed25519", "seed": "' + SEED + '"}')
    assert load_key_file(path).encode() == bytes.fromhex(SEED)


def test_binary_garbage_is_a_key_file_error(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\xff\xfe\x00garbage")
    with pytest.raises(KeyFileError):
        load_key_file(path)
