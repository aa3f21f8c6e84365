"""Applying a stream of blocks: commits overlapped with evaluation, and grouped.

A block's commit writes back every page its random-key inserts dirtied and then waits for
the disk, with the GIL released; evaluating a block is pure Python. So while blocks commit
in the writer thread, the caller evaluates the next ones against the last committed
snapshot plus the writes of every block not yet committed (`BlockEffects.overlay`).

Group commit: when the writer finishes a commit, it writes every block evaluated meanwhile
(at most `group_blocks_max`) in ONE write transaction and commits them together. Under load,
blocks share the commit's write-back (their inserts dirty many of the same pages) and its
fsyncs; when blocks come one at a time, each still commits alone, at once.

Rules, and why:
- One writer thread begins, fills and commits every write transaction, in height order:
  LMDB ties a write transaction (and its lock) to the thread that began it.
- The caller is never inside `evaluate` while the writer puts records: py-lmdb retakes the
  GIL for every put, and a thread busy in Python starves them (measured: 6 ms of puts took
  100-500 ms). The writer asks for its turn; the next `submit` waits until the puts are
  done, and the writer waits for an evaluation in progress to finish. The overlap is
  exactly the commit.
- Nothing is acknowledged before it is durable: `PendingBlock.wait` returns the receipts
  only after the commit. Until then no reader of the store sees the block either.
- A block after a governance change waits for that commit before it is evaluated:
  governance reads go to the store, not through the overlay (rare, so kept simple).
- A failed write or commit stops the pipeline: every block of that group and every later
  one fails with it; the store holds exactly the blocks before the group.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple, Self

import lmdb

from node.ledger.block import Block
from node.ledger.effects import BlockEffects
from node.ledger.errors import LedgerError
from node.ledger.records import Receipt
from node.ledger.store import Decoded, Ledger
from node.ledger.txn import Txn

GROUP_BLOCKS_MAX = 8  # evaluated blocks waiting for the writer, and so per commit


class PipelineError(LedgerError):
    """The pipeline is stopped: it was closed, or an earlier block's write or commit failed
    (that error is the __cause__). The store holds every block before the failed group."""


class PipelineStats(NamedTuple):
    """Where the pipeline's time went since it started (wall seconds), for operators and the
    bench. The caller waits out the puts (see the module docstring); the commit overlaps
    evaluation. So a block takes at least max(evaluate + puts, puts + commit).

    The writer's figures cover the groups it committed; a group that failed adds nothing.
    `evaluate_s` covers every evaluation, so mid-stream it includes up to
    `group_blocks_max` blocks not committed yet, and any block `evaluate` refused."""

    blocks: int  # blocks written and committed (durable)
    commits: int  # write transactions committed (a group commit counts once)
    evaluate_s: float  # the caller inside Ledger.evaluate
    puts_s: float  # the writer putting the records of its groups (not waiting for the lock)
    commit_s: float  # the writer committing: page write-back and the wait for the disk


class PendingBlock:
    """A block evaluated, committed (durable) once `wait` returns."""

    __slots__ = ("_committed", "_error", "effects")

    def __init__(self, effects: BlockEffects) -> None:
        self.effects = effects
        self._committed = threading.Event()
        self._error: BaseException | None = None

    @property
    def height(self) -> int:
        return self.effects.height

    def done(self) -> bool:
        """The commit finished, successfully or not."""
        return self._committed.is_set()

    def wait(self, timeout_s: float | None = None) -> list[Receipt]:
        """The receipts, once the block is durable. Raises the commit's error (LedgerError),
        or TimeoutError if `timeout_s` passes first."""
        if not self._committed.wait(timeout_s):
            raise TimeoutError(f"block {self.height} not committed within {timeout_s} s")
        if self._error is not None:
            raise self._error
        return self.effects.receipts

    def _finish(self, error: BaseException | None) -> None:
        self._error = error
        self._committed.set()


class BlockPipeline:
    """Blocks applied in order, committed in groups (see the module docstring). One caller
    thread at a time; use as a context manager or call `close`."""

    def __init__(self, ledger: Ledger, *, group_blocks_max: int = GROUP_BLOCKS_MAX) -> None:
        if group_blocks_max < 1:
            raise ValueError(f"group_blocks_max must be at least 1, not {group_blocks_max}")
        self.ledger = ledger
        self.group_blocks_max = group_blocks_max
        self._cond = threading.Condition()
        # Shared with the writer, under _cond:
        self._queued: deque[PendingBlock] = deque()  # evaluated, not yet written
        self._evaluating = False  # the caller is inside evaluate
        self._writer_turn = False  # the writer wants to put (or is putting): no evaluating
        self._failure: BaseException | None = None
        self._closing = False
        # The caller's own: submitted blocks not yet known to be committed, in height order.
        self._unsettled: deque[PendingBlock] = deque()
        self._last: PendingBlock | None = None
        self._closed = False
        # Statistics: the evaluation time is the caller's own; the rest is the writer's.
        self._evaluate_s = 0.0
        self._puts_s = 0.0
        self._commit_s = 0.0
        self._committed_blocks = 0
        self._committed_groups = 0
        self._writer = threading.Thread(target=self._write_loop, name="ledger-writer", daemon=True)
        self._writer.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tip(self) -> tuple[int, int]:
        """(height, timestamp_ms) of the last block submitted, committed or not."""
        last = self._last
        if last is None:
            return self.ledger.height, self.ledger.last_timestamp_ms
        return last.effects.height, last.effects.timestamp_ms

    def stats(self) -> PipelineStats:
        """Totals since the pipeline started (see PipelineStats), from any thread."""
        with self._cond:
            return PipelineStats(
                blocks=self._committed_blocks,
                commits=self._committed_groups,
                evaluate_s=self._evaluate_s,
                puts_s=self._puts_s,
                commit_s=self._commit_s,
            )

    def submit(
        self,
        block: Block,
        *,
        decoded: Sequence[Decoded] | None = None,
        signatures_ok: Sequence[bool] | None = None,
        certificate: bytes | None = None,
    ) -> PendingBlock:
        """Evaluate `block` (overlapping the commits in progress) and queue it for the
        writer; it is durable once the returned block's `wait` returns. Arguments and
        BlockError as in `Ledger.apply_block`; PipelineError once the pipeline is stopped."""
        self._check_running()
        after = self._uncommitted()
        with self._cond:
            self._wait_for_room()
            self._evaluating = True
        pending: PendingBlock | None = None
        started = time.perf_counter()
        try:
            effects = self.ledger.evaluate(
                block,
                decoded=decoded,
                signatures_ok=signatures_ok,
                certificate=certificate,
                after=after,
            )
            pending = PendingBlock(effects)
        finally:
            evaluate_s = time.perf_counter() - started
            with self._cond:  # in one step, so a writer waiting for its turn takes it too
                self._evaluate_s += evaluate_s
                self._evaluating = False
                if pending is not None:
                    self._queued.append(pending)
                self._cond.notify_all()
        self._unsettled.append(pending)
        self._last = pending
        return pending

    def close(self) -> None:
        """Write and commit every submitted block, then stop the writer thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._writer.join()

    def _uncommitted(self) -> list[BlockEffects]:
        """The effects of every submitted block not committed before now (what the next
        block is evaluated on top of), after waiting for a governance block's commit."""
        unsettled = self._unsettled
        if unsettled and unsettled[-1].effects.governance_touched:
            unsettled[-1].wait()  # raises if that commit failed
        while unsettled and unsettled[0].done():
            if unsettled[0]._error is not None:
                self._check_running()  # raises: the pipeline stopped
            unsettled.popleft()
        return [p.effects for p in unsettled]

    def _wait_for_room(self) -> None:
        """(Under _cond.) Wait while the writer has its turn or the queue is full."""
        self._cond.wait_for(
            lambda: (
                self._failure is not None
                or (not self._writer_turn and len(self._queued) < self.group_blocks_max)
            )
        )
        self._check_running()

    def _check_running(self) -> None:
        if self._closed:
            raise PipelineError("the block pipeline is closed")
        if self._failure is not None:
            raise PipelineError(
                f"the block pipeline stopped: {self._failure}; the store holds every block"
                " before the group that failed"
            ) from self._failure

    def _commit(self, txn: Txn, group: list[PendingBlock]) -> None:
        """Commit `group`'s transaction (a seam: tests hold a commit back to make blocks
        evaluate ahead of it)."""
        txn.commit()

    def _next_group(self) -> list[PendingBlock] | None:
        """(Writer.) The blocks to write next, once the caller is out of `evaluate`; None
        when closing with nothing left."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queued) or self._closing)
            if not self._queued:
                return None
            self._writer_turn = True
            self._cond.wait_for(lambda: not self._evaluating)
            count = min(len(self._queued), self.group_blocks_max)
            return [self._queued.popleft() for _ in range(count)]

    def _end_turn(self) -> None:
        with self._cond:
            self._writer_turn = False
            self._cond.notify_all()

    def _write_loop(self) -> None:
        ledger = self.ledger
        env = ledger._env  # the pipeline is the ledger's writer: same package
        while (group := self._next_group()) is not None:
            if self._failure is not None:
                self._end_turn()
                for pending in group:
                    not_written = PipelineError(f"not written: {self._failure}")
                    not_written.__cause__ = self._failure  # as for _check_running's error
                    pending._finish(not_written)
                continue
            error: BaseException | None = None
            try:
                try:
                    txn = env.begin(write=True)
                    puts_from = time.perf_counter()  # not before: waiting for the lock is no put
                    try:
                        for pending in group:
                            ledger.write_in(txn, pending.effects)
                    except BaseException:
                        txn.abort()
                        raise
                    puts_s = time.perf_counter() - puts_from
                finally:
                    self._end_turn()  # the caller may evaluate again: a commit needs no GIL
                commit_from = time.perf_counter()
                self._commit(txn, group)
                commit_s = time.perf_counter() - commit_from
                with self._cond:  # one step, so `stats` sees the group whole
                    self._puts_s += puts_s
                    self._commit_s += commit_s
                    self._committed_blocks += len(group)
                    self._committed_groups += 1
            except lmdb.MapFullError:
                error = ledger._full(f"block {group[0].height} was not applied")
            except Exception as exc:  # handed to the caller: a dead writer would hang it
                error = exc
            if error is None:
                ledger.write_committed(group[-1].height)  # on disk: whatever happens next
            else:
                ledger.write_aborted()  # the group's transaction is gone
                with self._cond:
                    self._failure = error
                    self._cond.notify_all()
            for pending in group:
                pending._finish(error)
