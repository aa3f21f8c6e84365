"""Signature checks against the validator set, with a bounded cache.

The same VIEW-CHANGE arrives directly and again inside a NEW-VIEW; the cache keeps us from
verifying its (many) signatures twice. Only successes are cached, so garbage cannot fill it
with entries that later matter, and the cache is cleared when it reaches its bound.
"""

from __future__ import annotations

from consensus.encoding import digest
from consensus.signing import Purpose, verify


class Verifier:
    """`chain_id` is the epoch's signing domain; (base_seq, base_digest) is the epoch's
    starting checkpoint, which every replica of the epoch knows without a proof."""

    def __init__(
        self,
        chain_id: str,
        validators: tuple[tuple[str, bytes], ...],
        cache_entries_max: int,
        *,
        base_seq: int = 0,
        base_digest: bytes | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.base_seq = base_seq
        self.base_digest = base_digest
        self.keys = dict(validators)
        self.names = tuple(name for name, _ in validators)
        self._cache: set[bytes] = set()
        self._cache_entries_max = cache_entries_max

    def check(self, purpose: Purpose, replica: str, body: bytes, signature: bytes) -> bool:
        key = self.keys.get(replica)
        if key is None:
            return False
        # Length-prefixed fields: unambiguous, and cheaper than a canonical pack.
        name = replica.encode()
        token = digest(
            b"%s\0%d:%s%d:%s%s"
            % (purpose.value.encode(), len(name), name, len(body), body, signature)
        )
        if token in self._cache:
            return True
        if not verify(key, signature, purpose, self.chain_id, body):
            return False
        if len(self._cache) >= self._cache_entries_max:
            self._cache.clear()
        self._cache.add(token)
        return True
