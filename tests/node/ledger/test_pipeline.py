"""The block pipeline (node/ledger/pipeline.py) changes when commits happen, nothing else.

Every block is applied to two ledgers from the same genesis: through a BlockPipeline (block
N+1 evaluated while block N commits, against N's overlay) and one at a time with
`apply_block`. Receipts, state digests, block hashes and every record of every database must
be identical. Failures stop the pipeline with the store holding exactly the blocks before.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.ledger import (
    Block,
    BlockError,
    Ledger,
    LedgerError,
    LedgerFullError,
    LedgerLimits,
    Receipt,
)
from node.ledger.pipeline import BlockPipeline, PendingBlock, PipelineError
from node.tx import Kind
from tests.node.ledger.conftest import ISSUER, pk
from tests.node.ledger.gov_world import GovWorld, address, governance_genesis, vpub
from tests.node.ledger.test_fastpath import _dump, _sync_nonces
from tests.node.ledger.test_invariants import (
    HOLDERS,
    PEOPLE,
    _tx,
    _world,
    ledger_examples,
    op_blocks,
)
from tests.node.ledger.world import World


class HeldPipeline(BlockPipeline):
    """Holds each group's commit until the block after it has been evaluated (or `release`),
    so every block is certainly evaluated while its parent is not committed, against the
    overlays: without the hold, a small block's commit usually finishes first and the
    overlay would go untested."""

    def __init__(self, ledger: Ledger, **kw: Any) -> None:
        self._cond = threading.Condition()
        self._evaluated = 0
        self._released = False
        self.ahead = 0  # blocks evaluated while their parent was not committed
        self.groups: list[list[int]] = []  # the heights committed together, in order
        real_evaluate = ledger.evaluate

        def evaluate(block: Block, **kw: Any) -> Any:
            self.ahead += ledger.height < block.height - 1
            effects = real_evaluate(block, **kw)
            with self._cond:
                self._evaluated = max(self._evaluated, effects.height)
                self._cond.notify_all()
            return effects

        ledger.evaluate = evaluate  # type: ignore[method-assign]
        super().__init__(ledger, **kw)

    def release(self) -> None:
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def _commit(self, txn: Any, group: list[PendingBlock]) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._released or self._evaluated > group[-1].height)
        self.groups.append([p.height for p in group])
        super()._commit(txn, group)

    def close(self) -> None:
        self.release()
        super().close()


def _block(w: World, height: int, raws: Sequence[bytes]) -> Block:
    w.time_ms += 1000
    return Block(height=height, timestamp_ms=w.time_ms, txs=tuple(raws))


def _submit(pipe: BlockPipeline, w: World, txs: Sequence[Any], **kw: Any) -> PendingBlock:
    """Submit the next block; keep `w`'s nonce bookkeeping in step from the receipts,
    which exist before the commit (they are only handed out after it)."""
    pending = pipe.submit(_block(w, pipe.tip[0] + 1, [t.encode() for t in txs]), **kw)
    _sync_nonces(w, txs, pending.effects.receipts)
    return pending


def _assert_same(a: World, b: World) -> None:
    assert a.ledger.height == b.ledger.height
    assert a.ledger.state_digest == b.ledger.state_digest
    assert a.ledger.last_block_hash == b.ledger.last_block_hash
    assert _dump(a) == _dump(b)


def test_pipelined_blocks_equal_one_at_a_time(tmp_path: Path) -> None:
    piped, plain = _world(tmp_path / "piped"), _world(tmp_path / "plain")
    try:
        h0, h1, h2 = HOLDERS
        blocks: list[list[Any]] = []
        with HeldPipeline(piped.ledger) as pipe:
            pending = []
            for round_ in range(6):
                txs = [
                    # The same accounts in consecutive blocks: block N+1 must read N's
                    # balances and nonces from the overlay, not the committed snapshot.
                    piped.tx(
                        h0, Kind.TRANSFER, {"asset_id": "AAA", "to_account": pk(h1), "amount": 7}
                    ),
                    piped.tx(
                        h1, Kind.TRANSFER, {"asset_id": "AAA", "to_account": pk(h2), "amount": 3}
                    ),
                    piped.tx(
                        ISSUER, Kind.MINT, {"asset_id": "BBB", "to_account": pk(h2), "amount": 1}
                    ),
                ]
                if round_ == 3:  # an account change the next block must see
                    txs.append(_tx(piped, ("freeze", 0, 2, "AAA", 0)))
                blocks.append(txs)
                pending.append(_submit(pipe, piped, txs))
            pipe.release()
            receipts = [p.wait() for p in pending]
        assert (
            pipe.ahead == 5
        )  # every block but the first was evaluated before its parent committed
        assert all(p.done() for p in pending)
        for txs, got in zip(blocks, receipts, strict=True):
            want = plain.apply(*[t.encode() for t in txs])
            assert got == want
        # h2 was frozen for AAA in block 4: block 5's transfer to it is refused.
        assert receipts[4][1].reason == "account_frozen"
        _assert_same(piped, plain)
    finally:
        piped.close()
        plain.close()


@ledger_examples(40)
@given(op_blocks(ops_max=8, blocks_min=1, blocks_max=6))
def test_random_pipelined_blocks_equal_one_at_a_time(
    tmp_path: Path, blocks: list[list[tuple[Any, ...]]]
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        piped, plain = _world(Path(d) / "piped"), _world(Path(d) / "plain")
        try:
            sent: list[tuple[list[bytes], int]] = []
            with HeldPipeline(piped.ledger) as pipe:
                pending = []
                for spec in blocks:
                    txs = [_tx(piped, op) for op in spec]
                    p = _submit(pipe, piped, txs)
                    pending.append(p)
                    sent.append(([t.encode() for t in txs], p.effects.timestamp_ms))
                pipe.release()
                got = [p.wait() for p in pending]
            assert pipe.ahead == len(blocks) - 1
            for (raws, ts), receipts in zip(sent, got, strict=True):
                height = plain.ledger.height + 1
                block = Block(height=height, timestamp_ms=ts, txs=tuple(raws))
                assert plain.ledger.apply_block(block) == receipts
            _assert_same(piped, plain)
        finally:
            piped.close()
            plain.close()


class DeepHeldPipeline(HeldPipeline):
    """Holds each group's commit until `depth` more blocks have been evaluated (depths taken
    in turn from `depths`), so blocks are evaluated up to several ahead of the store, on a
    stack of overlays, and groups of several blocks form."""

    def __init__(self, ledger: Ledger, depths: Sequence[int], **kw: Any) -> None:
        self._depths = list(depths)
        self._commits = 0
        super().__init__(ledger, **kw)

    def _commit(self, txn: Any, group: list[PendingBlock]) -> None:
        depth = self._depths[self._commits % len(self._depths)]
        self._commits += 1
        with self._cond:
            target = group[-1].height + depth
            self._cond.wait_for(lambda: self._released or self._evaluated >= target)
        self.groups.append([p.height for p in group])
        BlockPipeline._commit(self, txn, group)


def run_deep(
    w: World, blocks: list[list[tuple[Any, ...]]], depths: Sequence[int]
) -> tuple[DeepHeldPipeline, list[Block], list[list[Receipt]]]:
    """Random `blocks` (test_invariants ops) through a DeepHeldPipeline on `w`: the pipeline,
    the blocks as sent, and each one's receipts once durable."""
    sent: list[Block] = []
    with DeepHeldPipeline(w.ledger, depths) as pipe:
        pending = []
        for spec in blocks:
            txs = [_tx(w, op) for op in spec]
            p = _submit(pipe, w, txs)
            pending.append(p)
            raws = tuple(t.encode() for t in txs)
            sent.append(Block(height=p.height, timestamp_ms=p.effects.timestamp_ms, txs=raws))
        pipe.release()
        got = [p.wait(timeout_s=60) for p in pending]
    return pipe, sent, got


