"""`assetledger tx ...` and `assetledger query ...` through click's CliRunner against a real
server on a loopback port (fake backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import nacl.signing
import pytest
from click.testing import Result

from config.genesis import Genesis, ValidatorSpec, genesis_to_toml
from config.keyfile import write_key_file
from node.api.server import ClientApiServer
from node.cli.query import query
from node.cli.tx import tx
from node.tx import Args, Kind
from node.tx.kinds import (
    AddValidatorArgs,
    CreateAssetArgs,
    FreezeArgs,
    MintArgs,
    RemoveValidatorArgs,
    SetRegulatorKeysArgs,
    SetSupplyCapArgs,
    TransferArgs,
    UnfreezeArgs,
)
from tests.node.api.fake_backend import CHAIN_ID, VALIDATORS, FakeBackend
from tests.node.api.helpers import ALICE, BOB, ISSUER, pub
from tests.node.client.cli_helpers import REGULATOR, REGULATOR_2, one_line_error, run
from tests.node.client.server_thread import serving

BOB_HEX = pub(BOB).hex()

A = TypeVar("A", bound=Args)


def alice_pays_bob(node: str, keys: dict[str, Path], amount: str, *flags: str) -> Result:
    """`assetledger tx transfer` of `amount` BOND from alice to bob, plus `flags`."""
    return run(
        tx,
        [
            "transfer",
            "--asset",
            "BOND",
            "--to",
            BOB_HEX,
            "--amount",
            amount,
            "--key",
            str(keys["alice"]),
            "--node",
            node,
            *flags,
        ],
    )


def test_transfer_wait_json(node: str, keys: dict[str, Path], backend: FakeBackend) -> None:
    result = alice_pays_bob(node, keys, "12.50", "--memo", "rent", "--wait", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"tx_id", "status", "height", "reason"}
    assert (out["status"], out["height"], out["reason"]) == ("committed", 1, None)
    assert backend.balances[("BOND", pub(BOB))] == 1250
    assert bytes.fromhex(out["tx_id"]) in backend.receipts


def test_transfer_without_wait_is_pending_and_human_output(
    node: str, keys: dict[str, Path], backend: FakeBackend
) -> None:
    backend.autocommit = False
    result = alice_pays_bob(node, keys, "1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("pending    tx ")
    args = backend.mempool[0].body.args
    assert isinstance(args, TransferArgs) and args.amount == 100


def test_rejected_transfer_exits_1(node: str, keys: dict[str, Path]) -> None:
    result = alice_pays_bob(node, keys, "1000000", "--wait", "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert (out["status"], out["reason"], out["height"]) == ("rejected", "insufficient_balance", 1)


def test_admission_refusal_is_rejected_without_height(node: str, keys: dict[str, Path]) -> None:
    result = alice_pays_bob(node, keys, "1", "--nonce", "5", "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"] == "bad_nonce"
    assert json.loads(result.output)["height"] is None


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--amount", "12.505"], ("--amount", "3 decimal places", "asset has 2")),
        (["--amount", "ten"], ("--amount", "not a decimal number")),
        (["--asset", "NOPE"], ("unknown asset 'NOPE'", "query asset")),
        (["--to", "zz"], ("--to", "not hex")),
        (["--to", "abcd"], ("--to", "expected 64 hex characters")),
        (["--amount", "0"], ("invalid transaction", "amount")),
    ],
)
def test_user_mistakes_are_one_line(
    node: str, keys: dict[str, Path], args: list[str], fragments: tuple[str, ...]
) -> None:
    base = {"--asset": "BOND", "--to": BOB_HEX, "--amount": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["transfer", "--key", str(keys["alice"]), "--node", node]
    for flag, value in base.items():
        argv += [flag, value]
    one_line_error(run(tx, argv), *fragments)


def test_bad_key_files(node: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    argv = ["pause", "--asset", "BOND", "--node", node, "--key"]
    one_line_error(run(tx, [*argv, str(missing)]), "no such key file", "keygen")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not json")
    garbage.chmod(0o600)
    one_line_error(run(tx, [*argv, str(garbage)]), "not a valid key file")
    loose = tmp_path / "loose.key"
    write_key_file(loose, ALICE)
    loose.chmod(0o644)
    one_line_error(run(tx, [*argv, str(loose)]), "chmod 600")


def test_unreachable_node(keys: dict[str, Path]) -> None:
    with serving(ClientApiServer(FakeBackend())) as (host, port):
        pass
    one_line_error(run(query, ["status", "--node", f"{host}:{port}"]), "cannot connect", "--node")
    one_line_error(run(query, ["status", "--node", "nonsense"]), "--node", "HOST:PORT")


def test_every_kind_has_a_command(node: str, keys: dict[str, Path], backend: FakeBackend) -> None:
    backend.autocommit = False
    audit = ["--reason-code", "COURT", "--order-ref", "ORD-7"]
    regulators = ["--key", str(keys["regulator"]), "--key", str(keys["regulator2"])]
    issuer = ["--key", str(keys["issuer"])]
    cases: list[tuple[Kind, list[str]]] = [
        (
            Kind.REGISTER_ACCOUNT,
            ["--account", BOB_HEX, "--category", "entity", "--kyc-hash", "ab" * 32, *regulators],
        ),
        (Kind.REVOKE_ACCOUNT, ["--account", BOB_HEX, *regulators]),
        (Kind.GRANT_ROLE, ["--account", BOB_HEX, "--role", "issuer", *regulators]),
        (Kind.REVOKE_ROLE, ["--account", BOB_HEX, "--role", "registrar", *regulators]),
        (Kind.SET_SUPPLY_CAP, ["--asset", "BOND", "--cap", "5000.00", *regulators]),
        (
            Kind.FORCE_TRANSFER,
            [
                "--asset",
                "BOND",
                "--from",
                pub(ALICE).hex(),
                "--to",
                BOB_HEX,
                "--amount",
                "3",
                *audit,
                *regulators,
            ],
        ),
        (
            Kind.RECOVER_ACCOUNT,
            ["--lost-account", pub(ALICE).hex(), "--new-account", BOB_HEX, *audit, *regulators],
        ),
        (Kind.FREEZE, ["--account", BOB_HEX, *audit, *regulators]),
        (Kind.UNFREEZE, ["--account", BOB_HEX, "--asset", "BOND", *audit, *regulators]),
        (
            Kind.CREATE_ASSET,
            [
                "--asset",
                "BILL",
                "--name",
                "Treasury bill",
                "--decimals",
                "3",
                "--cap",
                "1000.5",
                *issuer,
            ],
        ),
        (Kind.MINT, ["--asset", "BOND", "--to", BOB_HEX, "--amount", "2.5", *issuer]),
        (Kind.BURN, ["--asset", "BOND", "--amount", "0.01", *issuer]),
        (Kind.PAUSE, ["--asset", "BOND", *issuer]),
        (Kind.UNPAUSE, ["--asset", "BOND", *issuer]),
        (
            Kind.TRANSFER,
            ["--asset", "BOND", "--to", BOB_HEX, "--amount", "0.5", "--key", str(keys["alice"])],
        ),
    ]
    new_validator = nacl.signing.SigningKey(b"\x66" * 32).verify_key.encode().hex()
    cases += [
        (
            Kind.ADD_VALIDATOR,
            [
                "--name",
                "v4",
                "--public-key",
                new_validator,
                "--address",
                "127.0.0.1:9004",
                *regulators,
            ],
        ),
        (Kind.REMOVE_VALIDATOR, ["--name", "v3", "--allow-below-minimum", *regulators]),
        (Kind.ROTATE_VALIDATOR_KEY, ["--name", "v2", "--public-key", new_validator, *regulators]),
        (
            Kind.SET_REGULATOR_KEYS,
            [
                "--public-key",
                pub(REGULATOR).hex(),
                "--public-key",
                pub(REGULATOR_2).hex(),
                "--threshold",
                "2",
                *regulators,
            ],
        ),
    ]
    # report_equivocation is submitted by the validators themselves, not by an operator.
    assert {kind for kind, _ in cases} == set(Kind) - {Kind.REPORT_EQUIVOCATION}
    for kind, argv in cases:
        command = kind.value.replace("_", "-")
        result = run(tx, [command, *argv, "--node", node, "--json"])
        assert result.exit_code == 0, (command, result.output)
        assert json.loads(result.output)["status"] == "pending"
        stx = backend.mempool[-1]
        assert stx.body.kind == kind
        if "--key" in argv and argv.count("--key") == 2:
            assert len(stx.signatures) == 2
    by_kind = {stx.body.kind: stx.body.args for stx in backend.mempool}

    def args_of(kind: Kind, cls: type[A]) -> A:
        args = by_kind[kind]
        assert isinstance(args, cls), (kind, args)
        return args

    assert args_of(Kind.SET_SUPPLY_CAP, SetSupplyCapArgs).cap == 500_000
    assert args_of(Kind.CREATE_ASSET, CreateAssetArgs).cap == 1_000_500
    assert args_of(Kind.MINT, MintArgs).amount == 250
    assert args_of(Kind.FREEZE, FreezeArgs).asset_id is None
    assert args_of(Kind.UNFREEZE, UnfreezeArgs).asset_id == "BOND"
    assert args_of(Kind.ADD_VALIDATOR, AddValidatorArgs).public_key.hex() == new_validator
    assert args_of(Kind.REMOVE_VALIDATOR, RemoveValidatorArgs).allow_below_minimum is True
    regulator_keys = args_of(Kind.SET_REGULATOR_KEYS, SetRegulatorKeysArgs)
    assert regulator_keys.public_keys == (pub(REGULATOR), pub(REGULATOR_2))
    assert regulator_keys.threshold == 2
    # Nonces came from the node, one after another per signer.
    regulator_nonces = [s.body.nonce for s in backend.mempool if s.body.signer == pub(REGULATOR)]
    assert regulator_nonces == list(range(13))


def test_query_status_and_balance_json(node: str) -> None:
    result = run(query, ["status", "--node", node, "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert {"height", "view", "primary", "validators", "state_digest"} <= set(status)
    assert status["chain_id"] == CHAIN_ID
    assert (status["tx_bytes_max"], status["memo_bytes_max"]) == (4096, 256)  # the chain's
    result = run(
        query,
        ["balance", "--asset", "BOND", "--account", pub(ALICE).hex(), "--node", node, "--json"],
    )
    assert json.loads(result.output) == {
        "asset": "BOND",
        "account": pub(ALICE).hex(),
        "balance": 10_000,
    }


def test_query_human_output_uses_decimals(node: str) -> None:
    result = run(
        query, ["balance", "--asset", "BOND", "--account", pub(ALICE).hex(), "--node", node]
    )
    assert result.exit_code == 0, result.output
    assert "100.00 BOND" in result.output
    result = run(query, ["asset", "--asset", "BOND", "--node", node])
    assert "10000000000.00" in result.output and "100.00" in result.output
    result = run(query, ["status", "--node", node])
    assert "v0, v1, v2, v3" in result.output


def test_query_account_asset_nonce(node: str) -> None:
    account = json.loads(
        run(query, ["account", "--account", pub(ALICE).hex(), "--node", node, "--json"]).output
    )
    assert account["registered"] is True and account["account"] == pub(ALICE).hex()
    asset = json.loads(run(query, ["asset", "--asset", "BOND", "--node", node, "--json"]).output)
    assert (asset["decimals"], asset["supply"], asset["issuer"]) == (2, 10_000, pub(ISSUER).hex())
    nonce = json.loads(
        run(query, ["nonce", "--account", pub(ALICE).hex(), "--node", node, "--json"]).output
    )
    assert nonce == {"account": pub(ALICE).hex(), "next_nonce": 0}
    one_line_error(run(query, ["asset", "--asset", "NOPE", "--node", node]), "not_found", "NOPE")


def _genesis(tmp_path: Path, validators: tuple[tuple[str, bytes], ...]) -> Path:
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=0,
        regulator_keys=(pub(REGULATOR),),
        validators=tuple(
            ValidatorSpec(name=name, public_key=key, address=f"127.0.0.1:{9000 + i}")
            for i, (name, key) in enumerate(validators)
        ),
    )
    path = tmp_path / "genesis.toml"
    path.write_text(genesis_to_toml(genesis))
    return path


def test_query_tx_and_block_verify_finality(
    node: str, keys: dict[str, Path], tmp_path: Path
) -> None:
    sent = json.loads(alice_pays_bob(node, keys, "1", "--wait", "--json").output)
    genesis = _genesis(tmp_path, VALIDATORS)
    result = run(
        query, ["tx", "--tx-id", sent["tx_id"], "--genesis", str(genesis), "--node", node, "--json"]
    )
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.output)
    assert (receipt["status"], receipt["height"], receipt["verified"]) == ("applied", 1, True)
    result = run(
        query, ["block", "--height", "1", "--genesis", str(genesis), "--node", node, "--json"]
    )
    block = json.loads(result.output)
    assert block["tx_ids"] == [sent["tx_id"]] and block["verified"] is True
    result = run(query, ["block", "--height", "1", "--node", node])
    assert sent["tx_id"] in result.output
    # Against validators the node's certificate was not signed by: refused, one line.
    strangers = tuple((name, bytes([7 + i]) * 32) for i, (name, _) in enumerate(VALIDATORS))
    other = tmp_path / "other"
    other.mkdir()
    result = run(
        query,
        [
            "tx",
            "--tx-id",
            sent["tx_id"],
            "--genesis",
            str(_genesis(other, strangers)),
            "--node",
            node,
        ],
    )
    one_line_error(result, "does not verify")
    one_line_error(run(query, ["tx", "--tx-id", "00" * 32, "--node", node]), "not_found")
    one_line_error(run(query, ["tx", "--tx-id", "xyz", "--node", node]), "--tx-id", "not hex")


def test_query_history(node: str, keys: dict[str, Path]) -> None:
    for _ in range(3):
        alice_pays_bob(node, keys, "1", "--wait")
    page = json.loads(
        run(
            query,
            ["history", "--account", pub(ALICE).hex(), "--limit", "2", "--node", node, "--json"],
        ).output
    )
    assert len(page["tx_ids"]) == 2 and page["next_cursor"]
    rest = json.loads(
        run(
            query,
            [
                "history",
                "--account",
                pub(ALICE).hex(),
                "--cursor",
                page["next_cursor"],
                "--node",
                node,
                "--json",
            ],
        ).output
    )
    assert len(rest["tx_ids"]) == 1 and rest["next_cursor"] is None


def test_wait_timeout_reports_pending(
    node: str, keys: dict[str, Path], backend: FakeBackend
) -> None:
    backend.autocommit = False  # nothing commits: the node answers `timeout`
    result = alice_pays_bob(node, keys, "1", "--wait", "--timeout-ms", "50", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["status"], out["height"], out["reason"]) == ("pending", None, None)
    assert len(backend.mempool) == 1


def test_query_account_human(node: str) -> None:
    result = run(query, ["account", "--account", pub(ALICE).hex(), "--node", node])
    assert result.exit_code == 0, result.output
    assert pub(ALICE).hex() in result.output and "individual" in result.output
