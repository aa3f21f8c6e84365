"""Scenarios and the per-seed run: faults, then calm, then the checker's verdict."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.replica import Replica
from tests.simulation.bugs import NoPreparedCheckInNewView, QuorumTooSmall, VoteBeforePersist
from tests.simulation.byzantine import MODES
from tests.simulation.host import Host
from tests.simulation.world import Params, World


def _byzantine(rng: random.Random) -> Params:
    mode = rng.choice(MODES)
    # An equivocating primary needs to be primary: v0 leads view 0.
    name = "v0" if mode == "equivocate" else rng.choice(["v0", "v1", "v2", "v3"])
    return Params(byzantine={name: mode})


def _n7(rng: random.Random) -> Params:
    names = rng.sample([f"v{i}" for i in range(7)], 2)
    modes = rng.sample(MODES, 2)
    return Params(n=7, byzantine=dict(zip(names, modes, strict=True)), fault_ticks=120)


def _governance(rng: random.Random) -> Params:
    """Grow 4 -> 7 one validator at a time, rotate a key, remove one, under the usual faults.
    The pool validators run from the start with empty stores, as freshly started nodes."""
    script = (("add", "v4"), ("add", "v5"), ("rotate", "v1"), ("add", "v6"), ("remove", "v2"))
    gap = rng.randint(25, 45)
    start = rng.randint(5, 20)
    return Params(
        pool=3,
        governance=tuple((start + i * gap, op, name) for i, (op, name) in enumerate(script)),
        fault_ticks=start + len(script) * gap,
    )


def _governance_byzantine(rng: random.Random) -> Params:
    """The governance script with one Byzantine validator that stays in every set (v3)."""
    params = _governance(rng)
    params.byzantine = {"v3": rng.choice([m for m in MODES if m != "equivocate"])}
    return params


def _governance_laggard(rng: random.Random) -> Params:
    """v3 is down while the set changes three times, then must catch up across the epochs,
    checking every block's certificate against the set of the epoch it belongs to."""
    script = (("add", "v4"), ("rotate", "v1"), ("add", "v5"))
    return Params(
        pool=2,
        governance=tuple((10 + i * 40, op, name) for i, (op, name) in enumerate(script)),
        outage=("v3", 5, 190),
        crashes=False,
        fault_ticks=200,
    )


def _censor_busy(rng: random.Random) -> Params:
    """v0 leads view 0 and leaves half the transactions out of its blocks while clients keep
    it busy with the other half: it makes progress all along, so only a backup's per-request
    wait (R8a) can replace it. No other faults, so every delay is the censor's."""
    return Params(
        byzantine={"v0": "censor"},
        partitions=False,
        crashes=False,
        drop_probability=0.0,
        duplicate_probability=0.0,
        submit_probability=0.9,
        fault_ticks=rng.randint(250, 350),
    )


SCENARIOS: dict[str, Callable[[random.Random], Params]] = {
    "censor_busy": _censor_busy,
    "governance": _governance,
    "governance_laggard": _governance_laggard,
    "governance_byzantine": _governance_byzantine,
    "benign": lambda rng: Params(),
    "byzantine": _byzantine,
    "twins": lambda rng: Params(twins=(rng.choice(["v0", "v1"]),), twin_partition=True),
    "n7": _n7,
    # Negative controls (planted bugs); each must be caught.
    "bug_quorum": lambda rng: Params(
        replica_class=QuorumTooSmall, byzantine={"v0": "equivocate"}, fault_ticks=100
    ),
    "bug_new_view": lambda rng: Params(
        replica_class=NoPreparedCheckInNewView,
        byzantine={"v2": "forge_prepared"},
        crash_probability=0.05,
        crash_primary_bias=1.0,
        partitions=False,
        fault_ticks=200,
    ),
    "bug_persist": lambda rng: Params(
        replica_class=VoteBeforePersist,
        crash_probability=0.08,
        crash_primary_bias=1.0,
        crash_ticks_max=6,
        persist_delay_ticks_max=4,
        partitions=False,
        drop_probability=0.0,
        fault_ticks=200,
    ),
    "bug_twins": lambda rng: Params(twins=("v0", "v1"), twin_partition=True, fault_ticks=120),
}


def _byzantine_mode(mode: str) -> Callable[[random.Random], Params]:
    # A factory rather than a lambda in the loop, so each scenario keeps its own `mode`.
    return lambda rng: Params(
        byzantine={"v0" if mode == "equivocate" else rng.choice(["v0", "v1", "v2", "v3"]): mode}
    )


for _mode in MODES:
    SCENARIOS[f"byz_{_mode}"] = _byzantine_mode(_mode)
MIXED = ("benign", "byzantine", "byzantine", "twins", "n7", "governance")
NEGATIVE_CONTROLS = ("bug_quorum", "bug_new_view", "bug_persist", "bug_twins")


