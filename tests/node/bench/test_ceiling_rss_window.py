import os

import nacl.exceptions
import nacl.signing
import pytest

from node.bench.ceiling import CeilingError, measure_ceiling, verify_rate_one_core
from node.bench.load import LoadReport
from node.bench.rss import RssSampler, read_status_kib
from node.tx import build_transfer


def _samples(n=4):
    key = nacl.signing.SigningKey(b"k" * 32)
    return [build_transfer(key, "assetledger-t", i, "BENCH", b"\x01" * 32, 1) for i in range(n)]


def test_verify_rate_counts_real_verifications():
    rate = verify_rate_one_core(_samples(), 0.02)
    assert rate > 0
    ceiling = measure_ceiling(_samples(), validators=4, duration_s=0.02, cores=2)
    assert ceiling.cores == 2 and ceiling.validators == 4
    assert ceiling.tps == pytest.approx(ceiling.verify_per_s_one_core / 2)


def test_verify_rate_refuses_a_forged_sample():
    stx = _samples(1)[0]
    forged = type(stx)(body=stx.body, signatures=((stx.signatures[0][0], b"\x00" * 64),))
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_rate_one_core([forged], 0.01)


@pytest.mark.parametrize("duration", [0, -1, 61])
def test_verify_rate_bad_input(duration):
    with pytest.raises(CeilingError):
        verify_rate_one_core(_samples(), duration)
    with pytest.raises(CeilingError, match="at least one"):
        verify_rate_one_core([], 0.01)


def _fake_proc(tmp_path, pid, rss_kib, hwm_kib):
    d = tmp_path / str(pid)
    d.mkdir(exist_ok=True)
    (d / "status").write_text(
        f"Name:\tpython\nVmHWM:\t  {hwm_kib} kB\nVmRSS:\t  {rss_kib} kB\nThreads:\t3\n"
    )


def test_rss_sampler_keeps_the_peak_of_rss_and_high_water_mark(tmp_path):
    _fake_proc(tmp_path, 11, rss_kib=10_240, hwm_kib=10_240)
    _fake_proc(tmp_path, 12, rss_kib=2_048, hwm_kib=51_200)  # spiked between samples
    sampler = RssSampler({"a": 11, "b": 12, "gone": 13}, proc=tmp_path)
    sampler.sample()
    _fake_proc(tmp_path, 11, rss_kib=20_480, hwm_kib=20_480)
    sampler.sample()
    _fake_proc(tmp_path, 11, rss_kib=5_120, hwm_kib=20_480)
    sampler.sample()
    assert sampler.peak_mib() == {"a": 20.0, "b": 50.0}
    assert sampler.current_mib() == {"a": 5.0, "b": 2.0}


def test_read_status_of_this_process():
    assert read_status_kib(os.getpid(), "VmRSS") > 0
    assert read_status_kib(os.getpid(), "NoSuchField") is None


def test_measurement_window():
    report = LoadReport(total=4, started_at=100.0)
    assert report.window(None) == (0, 0.0, [])
    report.commit_times = [100.5, 101.0, 102.0, 104.0]
    report.latencies_ms = [500.0, 900.0, 1500.0, 2000.0]
    # No duration: from the first submit to the last commit, everything counts.
    assert report.window(None) == (4, 4.0, [500.0, 900.0, 1500.0, 2000.0])
    # A duration: only what committed inside it, over exactly that long.
    assert report.window(2.0) == (3, 2.0, [500.0, 900.0, 1500.0])
    # A duration longer than the run: the run's own span.
    assert report.window(10.0) == (4, 4.0, [500.0, 900.0, 1500.0, 2000.0])


def test_rejections_are_counted_by_reason():
    report = LoadReport(total=5)
    report.refused = {"nonce_used": 1}
    report.rejected_receipts = {"insufficient_balance": 2, "nonce_used": 1}
    assert report.rejected == 4
    assert report.rejected_reasons() == {"nonce_used": 2, "insufficient_balance": 2}


def test_cpu_seconds_from_proc_stat(tmp_path):
    from node.bench.cpu import CLOCK_TICKS_PER_S, cpu_snapshot, cpu_used, read_cpu_s

    d = tmp_path / "42"
    d.mkdir()
    # The command name may hold spaces and parentheses; fields are counted after the last ")".
    fields = ["S"] + ["0"] * 10 + [str(3 * CLOCK_TICKS_PER_S), str(CLOCK_TICKS_PER_S)] + ["0"] * 30
    (d / "stat").write_text("42 (python (x) y) " + " ".join(fields) + "\n")
    assert read_cpu_s(42, proc=tmp_path) == 4.0
    assert read_cpu_s(43, proc=tmp_path) is None
    assert cpu_snapshot({"a": 42, "gone": 43}, proc=tmp_path) == {"a": 4.0}
    assert cpu_used({"a": 1.0, "b": 2.0}, {"a": 4.0}) == {"a": 3.0}
    assert read_cpu_s(os.getpid()) > 0
