"""Bring a local cluster up: start every process, wait until they serve and a block commits."""

from __future__ import annotations

import hashlib

import nacl.signing
import trio

from config.keyfile import load_key_file
from node.client import AsyncClient, ClientError
from node.cluster.layout import ClusterError
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_heights, wait_ready
from node.tx import Kind

PROBE_KYC_HASH = hashlib.sha256(b"assetledger cluster liveness probe").digest()


async def commit_probe(procs: ClusterProcesses, *, timeout_s: float = 30.0) -> int:
    """Commit one transaction (the regulator registers a fresh probe account); its height.

    A committed block proves 2f+1 validators are connected and agreeing, which a status
    answer alone does not. Tried on each node in turn, so one dead node does not block it."""
    regulator = load_key_file(procs.layout.regulator_key)
    probe = bytes(nacl.signing.SigningKey.generate().verify_key)
    errors: list[str] = []
    with trio.move_on_after(timeout_s):
        for entry in procs.layout.nodes:
            if procs.pid(entry.name) is None:
                continue
            try:
                async with AsyncClient.connect(entry.host, entry.client_port) as client:
                    out = await client.send(
                        Kind.REGISTER_ACCOUNT,
                        {"account": probe, "category": "entity", "kyc_hash": PROBE_KYC_HASH},
                        key=regulator,
                        wait=True,
                        timeout_ms=max(1_000, int(timeout_s * 1000)),
                    )
            except (ClientError, OSError) as exc:
                errors.append(f"{entry.name}: {exc}")
                continue
            if out.status == "committed" and out.height is not None:
                return out.height
            errors.append(f"{entry.name}: probe {out.status} ({out.reason})")
    raise ClusterError(
        f"no block committed within {timeout_s:g} s ({'; '.join(errors) or 'no answer'});"
        f" check the node logs under {procs.layout.root}"
    )


async def validator_names(procs: ClusterProcesses, *, timeout_s: float = 5.0) -> set[str]:
    """Names of the current epoch's validators and of the pending set, as the first running
    node that answers reports them; empty if none answers."""
    with trio.move_on_after(timeout_s):
        for entry in procs.layout.nodes:
            if procs.pid(entry.name) is None:
                continue
            try:
                async with AsyncClient.connect(entry.host, entry.client_port) as client:
                    info = await client.validators()
            except (ClientError, OSError):
                continue
            return {v.name for v in (*info.validators, *(info.pending_validators or ()))}
    return set()


async def bring_up(procs: ClusterProcesses, *, timeout_s: float = 30.0) -> int:
    """Start every stopped node, wait until all serve and the validators agree on a fresh
    block; its height. Nodes the ledger does not list (added but not approved yet, or
    removed) run too, but are not waited for: they cannot follow the chain."""
    procs.start_all()
    await wait_ready(procs, timeout_s=timeout_s)
    height = await commit_probe(procs, timeout_s=timeout_s)
    listed = await validator_names(procs)
    names = [n for n in procs.names if n in listed] or None
    await wait_heights(procs, height, names=names, timeout_s=timeout_s)
    return height
