import json

import pytest

from node.bench.stats import BenchResult, Ceiling, LatencySummary, StatsError, percentile

ISSUE_KEYS = {"tps", "latency_ms", "committed", "submitted", "rejected", "rss_mib_max"}


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([7.0], 99) == 7.0
    # Ten samples: p95 and p99 both land on the largest; p50 on the fifth.
    ten = [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 1000]
    assert percentile(ten, 50) == 50
    assert percentile(ten, 95) == 1000
    assert percentile(ten, 91) == 1000
    assert percentile(ten, 90) == 90


@pytest.mark.parametrize("q", [-0.1, 100.1])
def test_percentile_rejects_bad_quantile(q):
    with pytest.raises(StatsError, match="q must be in"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(StatsError, match="no samples"):
        percentile([], 50)


def test_latency_summary_sorts_and_takes_max():
    summary = LatencySummary.from_samples([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (summary.p50, summary.p95, summary.p99, summary.max) == (3.0, 5.0, 5.0, 5.0)
    assert LatencySummary.from_samples([]) == LatencySummary(p50=0.0, p95=0.0, p99=0.0, max=0.0)


def test_ceiling_divides_by_validators():
    c = Ceiling(verify_per_s_one_core=10_000, cores=2, validators=4)
    assert c.tps == 5_000
    with pytest.raises(StatsError):
        Ceiling(verify_per_s_one_core=10_000, cores=2, validators=0)
    with pytest.raises(StatsError):
        Ceiling(verify_per_s_one_core=0, cores=2, validators=4)


def _result(**over):
    fields = dict(
        committed=300,
        committed_total=310,
        submitted=310,
        rejected=2,
        window_s=2.0,
        latency=LatencySummary.from_samples([10.0, 20.0, 30.0]),
        rss_mib_max=120.5,
        rss_mib_by_node={"node-0": 120.5, "node-1": 99.0},
        ceiling=Ceiling(verify_per_s_one_core=12_000, cores=2, validators=4),
        validators=4,
        clients=8,
        in_flight_max=1000,
        uncommitted=0,
        rejected_reasons={"insufficient_balance": 2},
        retries=0,
        load_avg=(1.0, 2.0),
        client_cpu_s=1.5,
        node_cpu_s={"node-0": 0.31, "node-1": 0.31},
        blocks=31,
    )
    fields.update(over)
    return BenchResult(**fields)


def test_json_shape_has_the_issue_keys_with_their_types():
    out = _result().to_json()
    assert out.keys() >= ISSUE_KEYS
    assert out["tps"] == 150.0 and isinstance(out["tps"], float)
    assert out["latency_ms"] == {"p50": 20.0, "p95": 30.0, "p99": 30.0, "max": 30.0}
    assert all(isinstance(v, float) for v in out["latency_ms"].values())
    for key in ("committed", "submitted", "rejected"):
        assert type(out[key]) is int
    assert isinstance(out["rss_mib_max"], float)
    # The ceiling extras.
    assert out["ceiling_tps"] == 6000.0
    assert out["ceiling_ratio"] == pytest.approx(150 / 6000, abs=1e-4)
    # CPU per committed transaction over all nodes, and what two free cores would allow.
    assert out["node_cpu_ms_per_tx"] == pytest.approx(2.0)
    assert out["cpu_bound_tps"] == pytest.approx(1000.0)
    assert out["txs_per_block"] == 10.0
    json.dumps(out)  # serialisable as is


def test_tps_is_zero_for_an_empty_window():
    assert _result(committed=0, window_s=0.0).tps == 0.0
