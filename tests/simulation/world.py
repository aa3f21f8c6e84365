"""The simulated world: replicas + hosts, network, clients, fault schedule, all from one seed."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import nacl.signing

from consensus import actions as act
from consensus import events as ev
from consensus import messages as m
from consensus.config import ReplicaConfig, ReplicaLimits, ReplicaTimeouts
from consensus.encoding import DecodeLimits, digest
from consensus.epoch_replica import EPOCH_PREFIX_BYTES as EPOCH_PREFIX
from consensus.epoch_replica import frame
from consensus.epochs import signing_domain
from consensus.replica import Replica
from tests.simulation.byzantine import Byzantine
from tests.simulation.checker import Checker
from tests.simulation.host import Host, gov_tx
from tests.simulation.network import LinkFaults, Network

CHAIN_ID = "assetledger-sim"
TRACE_LINES_MAX = 400


def validator_key(index: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(digest(f"sim-validator-{index}".encode()))


_KEYS: dict[int, nacl.signing.SigningKey] = {}


ROTATED = 1000  # key index offset of a validator's second (rotated-to) key


def key_for(index: int) -> nacl.signing.SigningKey:
    if index not in _KEYS:
        _KEYS[index] = validator_key(index)
    return _KEYS[index]


def sim_limits() -> ReplicaLimits:
    return ReplicaLimits(
        checkpoint_interval_seqs=4,
        log_window_seqs=8,
        batch_bytes_max=4096,
        message_bytes_max=256 << 10,
        future_view_messages_per_peer_max=32,
        fetch_blocks_max=16,
    )


def sim_timeouts() -> ReplicaTimeouts:
    return ReplicaTimeouts(
        view_change_timeout_ticks=20,
        request_timeout_ticks=60,
        view_change_backoff_max=3,
        retransmit_interval_ticks=6,
        fetch_retry_ticks=8,
        new_view_resend_ticks=5,
    )


@dataclass(slots=True, kw_only=True)
class Params:
    n: int = 4
    byzantine: dict[str, str] = field(default_factory=dict)  # validator name -> mode
    twins: tuple[str, ...] = ()  # validators that run as two instances with one key
    twin_partition: bool = False  # keep the two copies of each twin on different sides
    replica_class: type[Replica] = Replica
    fault_ticks: int = 160
    liveness_ticks_max: int = 700
    drop_probability: float = 0.05
    duplicate_probability: float = 0.03
    delay_ticks_max: int = 4
    partitions: bool = True
    partition_interval_ticks: int = 35
    crashes: bool = True
    crash_probability: float = 0.02
    crash_primary_bias: float = 0.5
    crash_ticks_max: int = 40
    persist_delay_ticks_max: int = 2
    submit_probability: float = 0.5
    batch_txs_max: int = 4
    pipeline_depth: int = 4
    offer_interval_ticks: int = 5
    stop_at_first_violation: bool = True
    # Governance: `pool` more validators run from the start outside the genesis set (as a new
    # node with an empty data directory would), and `governance` submits (tick, op, name)
    # set changes: op is add | remove | rotate (rotate installs the key index + ROTATED).
    pool: int = 0
    governance: tuple[tuple[int, str, str], ...] = ()
    outage: tuple[str, int, int] | None = None  # (validator, down at tick, back at tick)


class World:
    def __init__(self, seed: int, params: Params) -> None:
        self.seed = seed
        self.chain_id = CHAIN_ID
        self.params = params
        self.rng = random.Random(seed)
        self.now = 0
        self.trace: deque[str] = deque(maxlen=TRACE_LINES_MAX)
        self.submitted: dict[bytes, int] = {}
        self.submitted_order: list[bytes] = []
        self.stats: dict[str, int] = {
            "view_changes": 0,
            "crashes": 0,
            "partitions": 0,
            "fetches": 0,
            "byzantine_injected": 0,
        }
        self.later: list[tuple[int, str, ev.Event]] = []
        self._gov_submitted: list[tuple[str, str]] = []
        names = [f"v{i}" for i in range(params.n + params.pool)]
        validators = tuple(
            (name, bytes(key_for(i).verify_key)) for i, name in enumerate(names[: params.n])
        )
        self.names = names
        self.validators = validators  # of epoch 0
        instances: dict[str, str] = {}
        for name in names:
            if name in params.twins:
                instances[f"{name}#a"] = name
                instances[f"{name}#b"] = name
            else:
                instances[name] = name
        self.network = Network(
            rng=random.Random(self.rng.random()),
            instances=instances,
            faults=LinkFaults(
                drop_probability=params.drop_probability,
                duplicate_probability=params.duplicate_probability,
                delay_ticks_min=1,
                delay_ticks_max=params.delay_ticks_max,
            ),
        )
        self.hosts: dict[str, Host] = {}
        self.byzantine: dict[str, Byzantine] = {}
        for instance, name in instances.items():
            index = names.index(name)
            config = ReplicaConfig(
                chain_id=CHAIN_ID,
                validators=validators,
                name=name,
                limits=sim_limits(),
                timeouts=sim_timeouts(),
                observer_ok=True,  # pool validators start outside the set
            )
            faulty = name in params.byzantine or name in params.twins
            cls = Replica if name in params.byzantine else params.replica_class
            host = Host(
                instance=instance,
                name=name,
                config=config,
                keys={bytes(key_for(i).verify_key): key_for(i) for i in (index, index + ROTATED)},
                replica_class=cls,
                world=self,
                rng=random.Random(self.rng.random()),
                honest=not faulty,
                censors=params.byzantine.get(name) == "censor",
            )
            self.hosts[instance] = host
            if name in params.byzantine:
                self.byzantine[instance] = Byzantine(
                    mode=params.byzantine[name],
                    name=name,
                    key=key_for(index),
                    chain_id=CHAIN_ID,
                    peers=tuple(x for x in names if x != name),
                    rng=random.Random(self.rng.random()),
                    submitted=self.submitted_order,
                )
        self.checker = Checker(self)
        self.decode_limits = DecodeLimits(buffer_bytes_max=256 << 10, bin_bytes_max=256 << 10)
        for host in self.hosts.values():
            host.start()
        if params.twin_partition and params.twins:
            self._twin_split()

    # -- plumbing --------------------------------------------------------------------------

    def validators_of_epoch(self, epoch: int) -> tuple[tuple[str, bytes], ...]:
        for host in self.hosts.values():
            if epoch < len(host.epochs):
                return host.epochs[epoch].validators
        raise AssertionError(f"no host knows epoch {epoch}")

    @property
    def honest(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.honest]

    def note(self, line: str) -> None:
        self.trace.append(f"[t={self.now}] {line}")

    def violation(self, what: str) -> None:
        self.checker.fail(what)

    def observe_commit(self, host: Host, tx: bytes) -> None:
        self.checker.on_commit(host, tx)

    def transmit(self, host: Host, to: str | None, data: bytes) -> None:
        out: list[tuple[str | None, bytes]] = [(to, data)]
        byz = self.byzantine.get(host.instance)
        if byz is not None:
            # The Byzantine wrapper works on bare messages; it speaks in its host's epoch.
            number = host.epochs[-1].number
            byz.chain_id = signing_domain(CHAIN_ID, number)
            out = [(dst, frame(number, x)) for dst, x in byz.outgoing(to, data[EPOCH_PREFIX:])]
        else:
            self.checker.on_send(host, data)
        for dst, payload in out:
            if byz is not None:
                self.checker.on_send(host, payload)
            if dst is None:
                self.network.broadcast(self.now, host.instance, payload)
            else:
                self.network.send(self.now, host.instance, dst, payload)

    def heard_by(self, host: Host) -> frozenset[str]:
        """The validators `host` hears from, as a node's keepalives would tell it (R8b):
        running, and their messages reach it (one-way cuts count from the sender's side)."""
        return frozenset(
            h.name
            for h in self.hosts.values()
            if h.name != host.name
            and not h.crashed
            and self.network.reachable(h.instance, host.instance)
        )

    def fetch(self, host: Host, a: act.FetchBlocks) -> None:
        self.stats["fetches"] += 1
        candidates = [
            h
            for h in self.hosts.values()
            if h.name in a.peers
            and not h.crashed
            and self.network.reachable(host.instance, h.instance)
            and self.network.reachable(h.instance, host.instance)
        ]
        if not candidates:
            return
        peer = self.rng.choice(candidates)
        blocks = [
            ev.FetchedBlock(seq=b.seq, payload=b.payload, certificate=b.certificate)
            for b in peer.blocks[a.from_seq - 1 : a.to_seq]
        ]
        byz = self.byzantine.get(peer.instance)
        if byz is not None and byz.mode == "bad_state_transfer" and blocks:
            byz.injected += 1
            b = blocks[0]
            blocks[0] = ev.FetchedBlock(
                seq=b.seq,
                payload=b.payload + b"\x00",
                certificate=b.certificate,
            )
        self.later.append(
            (
                self.now + self.rng.randint(1, 3),
                host.instance,
                ev.BlocksFetched(blocks=tuple(blocks)),
            )
        )

    # -- faults ----------------------------------------------------------------------------

    def _majority_primary(self) -> str:
        primaries = [h.replica.primary for h in self.honest if h.replica is not None]
        # sorted: set order of strings depends on PYTHONHASHSEED, a seed must replay exactly
        return max(sorted(set(primaries)), key=primaries.count) if primaries else self.names[0]

    def _twin_split(self) -> None:
        instances = list(self.hosts)
        side_a = {i for i in instances if i.endswith("#a")}
        side_b = {i for i in instances if i.endswith("#b")}
        plain = sorted(i for i in instances if "#" not in i)
        for i, inst in enumerate(plain):
            (side_a if i % 2 == 0 else side_b).add(inst)
        self.network.split(side_a, side_b)
        self.note(f"twins partition {sorted(side_a)} | {sorted(side_b)}")

    def _partition_event(self) -> None:
        net = self.network
        net.heal()
        instances = list(self.hosts)
        kind = self.rng.choice(["heal", "halves", "isolate_primary", "one_way"])
        self.stats["partitions"] += 1
        if kind == "halves":
            self.rng.shuffle(instances)
            cut = self.rng.randrange(1, len(instances))
            net.split(set(instances[:cut]), set(instances[cut:]))
        elif kind == "isolate_primary":
            primary = self._majority_primary()
            iso = {i for i, h in self.hosts.items() if h.name == primary}
            net.split(iso, set(instances) - iso)
        elif kind == "one_way":
            src = self.rng.choice(instances)
            net.one_way(src, set(instances) - {src})
        if self.params.twin_partition and self.params.twins:
            self._twin_split()
        self.note(f"partition: {kind} blocked={len(net.blocked)}")

    def _crash_event(self) -> None:
        down = [h for h in self.hosts.values() if h.crashed]
        if down:
            return
        if self.rng.random() < self.params.crash_primary_bias:
            primary = self._majority_primary()
            choices = [h for h in self.hosts.values() if h.name == primary]
        else:
            choices = list(self.hosts.values())
        host = self.rng.choice(choices)
        host.crash()
        self.network.down.add(host.instance)
        self.stats["crashes"] += 1
        self.restart_at = self.now + self.rng.randint(2, self.params.crash_ticks_max)
        self.note(f"crash {host.instance} until t={self.restart_at}")

    def _restart_all(self) -> None:
        for host in self.hosts.values():
            if host.crashed:
                host.start()
                self.network.down.discard(host.instance)
                self.note(f"restart {host.instance} at height {host.height}")

    # -- the loop ----------------------------------------------------------------------------

    restart_at: int = -1

    def _gov_key(self, op: str, name: str) -> bytes:
        index = self.names.index(name)
        return bytes(key_for(index + ROTATED if op == "rotate" else index).verify_key)

    def _submit_governance(self, op: str, name: str) -> None:
        self._gov_submitted.append((op, name))
        self._submit(gov_tx(op, name, self._gov_key(op, name), f"{self.seed}-{self.now}"))
        self.note(f"governance: {op} {name}")

    def _gov_in_effect(self, ledger_set: list[tuple[str, bytes]], op: str, name: str) -> bool:
        current = dict(ledger_set)
        if op == "remove":
            return name not in current
        return current.get(name) == self._gov_key(op, name)

    def governance_done(self) -> bool:
        """Every submitted change is in the set of the latest epoch (at an honest host)."""
        host = next((h for h in self.honest if not h.crashed), None)
        if host is None or host.pending_end is not None:
            return False
        final = list(host.epochs[-1].validators)
        return all(self._gov_in_effect(final, op, name) for op, name in self._gov_submitted)

    def _regulator_retries(self) -> None:
        """Like a regulator: a change the ledger refused (it would have put the quorum at risk
        while another change was pending) is submitted again once that epoch has begun."""
        host = next((h for h in self.honest if not h.crashed), None)
        if host is None or host.pending_end is not None:
            return
        applied = [tx for tx in self.submitted_order if tx.startswith(b"gov|")]
        if not all(tx in host.applied for tx in applied):
            return
        for op, name in list(dict.fromkeys(self._gov_submitted)):
            if not self._gov_in_effect(host.ledger_set, op, name):
                self._submit(gov_tx(op, name, self._gov_key(op, name), f"{self.seed}-{self.now}"))
                self.note(f"governance retry: {op} {name}")
                return  # one at a time, as each may change what the next one needs

    def _submit(self, tx: bytes | None = None) -> None:
        if tx is None:
            tx = f"tx{self.seed}-{len(self.submitted_order)}".encode()
        self.submitted[tx] = self.now
        self.submitted_order.append(tx)
        live = [h for h in self.hosts.values() if not h.crashed]
        if not live:
            return
        entry = self.rng.choice(live)
        for h in live:
            if h is entry or self.network.reachable(entry.instance, h.instance):
                h.mempool.setdefault(tx, self.now)

    def _gossip(self) -> None:
        live = [h for h in self.hosts.values() if not h.crashed]
        for a in live:
            for b in live:
                if a is not b and self.network.reachable(a.instance, b.instance):
                    for t in a.mempool:
                        if t not in b.applied:
                            b.mempool.setdefault(t, self.now)
        # A restarted host learns pending transactions from clients resubmitting them.
        for h in live:
            if not h.mempool and len(h.applied) < len(self.submitted):
                for t in self.submitted_order:
                    if t not in h.applied:
                        h.mempool.setdefault(t, self.now)

    def step(self, *, faulty: bool) -> None:
        self.now += 1
        p = self.params
        for when, op, name in p.governance:
            if when == self.now:
                self._submit_governance(op, name)
        if self._gov_submitted and self.now % 10 == 0:
            self._regulator_retries()
        if p.outage is not None:
            name, down, up = p.outage
            host = self.hosts[name]
            if self.now == down:
                host.crash()
                self.network.down.add(name)
                self.note(f"outage: {name} down until t={up}")
            elif self.now == up:
                host.start()
                self.network.down.discard(name)
                self.note(f"outage over: {name} back at height {host.height}")
        if faulty:
            if p.submit_probability and self.rng.random() < p.submit_probability:
                self._submit()
            if p.partitions and self.now % p.partition_interval_ticks == 0:
                self._partition_event()
            if p.crashes and self.rng.random() < p.crash_probability:
                self._crash_event()
            if self.restart_at == self.now:
                self._restart_all()
        if self.now % 5 == 0:
            self._gossip()
        for src, dst, data in self.network.due(self.now):
            host = self.hosts[dst]
            byz = self.byzantine.get(dst)
            if byz is not None:
                byz.record(data[EPOCH_PREFIX:])
            host.inbox.append(ev.MessageReceived(sender=self.hosts[src].name, data=data))
        if self.later:
            keep = []
            for when, inst, event in self.later:
                if when <= self.now:
                    if not self.hosts[inst].crashed:
                        self.hosts[inst].inbox.append(event)
                else:
                    keep.append((when, inst, event))
            self.later = keep
        order = list(self.hosts.values())
        self.rng.shuffle(order)
        for host in order:
            if host.crashed:
                continue
            host.run_inbox()
            host.report_reachable(self.heard_by(host))
            host.tick(self.now)
            byz = self.byzantine.get(host.instance)
            if byz is not None:
                byz.chain_id = signing_domain(CHAIN_ID, host.epochs[-1].number)
                for to, bare in byz.on_tick(self.now):
                    data = frame(host.epochs[-1].number, bare)
                    if to is None:
                        self.network.broadcast(self.now, host.instance, data)
                    else:
                        self.network.send(self.now, host.instance, to, data)

    def calm(self) -> None:
        """Faults stop: heal the network, restart everyone, deliver reliably."""
        self.network.heal()
        self._restart_all()
        self.network.faults = LinkFaults(delay_ticks_min=1, delay_ticks_max=2)
        self.note("faults stop")

    def converged(self) -> bool:
        honest = [h for h in self.honest if not h.crashed]
        if not honest:
            return True
        heights = {h.height for h in honest}
        if len(heights) != 1 or any(h.pending_end is not None for h in honest):
            return False
        if self._gov_submitted and not self.governance_done():
            return False
        return all(len(h.applied) == len(self.submitted) for h in honest)

    def decode(self, data: bytes) -> m.Message | None:
        """Decode a message as sent on the wire (with its epoch prefix)."""
        try:
            return m.decode_message(
                data[EPOCH_PREFIX:],
                limits=self.decode_limits,
                n=self.params.n + self.params.pool,
                window=64,
            )
        except m.MessageError:
            return None
