"""Planted bugs for the negative controls. Test-only subclasses: production never sees them.

Each one breaks one rule of consensus/replica.py; the simulator must catch each within a
bounded number of seeds (tests/simulation/test_negative_controls.py).
"""

from __future__ import annotations

from consensus.replica import Replica


class QuorumTooSmall(Replica):
    """Breaks R1: quorum 2f instead of 2f + 1 (prepared and committed certificates)."""

    _quorum_shrink = 1


class NoPreparedCheckInNewView(Replica):
    """Breaks R10: believes prepared certificates in VIEW-CHANGE/NEW-VIEW without checking."""

    _check_prepared_proofs = False


class VoteBeforePersist(Replica):
    """Breaks R6: sends votes as soon as they are made, before the Persist is acknowledged."""

    _gate_attesting = False
