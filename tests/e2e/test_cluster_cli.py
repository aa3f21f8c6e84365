"""`assetledger cluster ...`: init's JSON, and up/status/kill/pause/resume/restart on real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli.main import cli
from node.cluster.init import ports_needed
from node.cluster.layout import ClusterLayout
from node.cluster.ports import free_port_block
from node.cluster.processes import ClusterProcesses

UP_TIMEOUT_S = 30.0


def _run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def _json(*args: str) -> dict[str, Any]:
    return json.loads(_run(*args, "--json").stdout)


def test_init_prints_the_endpoints_and_refuses_to_overwrite(tmp_path: Path) -> None:
    root = tmp_path / "c"
    out = _json("cluster", "init", "--nodes", "4", "--dir", str(root), "--base-port", "20100")
    assert [n["client"] for n in out["nodes"]] == [f"127.0.0.1:{20101 + 3 * i}" for i in range(4)]
    assert {"name", "client", "peer", "metrics", "public_key"} <= set(out["nodes"][0])
    for key in ("regulator_key", "issuer_key", "genesis"):
        assert Path(out[key]).is_file()
    assert out["dir"] == str(root)
    layout = ClusterLayout.load(root)
    assert [n.public_key for n in layout.nodes] == [n["public_key"] for n in out["nodes"]]
    again = CliRunner().invoke(cli, ["cluster", "init", "--dir", str(root)])
    assert again.exit_code != 0 and "refusing to overwrite" in again.output
    bad = CliRunner().invoke(cli, ["cluster", "init", "--dir", str(tmp_path / "d"), "--nodes", "0"])
    assert bad.exit_code != 0 and "--nodes" in bad.output
    missing = CliRunner().invoke(cli, ["cluster", "status", "--dir", str(tmp_path / "none")])
    assert missing.exit_code != 0 and "cluster init" in missing.output


def _until(what: str, check: Callable[[], bool], timeout_s: float = UP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _nodes(root: Path) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in _json("cluster", "status", "--dir", str(root))["nodes"]}


@pytest.mark.e2e
def test_up_status_and_fault_drills_from_another_terminal(tmp_path: Path) -> None:
    root = tmp_path / "c"
    base = free_port_block(ports_needed(4, proxies=True))
    _run(
        "cluster",
        "init",
        "--dir",
        str(root),
        "--base-port",
        str(base),
        "--fast-timeouts",
        "--proxies",
    )
    out_file = tmp_path / "up.out"
    with out_file.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "cluster", "up", "--dir", str(root)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        )
    procs = ClusterProcesses.open(root)
    try:
        _until("`cluster up` to report it is running", lambda: "running;" in out_file.read_text())
        assert all((n["height"] or 0) >= 1 for n in _nodes(root).values())
        _run("cluster", "kill", "--dir", str(root), "node-3")
        assert _nodes(root)["node-3"]["process"] == "stopped"
        _run("cluster", "pause", "--dir", str(root), "node-2")
        assert _nodes(root)["node-2"]["process"] == "paused"
        _run("cluster", "resume", "--dir", str(root), "node-2")
        cut = _run("cluster", "partition", "--dir", str(root), "node-0", "node-1,node-2")
        assert "node-0 | node-1,node-2 | node-3 (in effect)" in cut.output
        status = _json("cluster", "status", "--dir", str(root))
        assert status["network"] == "node-0 | node-1,node-2 | node-3"
        bad = CliRunner().invoke(cli, ["cluster", "partition", "--dir", str(root), "node-7"])
        assert bad.exit_code != 0 and "no node 'node-7'" in bad.output
        _run("cluster", "heal", "--dir", str(root))
        assert _json("cluster", "status", "--dir", str(root))["network"].startswith("healed")
        byz = _run(
            "cluster", "restart", "--dir", str(root), "node-3", "--byzantine", "withhold-votes"
        )
        assert "byzantine mode withhold-votes" in byz.output
        _run("cluster", "restart", "--dir", str(root), "node-3")
        _until(
            "all four running and answering",
            lambda: all(
                n["process"] == "running" and n["height"] is not None for n in _nodes(root).values()
            ),
        )
        pids = [procs.pid(n) for n in procs.names]
        assert all(pids)
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=UP_TIMEOUT_S)
        text = out_file.read_text()
        assert up.returncode == 0, text
        assert "cluster up" in text and "all nodes stopped" in text
        assert all(procs.pid(n) is None for n in procs.names)
        assert procs.links_pid() is None  # the link proxies stopped with the nodes
        for pid in pids:  # including node-3, restarted by another "terminal"
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            )
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        procs.kill_all()
