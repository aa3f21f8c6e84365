"""Rotate a local cluster node's validator key in two steps, around the regulator's approval.

1. `prepare_rotation` writes DIR/NAME/validator.next.key (a new key, 0600) next to the node's
   key; the node keeps running with its old key. The regulator approves the new public key
   (`assetledger tx rotate-validator-key`); the change takes effect at the next epoch
   boundary B (consensus/epochs.py): the old key signs through block B, the new one from B+1.
2. `switch_key` (the node stopped) retires the old key file as
   DIR/NAME/validator.<first 16 hex digits of the old public key>.retired.key, moves the next
   key into place and records the new public key in the manifest. The node's config keeps
   naming DIR/NAME/validator.key, so a plain restart uses the new key from then on.

Switching before B is allowed: the node then follows as an observer until B (its new key is
not in the current epoch's set), and votes again from B+1.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import trio

from config.keyfile import KeyFileError, generate_key_file, load_key_file
from node.api.governance_results import ValidatorSetInfo
from node.client import AsyncClient, ClientError
from node.cluster.layout import ClusterError, ClusterLayout

NEXT_KEY_FILE = "validator.next.key"
ASK_TIMEOUT_S = 3.0


def next_key_file(layout: ClusterLayout, name: str) -> Path:
    return layout.node_dir(name) / NEXT_KEY_FILE


def retired_key_file(layout: ClusterLayout, name: str, public_key_hex: str) -> Path:
    return layout.node_dir(name) / f"validator.{public_key_hex[:16]}.retired.key"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRotation:
    name: str
    old_public_key: bytes
    new_public_key: bytes
    next_key_file: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchedKey:
    layout: ClusterLayout  # the manifest with the node's new public key
    name: str
    old_public_key: bytes
    new_public_key: bytes
    retired_key_file: Path


def prepared_key(layout: ClusterLayout, name: str) -> bytes | None:
    """The public key waiting in `name`'s next-key file, None if there is none."""
    path = next_key_file(layout, name)
    if not path.exists():
        return None
    try:
        return bytes(load_key_file(path).verify_key)
    except KeyFileError as exc:
        raise ClusterError(str(exc)) from exc


def prepare_rotation(root: Path, name: str) -> PreparedRotation:
    """Create `name`'s next key. ClusterError if one is already prepared (finish or delete it)."""
    layout = ClusterLayout.load(root)
    entry = layout.node(name)
    path = next_key_file(layout, name)
    pending = prepared_key(layout, name)
    if pending is not None:
        raise ClusterError(
            f"{path} already exists: a rotation of {name} to key {pending.hex()} is prepared;"
            f" finish it (`assetledger cluster restart --dir {layout.root} {name} --switch-key`)"
            " or delete that file"
        )
    try:
        key = generate_key_file(path)
    except KeyFileError as exc:
        raise ClusterError(str(exc)) from exc
    return PreparedRotation(
        name=name,
        old_public_key=bytes.fromhex(entry.public_key),
        new_public_key=bytes(key.verify_key),
        next_key_file=path,
    )


def switch_key(root: Path, name: str) -> SwitchedKey:
    """Put `name`'s prepared key in place of its key file (the node must not be running)."""
    layout = ClusterLayout.load(root)
    with ClusterLayout.locked(layout.root):
        layout = ClusterLayout.load(root)
        entry = layout.node(name)
        new_key = prepared_key(layout, name)
        if new_key is None:
            raise ClusterError(
                f"{name} has no prepared key ({next_key_file(layout, name)});"
                f" create one with `assetledger cluster rotate-key --dir {layout.root} {name}`"
            )
        current = layout.key_file(name)
        try:
            old_key = bytes(load_key_file(current).verify_key)
        except KeyFileError as exc:
            raise ClusterError(str(exc)) from exc
        retired = retired_key_file(layout, name, old_key.hex())
        if retired.exists():
            raise ClusterError(f"{retired} already exists; refusing to overwrite a retired key")
        os.replace(current, retired)
        os.replace(next_key_file(layout, name), current)
        nodes = tuple(
            dataclasses.replace(n, public_key=new_key.hex()) if n.name == entry.name else n
            for n in layout.nodes
        )
        layout = dataclasses.replace(layout, nodes=nodes)
        layout.save()
    return SwitchedKey(
        layout=layout,
        name=name,
        old_public_key=old_key,
        new_public_key=new_key,
        retired_key_file=retired,
    )


class KeyApproval(StrEnum):
    CURRENT = "current"  # the epoch governing the next block has it: it signs now
    PENDING = "pending"  # the ledger's set has it: it signs from pending_last_seq + 1
    NONE = "none"  # the ledger does not know it (the rotation is not committed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalAnswer:
    approval: KeyApproval
    asked: str  # the node that answered
    info: ValidatorSetInfo


def approval_in(info: ValidatorSetInfo, name: str, public_key: bytes) -> KeyApproval:
    if any(v.name == name and v.public_key == public_key for v in info.validators):
        return KeyApproval.CURRENT
    pending = info.pending_validators or ()
    if any(v.name == name and v.public_key == public_key for v in pending):
        return KeyApproval.PENDING
    return KeyApproval.NONE


async def key_approval(
    layout: ClusterLayout, name: str, public_key: bytes, *, timeout_s: float = ASK_TIMEOUT_S
) -> ApprovalAnswer:
    """Ask the cluster's nodes (`name` first) whether the ledger approves `public_key` for
    `name`; the first node that answers decides. ClusterError if none answers."""
    order = [layout.node(name), *(n for n in layout.nodes if n.name != name)]
    errors: list[str] = []
    for entry in order:
        try:
            with trio.fail_after(timeout_s):
                async with AsyncClient.connect(
                    entry.host,
                    entry.client_port,
                    connect_timeout_s=timeout_s,
                    request_timeout_s=timeout_s,
                ) as client:
                    info = await client.validators()
        except (ClientError, OSError, trio.TooSlowError) as exc:
            errors.append(f"{entry.name}: {exc or type(exc).__name__}")
            continue
        return ApprovalAnswer(
            approval=approval_in(info, name, public_key), asked=entry.name, info=info
        )
    raise ClusterError(
        "no node answered to check the ledger's validator set (" + "; ".join(errors) + ")"
    )
