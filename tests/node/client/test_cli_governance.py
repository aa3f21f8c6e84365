"""Governance from the CLI: `tx add-validator | remove-validator | rotate-validator-key |
set-regulator-keys` and `query validators | governance | evidence`, through click's CliRunner
against a real server on a loopback port (fake backend with the ledger's epoch rule)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nacl.signing

from node.api.governance_results import EvidenceEntry
from node.cli.query import query
from node.cli.tx import tx
from tests.node.api.fake_backend import VALIDATORS, FakeBackend
from tests.node.api.helpers import pub
from tests.node.client.cli_helpers import REGULATOR, REGULATOR_2, one_line_error, run

NEW_KEY = nacl.signing.SigningKey(b"\x66" * 32).verify_key.encode()
ROTATED_KEY = nacl.signing.SigningKey(b"\x77" * 32).verify_key.encode()


def regulator_tx(node: str, keys: dict[str, Path], *argv: str) -> dict[str, object]:
    result = run(tx, [*argv, "--key", str(keys["regulator"]), "--node", node, "--wait", "--json"])
    assert result.exit_code in (0, 1), result.output
    out: dict[str, object] = json.loads(result.output)
    return out


def add_v4(node: str, keys: dict[str, Path]) -> dict[str, object]:
    return regulator_tx(
        node,
        keys,
        "add-validator",
        "--name",
        "v4",
        "--public-key",
        NEW_KEY.hex(),
        "--address",
        "127.0.0.1:9004",
    )


def validators_json(node: str, *argv: str) -> dict[str, object]:
    result = run(query, ["validators", *argv, "--node", node, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.output)
    return out


def test_add_validator_then_query_the_pending_set_and_the_boundary(
    node: str, keys: dict[str, Path], backend: FakeBackend
) -> None:
    assert add_v4(node, keys)["status"] == "committed"  # block 1
    info = validators_json(node)
    # Epoch 0 ends at the first multiple of K = 16 at or after 1 + W (32).
    assert (info["epoch"], info["first_seq"], info["last_seq"]) == (0, 1, 48)
    assert info["pending_last_seq"] == 48 and info["height"] == 1
    validators = info["validators"]
    assert isinstance(validators, list)
    assert [v["name"] for v in validators] == ["v0", "v1", "v2", "v3"]
    pending = info["pending_validators"]
    assert isinstance(pending, list) and pending[-1] == {
        "name": "v4",
        "public_key": NEW_KEY.hex(),
        "address": "127.0.0.1:9004",
    }
    assert info["regulator_keys"] == [pub(REGULATOR).hex()]
    assert info["regulator_threshold"] == 1

    human = run(query, ["validators", "--node", node])
    assert human.exit_code == 0, human.output
    assert "epoch 0" in human.output and "1 .. 48" in human.output
    assert "current epoch ends after block 48" in human.output and "from block 49" in human.output
    assert "added" in human.output and NEW_KEY.hex() in human.output
    assert "1 of 1 keys" in human.output

    # Past the boundary the new epoch governs; --height still shows the old one.
    for _ in range(47):
        backend.commit_block()
    info = validators_json(node)
    assert (info["epoch"], info["first_seq"], info["last_seq"]) == (1, 49, None)
    assert info["pending_validators"] is None and info["pending_last_seq"] is None
    validators = info["validators"]
    assert isinstance(validators, list) and len(validators) == 5
    old = validators_json(node, "--height", "48")
    assert (old["epoch"], old["last_seq"]) == (0, 48)
    assert validators_json(node, "--height", "49")["epoch"] == 1
    human = run(query, ["validators", "--node", node])
    assert "49 .. open" in human.output and "pending" not in human.output


def test_validators_height_errors_are_one_line(node: str) -> None:
    one_line_error(run(query, ["validators", "--height", "5", "--node", node]), "not_found")
    result = run(query, ["validators", "--height", "0", "--node", node])
    assert result.exit_code == 2 and "--height" in result.output


def test_rotate_remove_and_refusals(node: str, keys: dict[str, Path], backend: FakeBackend) -> None:
    out = regulator_tx(
        node, keys, "rotate-validator-key", "--name", "v2", "--public-key", ROTATED_KEY.hex()
    )
    assert out["status"] == "committed"
    out = regulator_tx(node, keys, "remove-validator", "--name", "v3")
    assert out["status"] == "committed"
    rows = run(query, ["validators", "--node", node]).output
    assert f"new key (was {VALIDATORS[2][1].hex()})" in rows and "removed" in rows
    # Refused by the ledger: a rejected receipt, exit status 1.
    out = regulator_tx(node, keys, "remove-validator", "--name", "nobody")
    assert (out["status"], out["reason"]) == ("rejected", "unknown_validator")


def test_tx_argument_mistakes_are_one_line(node: str, keys: dict[str, Path]) -> None:
    base = ["--key", str(keys["regulator"]), "--node", node]
    one_line_error(
        run(tx, ["rotate-validator-key", "--name", "v1", "--public-key", "zz", *base]),
        "--public-key",
        "not hex",
    )
    one_line_error(
        run(tx, ["add-validator", "--name", "v9", "--public-key", "ab" * 31, "--address", "h:1"]),
        "--public-key",
        "expected 64 hex characters",
    )
    one_line_error(
        run(
            tx,
            [
                "add-validator",
                "--name",
                "V 9",
                "--public-key",
                NEW_KEY.hex(),
                "--address",
                "127.0.0.1:9009",
                *base,
            ],
        ),
        "invalid transaction",
        "name",
    )
    one_line_error(
        run(
            tx,
            [
                "add-validator",
                "--name",
                "v9",
                "--public-key",
                NEW_KEY.hex(),
                "--address",
                "no-port",
                *base,
            ],
        ),
        "invalid transaction",
        "address",
    )
    one_line_error(
        run(
            tx,
            ["set-regulator-keys", "--public-key", NEW_KEY.hex(), "--threshold", "2", *base],
        ),
        "--threshold 2 exceeds the 1 --public-key",
    )
    one_line_error(
        run(
            tx,
            [
                "set-regulator-keys",
                "--public-key",
                NEW_KEY.hex(),
                "--public-key",
                NEW_KEY.hex(),
                "--threshold",
                "1",
                *base,
            ],
        ),
        "--public-key",
        "twice",
    )


def test_set_regulator_keys_changes_what_validators_reports(
    node: str, keys: dict[str, Path]
) -> None:
    out = regulator_tx(
        node,
        keys,
        "set-regulator-keys",
        "--public-key",
        pub(REGULATOR).hex(),
        "--public-key",
        pub(REGULATOR_2).hex(),
        "--threshold",
        "2",
    )
    assert out["status"] == "committed"
    info = validators_json(node)
    assert info["regulator_keys"] == [pub(REGULATOR).hex(), pub(REGULATOR_2).hex()]
    assert info["regulator_threshold"] == 2
    assert info["pending_validators"] is None  # no epoch change for regulator keys


def test_query_governance_json_human_and_paging(
    node: str, keys: dict[str, Path], backend: FakeBackend
) -> None:
    backend.autocommit = False
    both = ["--key", str(keys["regulator"]), "--key", str(keys["regulator2"]), "--node", node]
    argv = ["add-validator", "--name", "v4", "--public-key", NEW_KEY.hex()]
    assert run(tx, [*argv, "--address", "127.0.0.1:9004", *both]).exit_code == 0
    backend.commit_block()  # block 1: one record
    rotate = ["rotate-validator-key", "--name", "v1", "--public-key", ROTATED_KEY.hex()]
    assert run(tx, [*rotate, *both]).exit_code == 0
    assert run(tx, ["remove-validator", "--name", "v4", *both]).exit_code == 0
    backend.commit_block()  # block 2: two records

    result = run(query, ["governance", "--node", node, "--json"])
    assert result.exit_code == 0, result.output
    page = json.loads(result.output)
    assert page["next_before_height"] is None
    records = page["records"]
    assert [(r["height"], r["kind"]) for r in records] == [
        (2, "remove_validator"),
        (2, "rotate_validator_key"),
        (1, "add_validator"),
    ]
    add = records[2]
    assert add["args"] == {
        "name": "v4",
        "public_key": NEW_KEY.hex(),
        "address": "127.0.0.1:9004",
    }
    assert add["effective_from_seq"] == 48 + 1
    assert [s["public_key"] for s in add["signatures"]] == [
        pub(REGULATOR).hex(),
        pub(REGULATOR_2).hex(),
    ]
    assert all(len(bytes.fromhex(s["signature"])) == 64 for s in add["signatures"])

    # limit 1 cannot split block 2: its page is both records; then block 1.
    first = json.loads(run(query, ["governance", "--limit", "1", "--node", node, "--json"]).output)
    assert [r["height"] for r in first["records"]] == [2, 2]
    assert first["next_before_height"] == 2
    rest = json.loads(
        run(
            query, ["governance", "--limit", "1", "--before-height", "2", "--node", node, "--json"]
        ).output
    )
    assert [r["kind"] for r in rest["records"]] == ["add_validator"]
    assert rest["next_before_height"] is None

    human = run(query, ["governance", "--limit", "1", "--node", node])
    assert human.exit_code == 0, human.output
    assert "rotate_validator_key" in human.output and ROTATED_KEY.hex() in human.output
    assert pub(REGULATOR_2).hex() in human.output and "49" in human.output
    assert "more: --before-height 2" in human.output
    empty = run(query, ["governance", "--before-height", "1", "--node", node])
    assert "no governance transactions" in empty.output
    result = run(query, ["governance", "--limit", "51", "--node", node])
    assert result.exit_code == 2 and "--limit" in result.output


def test_query_evidence(node: str, backend: FakeBackend) -> None:
    assert "no evidence recorded" in run(query, ["evidence", "--node", node]).output
    record = EvidenceEntry(
        height=7,
        tx_id=bytes([9]) * 32,
        validator="v1",
        public_key=VALIDATORS[1][1],
        epoch=0,
        message_kind="commit",
        view=3,
        seq=5,
        first=b"\x01first",
        second=b"\x02second",
        reporter=VALIDATORS[2][1],
    )
    backend.add_evidence(record)
    out = json.loads(run(query, ["evidence", "--node", node, "--json"]).output)
    assert out == {
        "records": [
            {
                "height": 7,
                "tx_id": "09" * 32,
                "validator": "v1",
                "public_key": VALIDATORS[1][1].hex(),
                "epoch": 0,
                "message_kind": "commit",
                "view": 3,
                "seq": 5,
                "first": b"\x01first".hex(),
                "second": b"\x02second".hex(),
                "reporter": VALIDATORS[2][1].hex(),
            }
        ],
        "next_before_height": None,
    }
    human = run(query, ["evidence", "--node", node]).output
    assert "two commit messages at view 3 seq 5" in human and VALIDATORS[1][1].hex() in human
    backend.add_evidence(dataclasses.replace(record, height=9, seq=6))
    newest = run(query, ["evidence", "--limit", "1", "--node", node])
    assert "seq 6" in newest.output and "more: --before-height 9" in newest.output
    older = json.loads(
        run(query, ["evidence", "--before-height", "9", "--node", node, "--json"]).output
    )
    assert [r["seq"] for r in older["records"]] == [5] and older["next_before_height"] is None
    empty = run(query, ["evidence", "--before-height", "7", "--node", node])
    assert "no evidence recorded below that height" in empty.output


def test_changes_that_cancel_out_still_end_the_epoch(node: str, keys: dict[str, Path]) -> None:
    assert add_v4(node, keys)["status"] == "committed"
    assert regulator_tx(node, keys, "remove-validator", "--name", "v4")["status"] == "committed"
    info = validators_json(node)
    assert info["pending_validators"] is None and info["pending_last_seq"] == 48
    human = run(query, ["validators", "--node", node]).output
    assert "the changes cancel out" in human and "from block 49" in human
