"""`assetledger node --config PATH`: run one validator until SIGINT or SIGTERM."""

from __future__ import annotations

import errno
import signal
from collections.abc import Callable
from pathlib import Path

import click
import trio

from config.errors import ConfigError
from config.keyfile import KeyFileError
from node.cli.errors import UserError
from node.ledger import LedgerError, LedgerFullError
from node.runtime.byzantine import ByzantineMode
from node.runtime.gc_policy import tune_gc
from node.runtime.node import Node, NodeStartupError


async def _serve(node: Node) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            async for signum in signals:
                # Cancelling lets an in-flight LMDB commit finish in its thread (to_thread
                # does not abandon it), so a stop never leaves half a block.
                node.log.info("stopping", extra={"signal": signal.Signals(signum).name})
                nursery.cancel_scope.cancel()
                break


def _found(
    exc: BaseException | None, wanted: Callable[[BaseException], bool]
) -> BaseException | None:
    """The first exception `wanted` accepts in what stopped the node: inside its task
    groups' exception groups, or as a cause (the pipeline refuses the blocks after a failed
    commit with an error whose cause is that failure)."""
    if exc is None or wanted(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next(filter(None, (_found(inner, wanted) for inner in exc.exceptions)), None)
    return _found(exc.__cause__, wanted)


def _address_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE


def _store_full(exc: BaseException) -> bool:
    return isinstance(exc, LedgerFullError)


@click.command("node")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Node configuration (TOML).",
)
@click.option(
    "--byzantine",
    type=click.Choice([m.value for m in ByzantineMode]),
    default=None,
    help="FAULT DRILL ONLY: misbehave on purpose (withhold-votes: send no PREPARE/COMMIT;"
    " censor: as primary, leave half the signers' transactions out of every block).",
)
def node_command(config_path: Path, byzantine: str | None) -> None:
    """Run a validator: p2p, PBFT consensus, the ledger store and the client API."""
    try:
        node = Node.from_file(
            config_path, byzantine=None if byzantine is None else ByzantineMode(byzantine)
        )
    except (ConfigError, KeyFileError, NodeStartupError, LedgerError) as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot start: {exc}") from exc
    tune_gc()
    try:
        trio.run(_serve, node)
    except (OSError, BaseExceptionGroup) as exc:
        full = _found(exc, _store_full)
        if full is not None:  # every block up to the failed one is durable
            raise UserError(f"{config_path}: the node stopped: {full}") from exc
        if _found(exc, _address_in_use) is None:
            raise
        raise UserError(
            f"{config_path}: a listen address is already in use; is another node running with"
            " these ports? (see [listen] in the config)"
        ) from exc
    finally:
        node.close()
