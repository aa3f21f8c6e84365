"""A tiny real run: in-process 4-validator cluster, real setup transactions, real load."""

import os

from click.testing import CliRunner

from node.bench.run import BenchOptions, run_bench
from node.bench.target import Target
from node.cli.bench import bench
from node.cluster.init import init_cluster
from tests.node.runtime.harness import free_port_block, running_cluster

ISSUE_KEYS = {"tps", "latency_ms", "committed", "submitted", "rejected", "rss_mib_max"}


async def test_small_run_commits_everything_it_submits(tmp_path):
    async with running_cluster(tmp_path) as cluster:
        target = Target(
            layout=cluster.layout,
            reachable=cluster.layout.nodes,
            pids={"in-process": os.getpid()},
            started_here=False,
        )
        options = BenchOptions(
            txs=40, clients=3, holders=4, in_flight_max=16, ceiling_s=0.02, seed=b"e2e"
        )
        result = await run_bench(target, options)
        heights = cluster.heights()
    assert result.submitted == 40
    assert result.committed == result.submitted == result.committed_total
    assert result.rejected == 0 and result.rejected_reasons == {}
    assert result.uncommitted == 0
    assert result.validators == 4
    assert result.latency.max >= result.latency.p99 >= result.latency.p50 > 0
    assert result.rss_mib_max > 0
    assert result.ceiling.tps > 0
    out = result.to_json()
    assert out.keys() >= ISSUE_KEYS
    # Setup (4 registrations, create, 4 mints) and 40 transfers all went into blocks.
    assert min(heights.values()) >= 2


def test_cli_refuses_dir_and_nodes_together(tmp_path):
    result = CliRunner().invoke(bench, ["--dir", str(tmp_path), "--nodes", "4"])
    assert result.exit_code != 0
    assert "either --dir" in result.output


def test_cli_reports_a_missing_cluster_in_one_line(tmp_path):
    result = CliRunner().invoke(bench, ["--dir", str(tmp_path / "nothing"), "--json"])
    assert result.exit_code != 0
    assert "is not a cluster directory" in result.output
    assert "Traceback" not in result.output


def test_cli_reports_an_unreachable_cluster_in_one_line(tmp_path):
    root = tmp_path / "c"
    init_cluster(root, nodes=4, base_port=free_port_block(12))  # initialised, never started
    result = CliRunner().invoke(bench, ["--dir", str(root), "--txs", "10"])
    assert result.exit_code != 0
    assert "is not reachable" in result.output
    assert "cluster up --dir" in result.output
    assert "Traceback" not in result.output