def replay(w: World, sent: list[Block], got: list[list[Receipt]]) -> None:
    """Apply `sent` to `w` one block at a time: each block's receipts must equal `got`'s."""
    for block, receipts in zip(sent, got, strict=True):
        assert w.ledger.apply_block(block) == receipts


# The cache at its default; evicting at every block (so only the keys the uncommitted blocks
# wrote are left); and off (so every view decodes the overlays of the blocks below it).
@pytest.mark.parametrize("cache_entries", [200_000, 1, 0])
@ledger_examples(25)
@given(
    blocks=op_blocks(ops_max=6, blocks_min=2, blocks_max=10),
    depths=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_blocks_evaluated_several_ahead_equal_one_at_a_time(
    tmp_path: Path,
    cache_entries: int,
    blocks: list[list[tuple[Any, ...]]],
    depths: list[int],
) -> None:
    """Groups of up to four blocks and evaluation up to four blocks ahead of the store (seen:
    groups [[11], [12, 13, 14], [15, 16], [17], [18, 19, 20]] for depths [3, 2, 1, 3]),
    with the state cache at its default, evicting at every block, and off."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        piped = _world(Path(d) / "piped", state_cache_entries_max=cache_entries)
        plain = _world(Path(d) / "plain")
        try:
            pipe, sent, got = run_deep(piped, blocks, depths)
            assert pipe.ahead == len(blocks) - 1
            assert max(len(g) for g in pipe.groups) <= pipe.group_blocks_max
            replay(plain, sent, got)
            _assert_same(piped, plain)
        finally:
            piped.close()
            plain.close()


def test_stats_count_every_block_and_commit_and_time_each_phase(tmp_path: Path) -> None:
    w = _world(tmp_path / "w")
    try:
        h0, h1, _ = HOLDERS
        # Each commit waits until the next two blocks are evaluated: groups of several form.
        with DeepHeldPipeline(w.ledger, [2]) as pipe:
            assert pipe.stats() == (0, 0, 0.0, 0.0, 0.0)
            pending = [
                _submit(
                    pipe,
                    w,
                    [
                        w.tx(
                            h0,
                            Kind.TRANSFER,
                            {"asset_id": "AAA", "to_account": pk(h1), "amount": 1},
                        )
                    ],
                )
                for _ in range(7)
            ]
            evaluated = pipe.stats()
            pipe.release()
            for p in pending:
                p.wait(timeout_s=60)
        stats = pipe.stats()  # the writer has stopped: its figures are final
        assert stats.blocks == 7
        assert stats.commits == len(pipe.groups) < 7
        assert evaluated.evaluate_s > 0
        assert stats.evaluate_s == evaluated.evaluate_s  # nothing evaluated since
        assert stats.puts_s > 0
        assert stats.commit_s > 0
    finally:
        w.close()


def test_a_governance_block_is_committed_before_the_next_is_evaluated(tmp_path: Path) -> None:
    piped = GovWorld(tmp_path / "piped", governance_genesis())
    plain = GovWorld(tmp_path / "plain", governance_genesis())
    try:
        with BlockPipeline(piped.ledger) as pipe:
            first = _submit(pipe, piped, [piped.gov_tx(Kind.ADD_VALIDATOR, **_newcomer())])
            assert first.effects.governance_touched
            # Evaluating on top of it without its commit would read stale governance.
            with pytest.raises(BlockError, match="changed governance"):
                piped.ledger.evaluate(_block(piped, first.height + 1, []), after=[first.effects])
            second = _submit(pipe, piped, [piped.gov_tx(Kind.ADD_VALIDATOR, **_newcomer("v5"))])
            assert first.done()  # submit waited for it
            third = _submit(pipe, piped, [])
            receipts = [p.wait() for p in (first, second, third)]
        assert receipts[0][0].applied and receipts[1][0].applied
        for p in (first, second, third):
            e = p.effects
            plain.time_ms = e.timestamp_ms
            raws = [tx for tx in piped.ledger.block(e.height).txs]  # type: ignore[union-attr]
            block = Block(height=e.height, timestamp_ms=e.timestamp_ms, txs=tuple(raws))
            assert plain.ledger.apply_block(block) == p.wait()
        _assert_same(piped, plain)
        assert [v.name for v in piped.ledger.ledger_validators()][-2:] == ["v4", "v5"]
    finally:
        piped.close()
        plain.close()


def _newcomer(name: str = "v4") -> dict[str, Any]:
    return {"name": name, "public_key": vpub(name), "address": address(name)}


def test_a_block_that_does_not_fit_leaves_the_pipeline_running(tmp_path: Path) -> None:
    w = _world(tmp_path / "w")
    try:
        with BlockPipeline(w.ledger) as pipe:
            ok = _submit(pipe, w, [])
            with pytest.raises(BlockError, match="does not follow"):
                pipe.submit(_block(w, ok.height + 5, []))
            with pytest.raises(BlockError, match="before the previous block"):
                pipe.submit(Block(height=ok.height + 1, timestamp_ms=0, txs=()))
            after = _submit(pipe, w, [])
            assert after.wait() == []
        assert w.ledger.height == after.height
    finally:
        w.close()


def test_evaluate_refuses_an_after_with_a_gap(tmp_path: Path) -> None:
    w = _world(tmp_path / "w")
    try:
        one = w.ledger.evaluate(_block(w, w.ledger.height + 1, []))
        two = w.ledger.evaluate(_block(w, one.height + 1, []), after=[one])
        three = w.ledger.evaluate(_block(w, two.height + 1, []), after=[one, two])
        with pytest.raises(BlockError, match=f"block {three.height} does not follow {one.height}"):
            w.ledger.evaluate(_block(w, three.height + 1, []), after=[one, three])
        height = w.ledger.height
        for effects in (one, two, three):
            w.ledger.write(effects)
        assert w.ledger.height == height + 3
        assert w.ledger.state_digest == three.state_digest
    finally:
        w.close()


def test_a_failed_write_stops_the_pipeline_and_keeps_every_earlier_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tmp_path / "w")
    try:
        pipe = BlockPipeline(w.ledger)
        good = _submit(pipe, w, [_tx(w, ("transfer", 1, 2, "AAA", 5))])
        assert good.wait()[0].applied
        monkeypatch.setattr(w.ledger, "write_in", _failing_write_in(w.ledger, {good.height + 1}))
        bad = _submit(pipe, w, [_tx(w, ("transfer", 2, 1, "AAA", 5))])
        with pytest.raises(LedgerError, match="disk on fire"):
            bad.wait()
        monkeypatch.undo()
        assert w.ledger.height == good.height  # nothing of the failed block
        assert pipe.stats()[:2] == (1, 1)  # nor in the statistics: blocks, commits
        with pytest.raises(PipelineError, match="disk on fire") as info:
            pipe.submit(_block(w, bad.height + 1, []))
        assert isinstance(info.value.__cause__, LedgerError)
        pipe.close()
        pipe.close()  # idempotent
        with pytest.raises(PipelineError, match="closed"):
            pipe.submit(_block(w, good.height + 1, []))
        # The ledger itself is fine: the next block applies directly, and its history
        # links to the last committed entries, not to the failed block's.
        w.nonces[pk(PEOPLE[2])] -= 1  # the failed block's transfer never happened
        [again] = w.apply(_tx(w, ("transfer", 2, 1, "AAA", 1)))
        assert again.applied
        for person in (PEOPLE[1], PEOPLE[2]):
            assert [e.tx_id for e in w.ledger.history(pk(person), limit=2)] == [
                again.tx_id,
                good.wait()[0].tx_id,
            ]
    finally:
        w.close()


def _failing_write_in(ledger: Ledger, heights: set[int]) -> Any:
    real_write_in = ledger.write_in

    def failing(txn: Any, effects: Any) -> None:
        real_write_in(txn, effects)  # the puts happen, then the transaction is aborted
        if effects.height in heights:
            raise LedgerError("disk on fire")

    return failing


class GatedPipeline(BlockPipeline):
    """Every commit waits at a gate until the test opens it; `at_gate` is set once the
    writer is there, so the blocks submitted after that form the next group."""

    def __init__(self, ledger: Ledger, **kw: Any) -> None:
        self.gate = threading.Event()
        self.at_gate = threading.Event()
        self.groups: list[list[int]] = []
        super().__init__(ledger, **kw)

    def _commit(self, txn: Any, group: list[PendingBlock]) -> None:
        self.groups.append([p.height for p in group])
        self.at_gate.set()
        self.gate.wait()
        super()._commit(txn, group)

    def close(self) -> None:
        self.gate.set()
        super().close()


def _transfers(w: World) -> list[Any]:
    """Transfers that chain through the same accounts: each block reads what the blocks
    before it (not yet committed) wrote."""
    return [_tx(w, ("transfer", 0, 1, "AAA", 5)), _tx(w, ("transfer", 1, 2, "AAA", 3))]


def test_blocks_evaluated_during_a_commit_are_committed_together(tmp_path: Path) -> None:
    piped, plain = _world(tmp_path / "piped"), _world(tmp_path / "plain")
    try:
        with GatedPipeline(piped.ledger) as pipe:
            first = _submit(pipe, piped, _transfers(piped))
            assert pipe.at_gate.wait(timeout=60)
            rest = [_submit(pipe, piped, _transfers(piped)) for _ in range(3)]
            blocks = [first, *rest]
            assert piped.ledger.height == first.height - 1  # none of them committed yet
            assert not any(p.done() for p in blocks)
            pipe.gate.set()
            receipts = [p.wait(timeout_s=60) for p in blocks]
        assert pipe.groups == [[first.height], [p.height for p in rest]]
        assert all(r.applied for rs in receipts for r in rs)
        for p in blocks:
            e = p.effects
            raws = piped.ledger.block(e.height).txs  # type: ignore[union-attr]
            block = Block(height=e.height, timestamp_ms=e.timestamp_ms, txs=tuple(raws))
            assert plain.ledger.apply_block(block) == p.wait()
        _assert_same(piped, plain)
    finally:
        piped.close()
        plain.close()


def test_a_group_holds_at_most_group_blocks_max(tmp_path: Path) -> None:
    w = _world(tmp_path / "w")
    try:
        with GatedPipeline(w.ledger, group_blocks_max=2) as pipe:
            first = _submit(pipe, w, _transfers(w))
            assert pipe.at_gate.wait(timeout=60)
            queued = [_submit(pipe, w, _transfers(w)) for _ in range(2)]  # the queue is full
            late: list[PendingBlock] = []
            txs = _transfers(w)
            # Waits for room: the writer takes the two queued blocks once the gate opens.
            submitter = threading.Thread(target=lambda: late.append(_submit(pipe, w, txs)))
            submitter.start()
            pipe.gate.set()
            submitter.join(timeout=60)
            assert late, "the submit waiting for room never returned"
            for p in [first, *queued, *late]:
                assert all(r.applied for r in p.wait(timeout_s=60))
        assert pipe.groups == [[first.height], [p.height for p in queued], [late[0].height]]
        with pytest.raises(ValueError, match="at least 1"):
            BlockPipeline(w.ledger, group_blocks_max=0)
    finally:
        w.close()


def test_a_failure_fails_its_whole_group_and_keeps_the_blocks_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tmp_path / "w")
    try:
        with GatedPipeline(w.ledger) as pipe:
            first = _submit(pipe, w, _transfers(w))
            assert pipe.at_gate.wait(timeout=60)
            failing = _failing_write_in(w.ledger, {first.height + 2})
            monkeypatch.setattr(w.ledger, "write_in", failing)
            group = [_submit(pipe, w, _transfers(w)) for _ in range(3)]
            pipe.gate.set()
            assert all(r.applied for r in first.wait(timeout_s=60))
            for p in group:  # the block before the failed one fails with it: one transaction
                with pytest.raises(LedgerError, match="disk on fire"):
                    p.wait(timeout_s=60)
            with pytest.raises(PipelineError, match="before the group that failed"):
                pipe.submit(_block(w, group[-1].height + 1, []))
        assert pipe.groups == [[first.height]]  # the failed group never reached its commit
        assert w.ledger.height == first.height
        assert w.ledger.state_digest == first.effects.state_digest
    finally:
        w.close()


def test_a_full_map_fails_the_block_and_keeps_the_store_consistent(tmp_path: Path) -> None:
    w = _world(tmp_path / "w")
    w.ledger.close()
    w.ledger = Ledger.open(
        tmp_path / "w", w.genesis, limits=LedgerLimits(map_size_bytes=1 << 20), sync=False
    )
    memo = "x" * 200
    failure: LedgerError | None = None
    committed: list[PendingBlock] = []
    try:
        with BlockPipeline(w.ledger) as pipe:
            for _ in range(200):
                txs = [
                    w.tx(
                        ISSUER,
                        Kind.TRANSFER,
                        {"asset_id": "AAA", "to_account": pk(h), "amount": 1},
                        memo=memo,
                    )
                    for h in HOLDERS
                ]
                try:
                    committed.append(_submit(pipe, w, txs))
                except LedgerError as exc:
                    failure = exc
                    break
            for p in committed:
                try:
                    p.wait()
                except LedgerError as exc:  # the commit itself may be the one that fails
                    failure = failure or exc
                    break
        assert failure is not None, "the 1 MiB map never filled up"
        assert isinstance(failure, LedgerFullError | PipelineError)
        height = w.ledger.height
        durable = [p for p in committed if p.height <= height]
        assert durable and all(p.wait() for p in durable[:-1])
        record = w.ledger.block(height)
        assert record is not None and record.state_digest == w.ledger.state_digest
    finally:
        w.close()


def test_receipts_are_handed_out_only_once_committed(tmp_path: Path) -> None:
    w = _world(tmp_path / "w")
    try:
        with BlockPipeline(w.ledger) as pipe:
            pending = [_submit(pipe, w, [_tx(w, ("transfer", 1, 2, "AAA", 1))]) for _ in range(5)]
            for p in pending:
                receipts = p.wait(timeout_s=30)
                # Once wait returns, any reader sees the block and its receipt.
                assert w.ledger.height >= p.height
                assert w.ledger.receipt(receipts[0].tx_id) == receipts[0]
    finally:
        w.close()
