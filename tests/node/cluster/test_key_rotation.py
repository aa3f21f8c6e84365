"""`cluster rotate-key` / `restart --switch-key`: the key files and the manifest."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.keyfile import load_key_file
from node.api.governance_results import ValidatorEntry, ValidatorSetInfo
from node.cli.main import cli
from node.cluster.init import init_cluster
from node.cluster.key_rotation import (
    KeyApproval,
    approval_in,
    next_key_file,
    prepare_rotation,
    retired_key_file,
    switch_key,
)
from node.cluster.layout import ClusterError, ClusterLayout


@pytest.fixture
def layout(tmp_path: Path) -> ClusterLayout:
    return init_cluster(tmp_path / "c", nodes=4, base_port=30500)


def _pub(path: Path) -> bytes:
    return bytes(load_key_file(path).verify_key)


def test_prepare_then_switch_moves_the_keys_and_updates_the_manifest(
    layout: ClusterLayout,
) -> None:
    old = _pub(layout.key_file("node-1"))
    prepared = prepare_rotation(layout.root, "node-1")
    assert prepared.old_public_key == old
    assert prepared.next_key_file == next_key_file(layout, "node-1")
    assert stat.S_IMODE(prepared.next_key_file.stat().st_mode) == 0o600
    assert _pub(prepared.next_key_file) == prepared.new_public_key != old
    assert _pub(layout.key_file("node-1")) == old  # the running node keeps its key
    with pytest.raises(ClusterError, match=r"already exists.*prepared"):
        prepare_rotation(layout.root, "node-1")

    switched = switch_key(layout.root, "node-1")
    assert (switched.old_public_key, switched.new_public_key) == (old, prepared.new_public_key)
    assert switched.retired_key_file == retired_key_file(layout, "node-1", old.hex())
    assert _pub(switched.retired_key_file) == old
    assert _pub(layout.key_file("node-1")) == prepared.new_public_key
    assert not next_key_file(layout, "node-1").exists()
    reloaded = ClusterLayout.load(layout.root)
    assert reloaded.node("node-1").public_key == prepared.new_public_key.hex()
    assert reloaded.node("node-2") == layout.node("node-2")
    assert switched.layout == reloaded


def test_switching_without_a_prepared_key_or_for_an_unknown_node_is_refused(
    layout: ClusterLayout,
) -> None:
    with pytest.raises(ClusterError, match=r"no prepared key.*rotate-key"):
        switch_key(layout.root, "node-1")
    with pytest.raises(ClusterError, match="no node 'node-9'"):
        prepare_rotation(layout.root, "node-9")


def _entry(name: str, key: bytes) -> ValidatorEntry:
    return ValidatorEntry(name=name, public_key=key, address="127.0.0.1:1")


def test_approval_reads_the_current_epoch_then_the_pending_set() -> None:
    a, b, c = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    info = ValidatorSetInfo(
        height=10,
        epoch=1,
        first_seq=5,
        last_seq=None,
        validators=(_entry("n1", a),),
        pending_validators=(_entry("n1", b),),
        pending_last_seq=48,
        regulator_keys=(c,),
        regulator_threshold=1,
    )
    assert approval_in(info, "n1", a) is KeyApproval.CURRENT
    assert approval_in(info, "n1", b) is KeyApproval.PENDING
    assert approval_in(info, "n1", c) is KeyApproval.NONE
    assert approval_in(info, "n2", a) is KeyApproval.NONE  # a key is approved for a name


def test_the_commands_print_the_key_and_refuse_an_unapproved_switch(
    layout: ClusterLayout,
) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["cluster", "rotate-key", "--dir", str(layout.root), "node-2"])
    assert out.exit_code == 0, out.output
    new = _pub(next_key_file(layout, "node-2")).hex()
    assert new in out.output and "--switch-key" in out.output
    again = runner.invoke(
        cli, ["cluster", "rotate-key", "--dir", str(layout.root), "node-2", "--json"]
    )
    assert again.exit_code != 0 and "already exists" in again.output
    # Nothing runs, so nobody can confirm the ledger approves the new key: no switch.
    switch = runner.invoke(
        cli, ["cluster", "restart", "--dir", str(layout.root), "node-2", "--switch-key"]
    )
    assert switch.exit_code != 0 and "no node answered" in switch.output
    assert _pub(layout.key_file("node-2")).hex() == layout.node("node-2").public_key
    missing = runner.invoke(
        cli, ["cluster", "restart", "--dir", str(layout.root), "node-3", "--switch-key"]
    )
    assert missing.exit_code != 0 and "no prepared key" in missing.output
    shown = runner.invoke(
        cli, ["cluster", "rotate-key", "--dir", str(layout.root), "node-3", "--json"]
    )
    data = json.loads(shown.stdout)
    assert data["public_key"] == _pub(next_key_file(layout, "node-3")).hex()
    assert data["old_public_key"] == layout.node("node-3").public_key
