"""The regulated-asset story that `assetledger demo` tells, over the wire, to a real cluster.

The regulator registers the issuer's reserve account, two intermediaries and two holders (the
issuer itself is in the genesis); the issuer creates a capped state bond token and mints;
holders transfer; an overdrawn transfer is refused with its reason; the regulator freezes an
account and a court-ordered forced transfer moves part of its holding; a validator is killed
with kill -9, the others keep finalising, and it restarts and catches up.

Every transaction is submitted and waited for; each line shows the block it was finalised in,
the time from submit to finality, and that its commit certificate verified against the
validator set.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import nacl.signing
import trio
from rich.console import Console
from rich.table import Table

from config.keyfile import load_key_file
from node.client import AsyncClient, SendOutcome
from node.cluster.bootstrap import bring_up
from node.cluster.layout import ClusterError
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_for, wait_heights, wait_ready
from node.tx import Kind

BOND = "BOND-2036"
DECIMALS = 2
CAP = 1_000_000_000 * 10**DECIMALS  # authorised: 1 billion, in cents
STEP_TIMEOUT_MS = 15_000
CATCH_UP_TIMEOUT_S = 20.0


def money(units: int) -> str:
    whole, cents = divmod(units, 10**DECIMALS)
    return f"{whole:,}.{cents:0{DECIMALS}d}"


class StoryError(ClusterError):
    """A step of the story did not turn out as the story says it must."""


@dataclass(frozen=True, slots=True)
class Party:
    label: str
    key: nacl.signing.SigningKey
    category: str

    @property
    def pub(self) -> bytes:
        return bytes(self.key.verify_key)


class Story:
    def __init__(self, procs: ClusterProcesses, console: Console) -> None:
        self.procs = procs
        self.console = console
        self.layout = procs.layout
        self.regulator = load_key_file(self.layout.regulator_key)
        self.issuer = load_key_file(self.layout.issuer_key)
        # Fresh keys each run: the accounts are new on every (new) cluster anyway.
        self.parties = {
            label: Party(label, nacl.signing.SigningKey.generate(), category)
            for label, category in (
                ("treasury-reserve", "entity"),
                ("custodian-bank", "intermediary"),
                ("broker", "intermediary"),
                ("alice", "individual"),
                ("bob", "individual"),
            )
        }
        self.names = {p.pub: p.label for p in self.parties.values()}
        self.names[bytes(self.issuer.verify_key)] = "issuer"
        self._validators: tuple[tuple[str, bytes], ...] = ()
        self._chain_id = ""

    def p(self, label: str) -> bytes:
        return self.parties[label].pub

    # ------------------------------------------------------------------ output

    def chapter(self, title: str) -> None:
        self.console.print(f"\n[bold cyan]▸ {title}[/bold cyan]")

    async def step(
        self,
        client: AsyncClient,
        what: str,
        kind: Kind,
        args: dict[str, Any],
        *,
        key: nacl.signing.SigningKey,
        expect: str = "committed",
        memo: str | None = None,
    ) -> SendOutcome:
        started = time.monotonic()
        with self.console.status(f"  {what} …"):
            out = await client.send(
                kind, args, key=key, memo=memo, wait=True, timeout_ms=STEP_TIMEOUT_MS
            )
        elapsed_ms = (time.monotonic() - started) * 1000
        where = f"block {out.height}" if out.height is not None else "refused at admission"
        proof = ""
        if out.receipt is not None and out.receipt.proof is not None:
            client.verify_finality(out.receipt, self._validators, self._chain_id)
            proof = " · certificate ✔"
        if out.status == "committed":
            self.console.print(
                f"  [green]✔[/green] {what}  [dim]{where} · {elapsed_ms:.0f} ms{proof}[/dim]",
                soft_wrap=True,
            )
        else:
            self.console.print(
                f"  [red]✘[/red] {what}  [dim]{where} · {elapsed_ms:.0f} ms{proof}[/dim]\n"
                f"      refused: [bold red]{out.reason}[/bold red]",
                soft_wrap=True,
            )
        if out.status != expect:
            raise StoryError(
                f"{what}: expected {expect}, got {out.status} (reason {out.reason});"
                f" see the node logs under {self.layout.root}"
            )
        return out

    # ------------------------------------------------------------------ the story

    async def run(self) -> None:
        entry = self.layout.nodes[1 % len(self.layout.nodes)]  # a backup: it must reach the primary
        async with AsyncClient.connect(entry.host, entry.client_port) as c:
            status = await c.status()
            self._chain_id = status.chain_id
            self._validators = tuple((v.name, v.public_key) for v in status.validators)
            self.console.print(
                f"client connected to {entry.name} ({entry.client}) · chain {status.chain_id}"
                f" · {len(self._validators)} validators · primary {status.primary}"
            )
            await self.onboarding(c)
            await self.issuance(c)
            await self.trading(c)
            await self.enforcement(c)
            await self.crash_and_recover(c)
            await self.summary(c)

    async def onboarding(self, c: AsyncClient) -> None:
        self.chapter("the regulator registers accounts (the issuer is in the genesis)")
        for party in self.parties.values():
            kyc = hashlib.sha256(f"kyc-file:{party.label}".encode()).digest()
            await self.step(
                c,
                f"register {party.label} ({party.category})",
                Kind.REGISTER_ACCOUNT,
                {"account": party.pub, "category": party.category, "kyc_hash": kyc},
                key=self.regulator,
            )

    async def issuance(self, c: AsyncClient) -> None:
        self.chapter(f"the issuer creates {BOND}, capped at {money(CAP)}, and mints")
        await self.step(
            c,
            f"create {BOND} 'State Bond 3.5% 2026-2036' (2 decimals, cap {money(CAP)})",
            Kind.CREATE_ASSET,
            {
                "asset_id": BOND,
                "name": "State Bond 3.5% 2026-2036",
                "decimals": DECIMALS,
                "cap": CAP,
                "document_hash": hashlib.sha256(b"prospectus BOND-2036").digest(),
            },
            key=self.issuer,
        )
        for label, amount in (
            ("treasury-reserve", 5_000_000_00),
            ("custodian-bank", 1_000_000_00),
            ("alice", 250_000_00),
        ):
            await self.step(
                c,
                f"mint {money(amount)} to {label}",
                Kind.MINT,
                {"asset_id": BOND, "to_account": self.p(label), "amount": amount},
                key=self.issuer,
            )

    async def trading(self, c: AsyncClient) -> None:
        self.chapter("holders trade; one transfer is refused")
        for sender, receiver, amount in (
            ("alice", "bob", 12_500_50),
            ("custodian-bank", "broker", 40_000_00),
            ("broker", "bob", 5_000_00),
        ):
            await self.step(
                c,
                f"{sender} → {receiver} {money(amount)}",
                Kind.TRANSFER,
                {"asset_id": BOND, "to_account": self.p(receiver), "amount": amount},
                key=self.parties[sender].key,
            )
        await self.step(
            c,
            f"bob → alice {money(50_000_00)} (more than bob holds)",
            Kind.TRANSFER,
            {"asset_id": BOND, "to_account": self.p("alice"), "amount": 50_000_00},
            key=self.parties["bob"].key,
            expect="rejected",
        )

    async def enforcement(self, c: AsyncClient) -> None:
        self.chapter("an AML alert: the regulator freezes bob; a court orders a transfer")
        await self.step(
            c,
            "freeze bob (reason aml_alert, order FIU-2026-0042)",
            Kind.FREEZE,
            {
                "account": self.p("bob"),
                "asset_id": None,
                "reason_code": "aml_alert",
                "order_ref": "FIU-2026-0042",
            },
            key=self.regulator,
        )
        await self.step(
            c,
            f"bob → alice {money(1_00)} while frozen",
            Kind.TRANSFER,
            {"asset_id": BOND, "to_account": self.p("alice"), "amount": 1_00},
            key=self.parties["bob"].key,
            expect="rejected",
        )
        await self.step(
            c,
            f"forced transfer bob → custodian-bank {money(10_000_00)}"
            " (court_order, order COURT-2026-117)",
            Kind.FORCE_TRANSFER,
            {
                "asset_id": BOND,
                "from_account": self.p("bob"),
                "to_account": self.p("custodian-bank"),
                "amount": 10_000_00,
                "reason_code": "court_order",
                "order_ref": "COURT-2026-117",
            },
            key=self.regulator,
        )

    async def crash_and_recover(self, c: AsyncClient) -> None:
        victim = self.layout.nodes[-1].name  # a backup in view 0; the client is on node-1
        self.chapter(f"a validator crashes: kill -9 {victim}")
        pid = await trio.to_thread.run_sync(self.procs.kill, victim)
        self.console.print(f"  [yellow]✘ {victim} killed[/yellow] (pid {pid}, SIGKILL)")
        for sender, receiver, amount in (
            ("alice", "broker", 7_500_00),
            ("treasury-reserve", "custodian-bank", 250_000_00),
            ("broker", "alice", 2_000_00),
        ):
            await self.step(
                c,
                f"{sender} → {receiver} {money(amount)} with {victim} down",
                Kind.TRANSFER,
                {"asset_id": BOND, "to_account": self.p(receiver), "amount": amount},
                key=self.parties[sender].key,
            )
        top = (await c.status()).height
        self.chapter(f"{victim} restarts from its data directory and catches up")
        started = time.monotonic()
        await trio.to_thread.run_sync(self.procs.start, victim)
        ready = await wait_ready(self.procs, [victim], timeout_s=CATCH_UP_TIMEOUT_S)
        self.console.print(
            f"  {victim} is back (pid {self.procs.pid(victim)}) at height {ready[victim].height};"
            f" the others are at {top}"
        )
        with self.console.status(f"  {victim} catching up to height {top} …"):
            statuses = await wait_heights(
                self.procs, top, names=[victim], timeout_s=CATCH_UP_TIMEOUT_S
            )
        elapsed_ms = (time.monotonic() - started) * 1000
        self.console.print(
            f"  [green]✔[/green] {victim} reached height {statuses[victim].height}"
            f" [dim]({elapsed_ms:.0f} ms after restart, every certificate verified)[/dim]"
        )
        await self.step(
            c,
            f"alice → broker {money(1_000_00)} with every validator back",
            Kind.TRANSFER,
            {"asset_id": BOND, "to_account": self.p("broker"), "amount": 1_000_00},
            key=self.parties["alice"].key,
        )

    async def summary(self, c: AsyncClient) -> None:
        asset = await c.asset(BOND)
        table = Table(title=f"{BOND} · {asset.name}")
        table.add_column("account")
        table.add_column("category")
        table.add_column("status")
        table.add_column("balance", justify="right")
        total = 0
        for party in self.parties.values():
            info = await c.account(party.pub)
            balance = await c.balance(BOND, party.pub)
            total += balance
            state = "frozen" if info.frozen else "active"
            table.add_row(party.label, party.category, state, money(balance))
        table.add_section()
        table.add_row("supply", "", "", money(asset.supply), style="bold")
        table.add_row("authorised cap", "", "", money(asset.cap), style="dim")
        self.console.print()
        self.console.print(table)
        if total != asset.supply:
            raise StoryError(f"balances sum to {money(total)} but supply is {money(asset.supply)}")
        statuses = await wait_for(
            self.procs,
            lambda s: (
                len(s) == len(self.layout.nodes)
                and len({(i.height, i.state_digest) for i in s.values()}) == 1
            ),
            timeout_s=CATCH_UP_TIMEOUT_S,
            what="every node at the same height and state digest",
        )
        any_status = next(iter(statuses.values()))
        self.console.print(
            f"all {len(statuses)} validators at height {any_status.height} with state digest"
            f" {any_status.state_digest.hex()[:16]}… · sum of balances = supply ✔"
        )


async def run_story(procs: ClusterProcesses, console: Console) -> None:
    """Start the cluster's processes, wait for a first block, tell the story."""
    with console.status("starting 4 validator processes, waiting for a first block …"):
        height = await bring_up(procs)
    console.print(f"[green]cluster up[/green]: every validator committed block {height}")
    await Story(procs, console).run()
