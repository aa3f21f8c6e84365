"""Valid sample inputs: each invalid-input test mutates one field of these."""

from __future__ import annotations

from typing import Any


def hexkey(byte: int) -> str:
    return f"{byte:02x}" * 32


def genesis_dict() -> dict[str, Any]:
    return {
        "chain_id": "national-assets-1",
        "genesis_time_ms": 1767225600000,
        "regulator": {"public_keys": [hexkey(1), hexkey(2)], "threshold": 1},
        "validators": [
            {
                "name": f"node-{i}",
                "public_key": hexkey(0x10 + i),
                "address": f"127.0.0.1:{7000 + i}",
            }
            for i in range(4)
        ],
        "accounts": [
            {
                "public_key": hexkey(0x20),
                "category": "entity",
                "kyc_hash": hexkey(0x21),
                "roles": ["issuer"],
            },
            {
                "public_key": hexkey(0x30),
                "category": "intermediary",
                "kyc_hash": hexkey(0x31),
                "expires_at_ms": 1893456000000,
            },
        ],
        "assets": [
            {
                "asset_id": "BOND-2036",
                "name": "Treasury bond 2036",
                "decimals": 2,
                "cap": 1_000_000_000_00,
                "issuer": hexkey(0x20),
                "document_hash": hexkey(0x40),
            }
        ],
    }


def node_dict() -> dict[str, Any]:
    return {
        "node": {
            "name": "node-0",
            "data_dir": "data",
            "key_file": "node.key",
            "genesis_file": "../genesis.toml",
        },
        "listen": {"peer": "127.0.0.1:7000", "client": "127.0.0.1:7100"},
    }


DELETE = object()


def mutate(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """Set (or with DELETE, remove) the item at `path`, creating tables on the way."""
    target: Any = data
    for step in path[:-1]:
        if isinstance(step, str) and step not in target:
            target[step] = {}
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data
