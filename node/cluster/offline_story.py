"""The offline ledger walk-through (`assetledger demo --data-dir DIR`): no network, one process.

Blocks are applied straight to an LMDB ledger, so every rule can be shown deterministically
(fixed keys and times: every run prints the same). A regulator (2 of 3 signatures)
registers accounts and an issuer, the issuer creates a 10-year state bond token and mints it,
holders transfer, one transfer is rejected with its reason, a freeze and a court-ordered
forced transfer are shown, then balances and supply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nacl.signing
from rich.console import Console
from rich.table import Table

from config.genesis import Genesis, ValidatorSpec
from node.ledger import Block, Ledger, Receipt
from node.tx import Kind, SignedTransaction, make_tx, public_key

CHAIN_ID = "assetledger-demo"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so every run is identical
BLOCK_INTERVAL_MS = 2_000
BOND = "BOND-2036"
DECIMALS = 2
CAP = 1_000_000_000 * 10**DECIMALS  # authorised: 1 billion, in cents


def _key(name: str) -> nacl.signing.SigningKey:
    # Deterministic demo keys (never use derived keys like this for real accounts).
    return nacl.signing.SigningKey(hashlib.sha256(f"assetledger-demo/{name}".encode()).digest())


def _money(units: int) -> str:
    whole, cents = divmod(units, 10**DECIMALS)
    return f"{whole:,}.{cents:0{DECIMALS}d}"


class _Demo:
    def __init__(self, ledger: Ledger, console: Console) -> None:
        self.ledger = ledger
        self.console = console
        self.time_ms = GENESIS_TIME_MS
        self.regulators = [_key(f"regulator-{i}") for i in range(3)]
        self.names: dict[bytes, str] = {}
        self._block: list[SignedTransaction] = []
        self._pending: dict[bytes, int] = {}  # txs queued per signer in the open block

    def name(self, key: nacl.signing.SigningKey, label: str) -> bytes:
        pk = public_key(key)
        self.names[pk] = label
        return pk

    def tx(
        self,
        signer: nacl.signing.SigningKey,
        kind: Kind,
        cosigners: tuple[nacl.signing.SigningKey, ...] = (),
        memo: str | None = None,
        **args: object,
    ) -> SignedTransaction:
        return make_tx(
            kind,
            args,
            signer_key=signer,
            nonce=self.ledger.nonce(public_key(signer)) + self._pending.get(public_key(signer), 0),
            chain_id=CHAIN_ID,
            cosigners=cosigners,
            memo=memo,
        )

    def regulator_tx(self, kind: Kind, **args: Any) -> SignedTransaction:
        # 2-of-3: regulator 0 signs and submits, regulator 2 co-signs.
        return self.queue(self.tx(self.regulators[0], kind, (self.regulators[2],), **args))

    def queue(self, stx: SignedTransaction) -> SignedTransaction:
        signer = stx.body.signer
        self._pending[signer] = self._pending.get(signer, 0) + 1
        self._block.append(stx)
        return stx

    @contextmanager
    def block(self, title: str) -> Iterator[None]:
        self._block = []
        self._pending = {}
        yield
        self.time_ms += BLOCK_INTERVAL_MS
        height = self.ledger.height + 1
        txs = tuple(stx.encode() for stx in self._block)
        receipts = self.ledger.apply_block(
            Block(height=height, timestamp_ms=self.time_ms, txs=txs),
            certificate=None,
        )
        self.console.print(f"[bold]block {height}[/bold] · {title}", soft_wrap=True)
        for stx, receipt in zip(self._block, receipts, strict=True):
            self._show(stx, receipt)

    def _show(self, stx: SignedTransaction, r: Receipt) -> None:
        a = stx.body.args
        parts = [f"{r.kind}"]
        for field in ("account", "to_account", "from_account", "lost_account", "new_account"):
            value = getattr(a, field, None)
            if isinstance(value, bytes):
                parts.append(
                    f"{field.removesuffix('_account') or 'account'}={self.names.get(value, value[:4].hex())}"
                )
        if hasattr(a, "role"):
            parts.append(f"role={a.role}")
        if hasattr(a, "asset_id") and a.asset_id:
            parts.append(a.asset_id)
        if hasattr(a, "amount"):
            parts.append(_money(a.amount))
        if r.order_ref:
            parts.append(f"order {r.order_ref} ({r.reason_code})")
        signers = "+".join(self.names.get(pk, pk[:4].hex()) for pk, _ in stx.signatures)
        line = " ".join(parts)
        if r.applied:
            self.console.print(
                f"  [green]✔ applied [/green] {line}  [dim]signed by {signers}[/dim]",
                soft_wrap=True,
            )
        else:
            self.console.print(
                f"  [red]✘ rejected[/red] {line}  [dim]signed by {signers}[/dim]\n"
                f"      reason: [bold red]{r.reason}[/bold red] — {r.detail}",
                soft_wrap=True,
            )


def run_demo(data_dir: Path, console: Console) -> None:
    regulators = [_key(f"regulator-{i}") for i in range(3)]
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=GENESIS_TIME_MS,
        regulator_keys=tuple(public_key(k) for k in regulators),
        regulator_threshold=2,
        validators=tuple(
            ValidatorSpec(
                name=f"validator-{i}",
                public_key=public_key(_key(f"validator-{i}")),
                address=f"127.0.0.1:{7000 + i}",
            )
            for i in range(4)
        ),
    )
    with Ledger.open(data_dir, genesis) as ledger:
        d = _Demo(ledger, console)
        for i, k in enumerate(regulators):
            d.name(k, f"regulator-{i + 1}")
        treasury = _key("state-treasury")
        alice, bob, custodian = _key("alice"), _key("bob"), _key("custodian-bank")
        ids = {
            "treasury": d.name(treasury, "treasury"),
            "alice": d.name(alice, "alice"),
            "bob": d.name(bob, "bob"),
            "custodian": d.name(custodian, "custodian"),
        }
        kyc = {n: hashlib.sha256(f"kyc-file:{n}".encode()).digest() for n in ids}
        console.print(
            f"[bold]assetledger demo[/bold] · chain {CHAIN_ID} · regulator 2-of-3 · data {data_dir}\n",
            soft_wrap=True,
        )

        with d.block("the regulator registers accounts and appoints an issuer"):
            for n, category in (
                ("treasury", "entity"),
                ("alice", "individual"),
                ("bob", "individual"),
                ("custodian", "intermediary"),
            ):
                d.regulator_tx(
                    Kind.REGISTER_ACCOUNT, account=ids[n], category=category, kyc_hash=kyc[n]
                )
            d.regulator_tx(Kind.GRANT_ROLE, account=ids["treasury"], role="issuer")

        with d.block("the treasury issues a 10-year state bond token"):
            d.queue(
                d.tx(
                    treasury,
                    Kind.CREATE_ASSET,
                    asset_id=BOND,
                    name="State Bond 3.5% 2026-2036",
                    decimals=DECIMALS,
                    cap=CAP,
                    document_hash=hashlib.sha256(b"prospectus BOND-2036").digest(),
                )
            )
            d.queue(
                d.tx(treasury, Kind.MINT, asset_id=BOND, to_account=ids["alice"], amount=250_000_00)
            )
            d.queue(
                d.tx(
                    treasury,
                    Kind.MINT,
                    asset_id=BOND,
                    to_account=ids["custodian"],
                    amount=1_000_000_00,
                )
            )

        with d.block("holders trade; one transfer is refused"):
            d.queue(
                d.tx(
                    alice,
                    Kind.TRANSFER,
                    memo="coupon trade",
                    asset_id=BOND,
                    to_account=ids["bob"],
                    amount=12_500_50,
                )
            )
            d.queue(
                d.tx(bob, Kind.TRANSFER, asset_id=BOND, to_account=ids["alice"], amount=20_000_00)
            )
            d.queue(
                d.tx(
                    custodian, Kind.TRANSFER, asset_id=BOND, to_account=ids["bob"], amount=5_000_00
                )
            )

        with d.block("the regulator freezes bob's account (AML alert)"):
            d.regulator_tx(
                Kind.FREEZE,
                account=ids["bob"],
                asset_id=None,
                reason_code="aml_alert",
                order_ref="FIU-2026-0042",
            )
            d.queue(d.tx(bob, Kind.TRANSFER, asset_id=BOND, to_account=ids["alice"], amount=1_00))

        with d.block("a court orders part of bob's holding moved to the custodian"):
            d.regulator_tx(
                Kind.FORCE_TRANSFER,
                asset_id=BOND,
                from_account=ids["bob"],
                to_account=ids["custodian"],
                amount=10_000_00,
                reason_code="court_order",
                order_ref="COURT-2026-117",
            )

        asset = ledger.asset(BOND)
        assert asset is not None
        table = Table(title=f"{BOND} · {asset.name}")
        table.add_column("account")
        table.add_column("category")
        table.add_column("status")
        table.add_column("balance", justify="right")
        for n, pk in ids.items():
            info = ledger.account(pk)
            assert info is not None
            frozen = ", ".join(f"frozen ({f.order_ref})" for f in info.freezes) or "active"
            table.add_row(n, info.category, frozen, _money(ledger.balance(BOND, pk)))
        table.add_section()
        table.add_row("supply", "", "", _money(asset.supply), style="bold")
        table.add_row("authorised cap", "", "", _money(asset.cap), style="dim")
        console.print()
        console.print(table)
        console.print(
            f"height {ledger.height} · state digest {ledger.state_digest.hex()[:16]}…"
            f" · bob's history: {len(ledger.history(ids['bob']))} transactions"
        )
