"""Applying a stream of blocks, each commit overlapped with the next block's evaluation.

Most of a block's commit is a wait on the disk (the fsync: about 13 ms for 1,000 transfers
here) with the GIL released, while evaluating a block is pure Python. So while block N
commits in the writer thread, the caller evaluates block N+1 against the last committed
snapshot plus N's writes (`BlockEffects.overlay`).

Rules, and why:
- One writer thread begins, fills and commits every write transaction, in height order:
  LMDB ties a write transaction (and its lock) to the thread that began it.
- `submit` returns only once the block's records are in its write transaction, i.e. after
  the previous commit finished. The caller never runs Python during the puts: py-lmdb
  retakes the GIL for every put, and a thread busy in Python starves them (measured: 6 ms
  of puts took 100-500 ms). So the overlap is exactly the commit.
- Nothing is acknowledged before it is durable: `PendingBlock.wait` returns the receipts
  only after the commit. Until then no reader of the store sees the block either.
- A block after a governance change waits for that commit before it is evaluated:
  governance reads go to the store, not through the overlay (rare, so kept simple).
- A failed write or commit stops the pipeline: that block and every later one fail with
  PipelineError; the store holds exactly the blocks before the failed one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import lmdb

from node.ledger.block import Block
from node.ledger.effects import BlockEffects
from node.ledger.errors import LedgerError
from node.ledger.records import Receipt
from node.ledger.store import Decoded, Ledger


class PipelineError(LedgerError):
    """The pipeline is stopped: it was closed, or an earlier block's write or commit failed
    (that error is the __cause__). The store holds every block before the failed one."""


class PendingBlock:
    """A block evaluated and written, committed (durable) once `wait` returns."""

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


_STOP = None


class BlockPipeline:
    """Blocks applied in order with at most one commit outstanding (see the module docstring).
    One caller thread at a time; use as a context manager or call `close`."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._jobs: queue.Queue[tuple[PendingBlock, threading.Event] | None] = queue.Queue(1)
        self._last: PendingBlock | None = None
        self._failure: BaseException | None = None
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="ledger-writer", daemon=True)
        self._writer.start()

    def __enter__(self) -> BlockPipeline:
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

    def submit(
        self,
        block: Block,
        *,
        decoded: Sequence[Decoded] | None = None,
        signatures_ok: Sequence[bool] | None = None,
        certificate: bytes | None = None,
    ) -> PendingBlock:
        """Evaluate `block` (overlapping the previous block's commit) and write it; its
        commit then runs in the background. Arguments and BlockError as in
        `Ledger.apply_block`; PipelineError once the pipeline is stopped."""
        self._check_running()
        last = self._last
        after = None if last is None else last.effects
        if after is not None and after.governance_touched:
            last.wait()  # type: ignore[union-attr]  # raises if that commit failed
            after = None  # committed: evaluate on the store itself
        effects = self.ledger.evaluate(
            block,
            decoded=decoded,
            signatures_ok=signatures_ok,
            certificate=certificate,
            after=after,
        )
        self._check_running()  # the previous commit may have failed meanwhile
        pending = PendingBlock(effects)
        written = threading.Event()
        self._jobs.put((pending, written))
        written.wait()  # without the GIL: the writer's puts need it (module docstring)
        if pending.done() and pending._error is not None:
            raise pending._error
        self._last = pending
        return pending

    def close(self) -> None:
        """Wait for the outstanding commit and stop the writer thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        self._writer.join()

    def _check_running(self) -> None:
        if self._closed:
            raise PipelineError("the block pipeline is closed")
        if self._failure is not None:
            raise PipelineError(
                f"the block pipeline stopped: {self._failure}; the store holds every block"
                " before the one that failed"
            ) from self._failure

    def _commit(self, txn: lmdb.Transaction, pending: PendingBlock) -> None:
        """Commit `pending`'s transaction (a seam: tests hold a commit back to prove the
        next block is evaluated before it)."""
        txn.commit()

    def _write_loop(self) -> None:
        ledger = self.ledger
        env = ledger._env  # the pipeline is the ledger's writer: same package
        while (job := self._jobs.get()) is not _STOP:
            pending, written = job
            if self._failure is not None:
                pending._finish(PipelineError(f"not written: {self._failure}"))
                written.set()
                continue
            error: BaseException | None = None
            try:
                txn = env.begin(write=True)
                try:
                    ledger.write_in(txn, pending.effects)
                except BaseException:
                    txn.abort()
                    raise
                written.set()  # the caller may run Python again: the commit needs no GIL
                self._commit(txn, pending)
            except lmdb.MapFullError:
                error = ledger._full(pending.height)
            except Exception as exc:  # handed to the caller: a dead writer would hang it
                error = exc
            if error is not None:
                self._failure = error
            pending._finish(error)
            written.set()
