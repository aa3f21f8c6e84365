"""The benchmark's own error: one line saying what went wrong and what to do."""

from __future__ import annotations


class BenchError(Exception):
    """The benchmark cannot run or could not finish (no cluster, unreachable, setup failed)."""
