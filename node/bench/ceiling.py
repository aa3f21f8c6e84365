"""The machine's signature-verification ceiling, measured in the same run as the load.

A timed loop of Ed25519 verifications (PyNaCl, the exact check admission runs: the signed
bytes of real pre-signed transfers) on one core. Every validator verifies every transaction
once, so with `cores` cores shared by `validators` nodes the cluster cannot finalize more
than verify/s x cores / validators transactions per second, whatever the rest costs.
Dividing the achieved tps by this makes figures from different machines comparable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import nacl.bindings

from consensus.signing import Purpose, signing_bytes
from node.bench.stats import Ceiling
from node.tx import SignedTransaction

MEASURE_S_DEFAULT = 1.0
MEASURE_S_MAX = 60.0
BATCH = 64  # verifications between clock reads


class CeilingError(ValueError):
    """The measurement cannot be made (no samples, bad duration)."""


def verify_rate_one_core(samples: Sequence[SignedTransaction], duration_s: float) -> float:
    """Verifications per CPU-second of this thread, looping over `samples` for `duration_s`
    of wall time."""
    if not samples:
        raise CeilingError("need at least one signed transaction to time")
    if not 0 < duration_s <= MEASURE_S_MAX:
        raise CeilingError(f"duration must be in (0, {MEASURE_S_MAX}] s, got {duration_s}")
    # Precompute signature + message once: the loop times the verify itself, as a node's
    # verifier threads do after decoding.
    signed = []
    for stx in samples:
        message = signing_bytes(Purpose.TRANSACTION, stx.body.chain_id, stx.body.body_bytes)
        for public_key, signature in stx.signatures:
            signed.append((signature + message, public_key))
    crypto_sign_open = nacl.bindings.crypto_sign_open
    done = 0
    i = 0
    # The rate is per second of this thread's CPU time, not wall time: on a shared machine
    # (other processes, the idle cluster itself) the wall clock would measure the contention.
    cpu_start = time.thread_time()
    deadline = time.perf_counter() + duration_s
    while True:
        for _ in range(BATCH):
            sm, pk = signed[i]
            crypto_sign_open(sm, pk)  # raises on a bad signature: samples are ours
            i = (i + 1) % len(signed)
        done += BATCH
        if time.perf_counter() >= deadline:
            cpu_s = time.thread_time() - cpu_start
            if cpu_s <= 0:
                raise CeilingError("no CPU time was measured; run the measurement longer")
            return done / cpu_s


def measure_ceiling(
    samples: Sequence[SignedTransaction],
    *,
    validators: int,
    duration_s: float = MEASURE_S_DEFAULT,
    cores: int | None = None,
) -> Ceiling:
    return Ceiling(
        verify_per_s_one_core=verify_rate_one_core(samples, duration_s),
        cores=cores or os.cpu_count() or 1,
        validators=validators,
    )
