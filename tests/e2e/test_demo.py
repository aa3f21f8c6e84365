"""`assetledger demo` tells its whole story with real processes, exits 0, leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e
DEMO_TIMEOUT_S = 60


def test_demo_exits_0_and_leaves_nothing_running() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in (
        "insufficient_balance",
        "account_frozen",
        "COURT-2026-117",
        "reached height",
        "sum of balances = supply",
        "all 4 validators stopped cleanly",
    ):
        assert expected in out, (expected, out)
    # The demo's cluster directory is gone, and with it any process running its configs.
    leftover = subprocess.run(
        ["pgrep", "-f", "assetledger-demo-.*node.toml"], capture_output=True, check=False
    )
    assert leftover.stdout == b"", leftover.stdout
