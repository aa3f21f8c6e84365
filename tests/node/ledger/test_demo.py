"""`assetledger demo` runs its scenario end to end and shows every outcome it promises."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from node.cli.demo import demo


def test_demo_runs_the_whole_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(demo, ["--data-dir", str(tmp_path / "ledger")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "insufficient_balance" in out  # the refused transfer, with its reason
    assert "account_frozen" in out
    assert "FIU-2026-0042" in out and "COURT-2026-117" in out
    # alice 250,000.00 - 12,500.50; bob 12,500.50 + 5,000.00 - 10,000.00 (seized)
    assert "237,499.50" in out and "7,500.50" in out and "1,005,000.00" in out
    assert "1,250,000.00" in out  # supply


def test_demo_refuses_a_non_empty_data_dir(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    result = CliRunner().invoke(demo, ["--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output
