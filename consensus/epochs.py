"""Epochs: stretches of the chain each governed by one validator set.

A validator-set change is a ledger transaction; it cannot take effect in the middle of the
sequence numbers replicas are already voting on. So when the first change of an epoch commits
in block `s`, the epoch is closed at a fixed later point, the checkpoint

    B = the smallest multiple of K that is >= s + W      (K: checkpoint interval, W: window)

and the set the ledger holds after block B governs blocks B + 1 onwards (epoch e + 1).

Why that B is safe: a replica only votes on sequence numbers up to `executed_seq + W` (see
Replica), so any honest vote for a sequence above B >= s + W was cast after executing s, by a
replica that knew the epoch ends at B and refuses to order anything beyond it in epoch e.
Every replica computes the same B from the same committed block, so there is no agreement
step of its own. Later changes committed in (s, B] are folded into the same next set.

Signatures are bound to their epoch (`signing_domain`): a vote or certificate of epoch e can
never be replayed as one of another epoch, even by a validator that belongs to both sets.
Epoch 0 signs with the bare chain id, so a chain that never changes its set is unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.signing import PUBLIC_KEY_BYTES

EPOCH_MAX = 2**32 - 1


class EpochError(ValueError):
    """An epoch description is inconsistent. The message says which field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Epoch:
    """Epoch `number` governs blocks from `first_seq` on (until the next epoch begins)."""

    number: int
    first_seq: int  # 1 for epoch 0
    validators: tuple[tuple[str, bytes], ...]  # (name, public key), in primary-rotation order

    def __post_init__(self) -> None:
        if not 0 <= self.number <= EPOCH_MAX:
            raise EpochError(f"epoch number {self.number} is outside 0..{EPOCH_MAX}")
        if self.first_seq < 1:
            raise EpochError(f"first_seq must be >= 1, got {self.first_seq}")
        if (self.number == 0) != (self.first_seq == 1):
            raise EpochError("epoch 0, and only epoch 0, starts at sequence 1")
        if not self.validators:
            raise EpochError("an epoch needs at least one validator")
        names = [name for name, _ in self.validators]
        keys = [key for _, key in self.validators]
        if len(set(names)) != len(names) or len(set(keys)) != len(keys):
            raise EpochError("validator names and keys must be unique within an epoch")
        for name, key in self.validators:
            if not isinstance(name, str) or not name:
                raise EpochError(f"validator name {name!r} must be a non-empty string")
            if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_BYTES:
                raise EpochError(f"validator {name}: public key must be {PUBLIC_KEY_BYTES} bytes")

    @property
    def base_seq(self) -> int:
        """The last block of the previous epoch: this epoch's starting checkpoint."""
        return self.first_seq - 1

    def key_of(self, name: str) -> bytes | None:
        for validator, key in self.validators:
            if validator == name:
                return key
        return None


def epoch_last_seq(change_seq: int, *, checkpoint_interval_seqs: int, log_window_seqs: int) -> int:
    """The last block of the current epoch when its first set change commits in `change_seq`."""
    if change_seq < 1:
        raise EpochError(f"change_seq must be >= 1, got {change_seq}")
    k = checkpoint_interval_seqs
    target = change_seq + log_window_seqs
    return -(-target // k) * k


def signing_domain(chain_id: str, epoch: int) -> str:
    """The chain-id string consensus signatures of `epoch` are bound to."""
    return chain_id if epoch == 0 else f"{chain_id}/epoch/{epoch}"
