"""Resident memory of the node processes, sampled from /proc/<pid>/status.

The peak per node is the larger of the highest VmRSS sampled and the kernel's own VmHWM
(the process's high-water mark), so a spike between two samples is not missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

KIB_PER_MIB = 1024


def read_status_kib(pid: int, field: str, *, proc: Path = Path("/proc")) -> int | None:
    """A `kB` field (VmRSS, VmHWM) of /proc/<pid>/status; None if the process is gone."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    prefix = field + ":"
    for line in text.splitlines():
        if line.startswith(prefix):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


class RssSampler:
    """Peak resident memory per node; call `sample()` periodically (cheap: one read per pid)."""

    def __init__(self, pids: Mapping[str, int], *, proc: Path = Path("/proc")) -> None:
        self._pids = dict(pids)
        self._proc = proc
        self._peak_kib: dict[str, int] = dict.fromkeys(self._pids, 0)

    def sample(self) -> None:
        for name, pid in self._pids.items():
            for field in ("VmRSS", "VmHWM"):
                kib = read_status_kib(pid, field, proc=self._proc)
                if kib is not None and kib > self._peak_kib[name]:
                    self._peak_kib[name] = kib

    def peak_mib(self) -> dict[str, float]:
        """Per node name; nodes never sampled successfully are left out."""
        return {n: kib / KIB_PER_MIB for n, kib in self._peak_kib.items() if kib > 0}

    def current_mib(self) -> dict[str, float]:
        out = {}
        for name, pid in self._pids.items():
            kib = read_status_kib(pid, "VmRSS", proc=self._proc)
            if kib is not None:
                out[name] = kib / KIB_PER_MIB
        return out
