"""CPU time of the node processes, from /proc/<pid>/stat.

On a shared machine wall-clock throughput swings with whatever else runs; the CPU time the
nodes spend per finalized transaction does not, so the benchmark reports both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def read_cpu_s(pid: int, *, proc: Path = Path("/proc")) -> float | None:
    """User + system CPU seconds of process `pid` (threads included); None if it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after ")" start at field 3 (state); utime and stime are fields 14 and 15.
    rest = stat.rpartition(")")[2].split()
    try:
        return (int(rest[11]) + int(rest[12])) / CLOCK_TICKS_PER_S
    except (IndexError, ValueError):
        return None


def cpu_snapshot(pids: Mapping[str, int], *, proc: Path = Path("/proc")) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        seconds = read_cpu_s(pid, proc=proc)
        if seconds is not None:
            out[name] = seconds
    return out


def cpu_used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Per node present in both snapshots."""
    return {n: after[n] - before[n] for n in before.keys() & after.keys()}
