"""Shared steps of the end-to-end tests: accounts and an asset, load, convergence checks."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import nacl.signing
import trio

from config.keyfile import load_key_file
from node.api.results import FinalityProof, StatusInfo
from node.client import AsyncClient, ClientError
from node.client.errors import ConnectionLostError
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_for
from node.tx import Kind

ASSET = "BOND-2036"
KYC = hashlib.sha256(b"e2e kyc").digest()
CONVERGE_TIMEOUT_S = 30.0


def connect(procs: ClusterProcesses, name: str) -> AbstractAsyncContextManager[AsyncClient]:
    entry = procs.layout.node(name)
    return AsyncClient.connect(entry.host, entry.client_port, request_timeout_s=20)


@dataclass
class Acked:
    """Transactions the cluster acknowledged as final (tx id -> height), and the accounts whose
    history each must be in, where the caller said."""

    txs: dict[bytes, int] = field(default_factory=dict)
    touched: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)

    def add(self, tx_id: bytes, height: int | None, touched: tuple[bytes, ...] = ()) -> None:
        assert height is not None
        self.txs[tx_id] = height
        if touched:
            self.touched[tx_id] = touched


async def setup_holders(
    procs: ClusterProcesses, holders: list[nacl.signing.SigningKey], *, each: int, via: str
) -> Acked:
    """Regulator registers the holders; the issuer creates ASSET and mints `each` to them."""
    regulator = load_key_file(procs.layout.regulator_key)
    issuer = load_key_file(procs.layout.issuer_key)
    acked = Acked()
    async with connect(procs, via) as c:
        for h in holders:
            out = await c.send(
                Kind.REGISTER_ACCOUNT,
                {"account": bytes(h.verify_key), "category": "individual", "kyc_hash": KYC},
                key=regulator,
                wait=True,
            )
            assert out.status == "committed", out
            acked.add(out.tx_id, out.height, (bytes(h.verify_key),))
        out = await c.send(
            Kind.CREATE_ASSET,
            {"asset_id": ASSET, "name": "State bond 2036", "decimals": 2, "cap": 10**12},
            key=issuer,
            wait=True,
        )
        assert out.status == "committed", out
        acked.add(out.tx_id, out.height, (bytes(issuer.verify_key),))
        for h in holders:
            out = await c.send(
                Kind.MINT,
                {"asset_id": ASSET, "to_account": bytes(h.verify_key), "amount": each},
                key=issuer,
                wait=True,
            )
            assert out.status == "committed", out
            acked.add(out.tx_id, out.height, (bytes(issuer.verify_key), bytes(h.verify_key)))
    return acked


async def transfer_load(
    procs: ClusterProcesses,
    holders: list[nacl.signing.SigningKey],
    *,
    via: list[str],
    acked: Acked,
    stop: trio.Event,
    timeout_ms: int = 5_000,
) -> None:
    """Each holder sends 1-unit transfers to the next one, one at a time, until `stop`.

    Holder i talks to node via[i % len(via)], reconnecting while that node is down. Only
    transactions committed with a receipt count as acknowledged; a wait that times out (e.g.
    across a view change) is not counted."""
    pubs = [bytes(h.verify_key) for h in holders]

    async def sender(i: int) -> None:
        while not stop.is_set():
            try:
                async with connect(procs, via[i % len(via)]) as c:
                    await send_until_stopped(c, i)
            except (ConnectionLostError, OSError):
                # Our node is down (a drill killed or cut it): try again, it may come back.
                await trio.sleep(0.1)
            except ClientError:
                await trio.sleep(0.1)

    async def send_until_stopped(c: AsyncClient, i: int) -> None:
        while not stop.is_set():
            try:
                out = await c.send(
                    Kind.TRANSFER,
                    {"asset_id": ASSET, "to_account": pubs[(i + 1) % len(pubs)], "amount": 1},
                    key=holders[i],
                    wait=True,
                    timeout_ms=timeout_ms,
                )
            except ConnectionLostError:
                raise
            except ClientError:
                c._nonces.clear()  # ask the node for the nonce again
                await trio.sleep(0.05)
                continue
            if out.status == "committed":
                acked.add(out.tx_id, out.height, (pubs[i], pubs[(i + 1) % len(pubs)]))
            elif out.status == "rejected" and out.height is None:
                c._nonces.clear()  # refused at admission (e.g. a nonce we guessed wrong)

    async with trio.open_nursery() as nursery:
        for i in range(len(holders)):
            nursery.start_soon(sender, i)


async def converged(
    procs: ClusterProcesses, *, timeout_s: float = CONVERGE_TIMEOUT_S
) -> StatusInfo:
    """Wait until every node reports the same height and state digest; that status."""
    statuses = await wait_for(
        procs,
        lambda s: (
            len(s) == len(procs.names)
            and len({(i.height, i.state_digest) for i in s.values()}) == 1
        ),
        timeout_s=timeout_s,
        what="every node at the same height and state digest",
    )
    return next(iter(statuses.values()))


async def assert_everything_everywhere(
    procs: ClusterProcesses, acked: Acked, holders: list[nacl.signing.SigningKey], supply: int
) -> None:
    """Every acknowledged tx has the same receipt height on every node; balances sum to supply;
    block hashes agree at every height; every node gives each account the same history, and
    each acknowledged tx is in the history of every account it touched."""
    top = await converged(procs)
    pubs = [bytes(h.verify_key) for h in holders]
    hashes: dict[int, set[bytes]] = {}
    histories: dict[str, list[list[bytes]]] = {}
    for name in procs.names:
        async with connect(procs, name) as c:
            for tx_id, height in acked.txs.items():
                receipt = await c.receipt(tx_id)
                assert receipt.height == height, (name, tx_id.hex(), receipt.height, height)
            expected: dict[bytes, set[bytes]] = {p: set() for p in pubs}
            for tx_id, accounts in acked.touched.items():
                for account in accounts:
                    expected.setdefault(account, set()).add(tx_id)
            histories[name] = [await _whole_history(c, a) for a in sorted(expected)]
            for account, history in zip(sorted(expected), histories[name], strict=True):
                missing = expected[account] - set(history)
                assert not missing, (name, account.hex(), f"{len(missing)} txs not in history")
            balances = [await c.balance(ASSET, p) for p in pubs]
            asset = await c.asset(ASSET)
            assert sum(balances) == asset.supply == supply, (name, balances, asset.supply)
            for h in range(1, top.height + 1, max(1, top.height // 20)):
                hashes.setdefault(h, set()).add((await c.block(h)).block_hash)
            hashes.setdefault(top.height, set()).add((await c.block(top.height)).block_hash)
    assert all(len(v) == 1 for v in hashes.values()), "block hashes differ between nodes"
    assert len({repr(h) for h in histories.values()}) == 1, "histories differ between nodes"


async def _whole_history(c: AsyncClient, account: bytes) -> list[bytes]:
    """Every tx id in `account`'s history, newest first, page by page."""
    out: list[bytes] = []
    cursor = None
    while True:
        page = await c.history(account, limit=1000, cursor=cursor)
        out += page.tx_ids
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def verify_all_blocks(
    procs: ClusterProcesses, name: str, top: int, status: StatusInfo
) -> None:
    """Every block 1..top served by `name` carries a commit certificate that verifies."""
    validators = tuple((v.name, v.public_key) for v in status.validators)
    async with connect(procs, name) as c:
        for h in range(1, top + 1):
            b = await c.block(h)
            proof = FinalityProof(
                height=b.height, block_hash=b.block_hash, certificate=b.certificate
            )
            c.verify_finality(proof, validators, status.chain_id)