@dataclass(slots=True, kw_only=True)
class Result:
    seed: int
    scenario: str  # what ran (for "mixed": the scenario this seed drew)
    requested: str  # what was asked for: replaying needs this, since "mixed" draws per seed
    violations: list[str]
    converged: bool
    ticks: int
    blocks: int
    txs: int
    stats: dict[str, int]
    wall_seconds: float
    trace: list[str] = field(default_factory=list)
    final_validators: tuple[tuple[str, bytes], ...] = ()  # the last epoch's set

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay_command(self) -> str:
        return f"python -m tests.simulation --seed {self.seed} --scenario {self.requested}"

    def report(self) -> str:
        lines = [
            f"seed {self.seed} scenario {self.scenario}: "
            f"{'OK' if self.ok else 'FAILED'} after {self.ticks} ticks, {self.blocks} blocks",
            *self.violations[:10],
            f"replay: {self.replay_command()}",
        ]
        if not self.ok:
            lines.append("--- trace (last events) ---")
            lines.extend(self.trace[-80:])
        return "\n".join(lines)


def resolve(scenario: str, seed: int, *, without_bug: bool = False) -> tuple[str, Params]:
    """The scenario's parameters for this seed. `without_bug` keeps every fault of a
    negative control but removes the planted bug (correct replica, at most f twins)."""
    rng = random.Random(seed ^ 0x5EED)
    name = rng.choice(MIXED) if scenario == "mixed" else scenario
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {scenario!r}; known: mixed, {', '.join(SCENARIOS)}")
    params = SCENARIOS[name](rng)
    if without_bug:
        params.replica_class = Replica
        params.twins = params.twins[:1]
    return name, params


def describe(host: Host) -> str:
    if host.replica is None:
        return f"{host.instance}: crashed"
    r = host.replica.replica
    slots = {
        s: ("PP" if x.pre_prepare else "--")
        + f" p{len(x.prepares)} c{len(x.commits)}"
        + ("V" if x.validated else "")
        + ("P" if x.prepared else "")
        + ("C" if x.committed else "")
        for s, x in sorted(r._slots.items())
    }
    return (
        f"{host.instance}: view {r.view} active={r.view_active} ck={r.checkpoint_seq} "
        f"handed={r.handed_seq} exec={r.executed_seq} next={r._next_seq} "
        f"deadline={r._deadline} mempool={len(host.mempool)} slots={slots} "
        f"counters={dict(sorted(r.counters.items()))}"
    )


def run_seed(seed: int, scenario: str = "mixed", *, without_bug: bool = False) -> Result:
    started = time.perf_counter()
    name, params = resolve(scenario, seed, without_bug=without_bug)
    world = World(seed, params)
    checker = world.checker
    for _ in range(params.fault_ticks):
        world.step(faulty=True)
        if checker.violations and params.stop_at_first_violation:
            break
    converged = False
    if not checker.violations:
        world.calm()
        calm_at = world.now
        while world.now - calm_at < params.liveness_ticks_max:
            world.step(faulty=False)
            if checker.violations and params.stop_at_first_violation:
                break
            if world.now % 5 == 0 and world.converged():
                converged = True
                break
        if not converged and not checker.violations:
            heights = {h.instance: h.height for h in world.honest}
            for h in world.hosts.values():
                world.note(describe(h))
            checker.fail(
                f"liveness: not converged {params.liveness_ticks_max} ticks after faults "
                f"stopped (heights {heights}, {len(world.submitted)} submitted)"
            )
    checker.final(converged=converged)
    stats = dict(world.stats)
    stats["messages_sent"] = world.network.sent
    stats["messages_dropped"] = world.network.dropped
    stats["messages_duplicated"] = world.network.duplicated
    stats["byzantine_injected"] = sum(b.injected for b in world.byzantine.values())
    # Submission to first commit by an honest host: what a client waits. (A planted bug can
    # commit transactions nobody submitted: the checker reports those.)
    submitted = world.submitted
    latencies = [t - submitted[tx] for tx, t in checker.committed_seen.items() if tx in submitted]
    stats["commit_latency_ticks_max"] = max(latencies, default=0)
    stats["epochs"] = max((len(h.epochs) - 1 for h in world.honest), default=0)
    honest_heights = [h.height for h in world.honest] or [0]
    return Result(
        seed=seed,
        scenario=name,
        requested=scenario,
        violations=list(checker.violations),
        converged=converged,
        ticks=world.now,
        blocks=max(honest_heights),
        txs=len(world.submitted),
        stats=stats,
        wall_seconds=time.perf_counter() - started,
        trace=list(world.trace),
        final_validators=max((h.epochs for h in world.honest), key=len)[-1].validators,
    )
