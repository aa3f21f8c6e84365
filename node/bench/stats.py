"""Latency percentiles and the benchmark's result record (the `--json` shape)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class StatsError(ValueError):
    """A statistic was asked of data it is not defined for (empty samples, bad quantile)."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ascending `sorted_values`, q in [0, 100].

    Nearest rank (no interpolation) always returns an observed value, so p100 is the max
    and a p99 over 100 samples is the 99th smallest, as latency reports usually mean it."""
    if not 0 <= q <= 100:
        raise StatsError(f"percentile q must be in [0, 100], got {q}")
    if not sorted_values:
        raise StatsError("percentile of no samples")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySummary:
    """Submit -> commit latency, milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencySummary:
        """Percentiles of `samples_ms`; all zero when there are none (nothing committed)."""
        if not samples_ms:
            return cls(p50=0.0, p95=0.0, p99=0.0, max=0.0)
        ordered = sorted(samples_ms)
        return cls(
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=float(ordered[-1]),
        )

    def to_json(self) -> dict[str, float]:
        return {
            "p50": round(self.p50, 3),
            "p95": round(self.p95, 3),
            "p99": round(self.p99, 3),
            "max": round(self.max, 3),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Ceiling:
    """Signature-verification ceiling: what the machine could finalize if verifying were all.

    Every validator verifies every transaction once, so the cluster can finalize at most
    cores x verifications/s per core / validators transactions per second."""

    verify_per_s_one_core: float
    cores: int
    validators: int

    def __post_init__(self) -> None:
        if self.verify_per_s_one_core <= 0 or self.cores < 1 or self.validators < 1:
            raise StatsError("ceiling needs a positive rate, cores >= 1 and validators >= 1")

    @property
    def tps(self) -> float:
        return self.verify_per_s_one_core * self.cores / self.validators


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchResult:
    """One run's figures. `window_s` is the measurement window the tps is computed over."""

    committed: int  # in a final block (applied or with a rejected receipt), inside the window
    committed_total: int  # including those committed after the window, while draining
    submitted: int  # transactions sent (each counted once, however often it was retried)
    rejected: int  # refused at admission plus committed with a rejected receipt
    window_s: float
    latency: LatencySummary
    rss_mib_max: float  # the largest peak over all node processes
    rss_mib_by_node: dict[str, float]
    ceiling: Ceiling
    validators: int
    clients: int
    in_flight_max: int
    uncommitted: int  # sent but not seen committed by the end of the drain
    rejected_reasons: dict[str, int]
    retries: int  # transient refusals (mempool full, ...) that were retried
    load_avg: tuple[float, float]  # 1-minute load average before and after the load
    client_cpu_s: float  # CPU time the benchmark process itself used while driving the load
    node_cpu_s: dict[str, float]  # CPU time each node process used while the load ran
    blocks: int  # blocks committed while the load ran (the watcher's node)

    @property
    def node_cpu_ms_per_tx(self) -> float:
        """All nodes' CPU time per committed transaction: what one transfer costs the
        cluster, independent of what else the machine is doing."""
        if not self.committed_total or not self.node_cpu_s:
            return 0.0
        return sum(self.node_cpu_s.values()) * 1000 / self.committed_total

    @property
    def cpu_bound_tps(self) -> float:
        """The tps the nodes' own CPU cost allows if they had every core to themselves."""
        per_tx = self.node_cpu_ms_per_tx
        return self.ceiling.cores * 1000 / per_tx if per_tx > 0 else 0.0

    @property
    def tps(self) -> float:
        return self.committed / self.window_s if self.window_s > 0 else 0.0

    @property
    def ceiling_ratio(self) -> float:
        return self.tps / self.ceiling.tps

    def to_json(self) -> dict[str, Any]:
        """The issue's fixed keys first, then the ceiling and the run's context."""
        return {
            "tps": round(self.tps, 2),
            "latency_ms": self.latency.to_json(),
            "committed": self.committed,
            "submitted": self.submitted,
            "rejected": self.rejected,
            "rss_mib_max": round(self.rss_mib_max, 2),
            "ceiling_tps": round(self.ceiling.tps, 2),
            "ceiling_ratio": round(self.ceiling_ratio, 4),
            "verify_per_s_one_core": round(self.ceiling.verify_per_s_one_core, 1),
            "cores": self.ceiling.cores,
            "validators": self.validators,
            "clients": self.clients,
            "in_flight_max": self.in_flight_max,
            "window_s": round(self.window_s, 3),
            "committed_total": self.committed_total,
            "uncommitted": self.uncommitted,
            "retries": self.retries,
            "load_avg_1m": [round(x, 2) for x in self.load_avg],
            "client_cpu_s": round(self.client_cpu_s, 2),
            "node_cpu_s": {k: round(v, 2) for k, v in sorted(self.node_cpu_s.items())},
            "node_cpu_ms_per_tx": round(self.node_cpu_ms_per_tx, 4),
            "cpu_bound_tps": round(self.cpu_bound_tps, 1),
            "blocks": self.blocks,
            "txs_per_block": round(self.committed_total / self.blocks, 1) if self.blocks else 0.0,
            "rejected_reasons": dict(sorted(self.rejected_reasons.items())),
            "rss_mib_by_node": {k: round(v, 2) for k, v in sorted(self.rss_mib_by_node.items())},
        }
