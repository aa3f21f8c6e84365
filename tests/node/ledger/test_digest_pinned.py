"""The state digest and block hash of a fixed scenario are pinned.

Validators compare state digests at checkpoints, so two versions of this node must compute
the same digest for the same blocks. Performance work on the apply path (the fast path, the
evaluate/write split, the pipeline) must not change a single byte of it; any intended change
of the digest or record formats is a protocol change and has to update these values
deliberately (with a schema version and a migration story).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from node.ledger import ReasonCode
from node.tx import Kind
from tests.node.ledger.conftest import ISSUER, pk
from tests.node.ledger.test_fastpath import H, _mixed_world

STATE_DIGEST = "cf1b81a6d6ff47d21f2f7f7704ce93b9bdc7ed91223de46da93300a54c9f472f"
BLOCK_HASH = "c798e90da801df658e1615b13e1a574e246f921467ac420e4729f4281f8562b4"


def test_a_fixed_scenario_keeps_its_digest_and_block_hash(tmp_path: Path) -> None:
    w = _mixed_world(tmp_path / "w")
    try:
        reg, cosigner = w.regulators
        audit = {"reason_code": "c", "order_ref": "o"}

        def transfer(src: SigningKey, dst: SigningKey, amount: int, asset: str = "AAA") -> Any:
            args = {"asset_id": asset, "to_account": pk(dst), "amount": amount}
            return w.tx(src, Kind.TRANSFER, args)

        first = w.apply(
            transfer(H[0], H[1], 5), transfer(H[1], H[2], 7, "BBB"), transfer(H[2], H[0], 2000)
        )
        freeze = {"account": pk(H[3]), "asset_id": "AAA", **audit}
        second = w.apply(
            w.tx(reg, Kind.FREEZE, freeze, cosigners=[cosigner]),
            transfer(H[3], H[0], 1),
            transfer(H[4], H[3], 1),
        )
        mint = {"asset_id": "AAA", "to_account": pk(H[5]), "amount": 9}
        third = w.apply(
            w.tx(ISSUER, Kind.MINT, mint),
            w.tx(ISSUER, Kind.PAUSE, {"asset_id": "BBB"}),
            transfer(H[5], H[6], 1, "BBB"),
            b"\x93junk",
        )
        # The scenario does what it says (so the pinned values pin something meaningful).
        assert [r.reason for r in first] == [None, None, ReasonCode.INSUFFICIENT_BALANCE]
        frozen = ReasonCode.ACCOUNT_FROZEN
        assert [r.reason for r in second] == [None, frozen, frozen]  # sender, then recipient
        assert [r.reason for r in third] == [
            None,
            None,
            ReasonCode.ASSET_PAUSED,
            ReasonCode.MALFORMED,
        ]
        assert w.ledger.height == 25
        assert w.ledger.state_digest.hex() == STATE_DIGEST
        assert w.ledger.last_block_hash.hex() == BLOCK_HASH
    finally:
        w.close()
