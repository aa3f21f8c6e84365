"""Cost of loading the largest genesis the limits allow (printed, never asserted).

    /work/venv/bin/python bench/config_bench.py [--accounts N] [--assets N] [--validators N]

Builds a genesis in memory, writes it with genesis_to_toml, then times: load_genesis
(read + tomllib + validation), Genesis.digest() and genesis_to_toml.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from config.genesis import (
    ACCOUNTS_MAX,
    ASSETS_MAX,
    AccountSpec,
    AssetSpec,
    Genesis,
    ValidatorSpec,
    genesis_to_toml,
    load_genesis,
)


def _key(label: str, index: int) -> bytes:
    return hashlib.sha256(f"{label}-{index}".encode()).digest()


def build(validators: int, accounts: int, assets: int) -> Genesis:
    issuer = _key("account", 0)
    return Genesis(
        chain_id="bench-chain",
        genesis_time_ms=1767225600000,
        regulator_keys=(_key("regulator", 0), _key("regulator", 1), _key("regulator", 2)),
        regulator_threshold=2,
        validators=tuple(
            ValidatorSpec(
                name=f"node-{i}",
                public_key=_key("validator", i),
                address=f"10.0.{i // 250}.{i % 250 + 1}:7000",
            )
            for i in range(validators)
        ),
        accounts=tuple(
            AccountSpec(
                public_key=_key("account", i),
                category="entity" if i == 0 else "individual",
                kyc_hash=_key("kyc", i),
                expires_at_ms=1893456000000 if i % 2 else None,
                roles=frozenset({"issuer"}) if i == 0 else frozenset(),
            )
            for i in range(accounts)
        ),
        assets=tuple(
            AssetSpec(
                asset_id=f"BOND-{i}",
                name=f"Treasury bond series {i}",
                decimals=2,
                cap=10**15,
                issuer=issuer,
                document_hash=_key("doc", i),
            )
            for i in range(assets)
        ),
    )


def _timed(label: str, func: object) -> object:
    start = time.perf_counter()
    result = func()  # type: ignore[operator]
    print(f"{label:<28} {(time.perf_counter() - start) * 1000:9.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validators", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS_MAX)
    parser.add_argument("--assets", type=int, default=ASSETS_MAX)
    args = parser.parse_args()
    genesis = build(args.validators, args.accounts, args.assets)
    text = _timed("genesis_to_toml", lambda: genesis_to_toml(genesis))
    assert isinstance(text, str)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "genesis.toml"
        path.write_text(text)
        print(
            f"genesis: {args.validators} validators, {args.accounts} accounts, "
            f"{args.assets} assets, {path.stat().st_size / 1e6:.1f} MB of TOML"
        )
        loaded = _timed("load_genesis", lambda: load_genesis(path))
    assert loaded == genesis
    _timed("Genesis.digest", genesis.digest)


if __name__ == "__main__":
    main()