def first_fetch_from(procs: ClusterProcesses, name: str) -> int:
    """`from_seq` of the first state transfer `name` asked for since its latest start.

    1 proves the node started on an empty store (a status poll cannot: the transfer may have
    moved its height before the first answer). Parses the `text` log format, which the e2e
    clusters use (tests/e2e/conftest.py); call it once the transfer has certainly begun."""
    log = procs.layout.log_file(name).read_text(errors="replace")
    latest_start = log.rsplit(f"--- starting {name}", 1)[-1]
    for line in latest_start.splitlines():
        if " state transfer requested " in line:
            match = re.search(r"\bfrom_seq=(\d+)\b", line)
            if match is None:
                raise AssertionError(f"{name}: no from_seq in {line!r} (is the log format text?)")
            return int(match.group(1))
    raise AssertionError(
        f"{name} logged no `state transfer requested` since its latest start"
        " (is the log format text?)"
    )


def metric(procs: ClusterProcesses, name: str, series: str) -> float:
    """One series of node `name`'s metrics (0 when absent)."""
    entry = procs.layout.node(name)
    url = f"http://{entry.host}:{entry.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text: bytes = response.read()
    prefix = series.encode() + b" "
    line = next((x for x in text.splitlines() if x.startswith(prefix)), None)
    return 0.0 if line is None else float(line[len(prefix) :])
