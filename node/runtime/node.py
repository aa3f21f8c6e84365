"""The composition root of one validator: config in, a running node out.

Every limit and timeout comes from the validated NodeConfig, and the chain parameters (the
checkpoint interval and log window, which fix checkpoints and epoch boundaries) from genesis;
each is mapped here, once, onto the layer that enforces it (replica, transport, ledger, client
API), so there is a single place to read how settings reach the code.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import nacl.signing
import trio

from config.errors import ConfigError
from config.genesis import Genesis, load_genesis
from config.keyfile import load_key_file
from config.node_config import NodeConfig, load_node_config
from consensus.actions import EquivocationDetected
from consensus.config import ReplicaLimits, ReplicaTimeouts
from consensus.epoch_replica import EpochReplica
from consensus.messages import GENESIS_STATE_DIGEST
from consensus.state import PersistedState, StateError
from node.api.limits import from_node_config
from node.api.server import ClientApiServer
from node.finality import EXECUTION_PAYLOAD_BYTES_MAX, EXECUTION_PAYLOAD_TXS_MAX
from node.ledger import Ledger, LedgerLimits
from node.mempool import Mempool
from node.runtime.admission import Admission
from node.runtime.backend import NodeBackend
from node.runtime.byzantine import ByzantineMode, misbehaving_mempool, misbehaving_transport
from node.runtime.driver import ConsensusDriver, DriverSettings
from node.runtime.execution import EXECUTION_TX_LIMITS, ProposalRules
from node.runtime.logs import configure_logging
from node.runtime.metrics import NodeMetrics, serve_metrics
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx import Kind, TxLimits, make_tx
from p2p import PeerInfo, PeerNetwork, TransportLimits, TransportTimeouts

FINALITY_OVERHEAD_BYTES = 256 << 10  # certificate and framing around a payload
# The node.toml [limits] keys the ledger takes as they are: speed, memory and capacity (the
# map size), never an outcome. The ledger's other limits are protocol-wide: they come from
# genesis or from constants, since applying a committed block must not depend on them.
LOCAL_LEDGER_LIMITS = (
    "state_cache_entries_max",
    "balance_log_buckets",
    "balance_log_from_entries",
    "history_heads_cache_entries_max",
    "history_heads_log_buckets",
    "history_heads_log_from_entries",
    "map_size_bytes",
)


class NodeStartupError(Exception):
    """The node cannot start with this configuration; the message says what to fix."""


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _check_identity(config: NodeConfig, key: nacl.signing.SigningKey, ledger: Ledger) -> None:
    """Our key must be the one approved for our name, now or after a pending rotation. A name
    the regulator has not approved (yet) may run: it follows the chain as an observer and
    starts voting in the epoch that adds it."""
    ours = bytes(key.verify_key)
    approved = {
        v.public_key
        for v in (*ledger.current_epoch().validators, *ledger.ledger_validators())
        if v.name == config.name
    }
    if approved and ours not in approved:
        shown = ", ".join(k.hex()[:16] + "..." for k in sorted(approved))
        raise NodeStartupError(
            f"{config.key_file} holds key {ours.hex()[:16]}..., but the ledger approves"
            f" {shown} for validator {config.name}"
        )
    for v in ledger.ledger_validators():
        if v.public_key == ours and v.name != config.name:
            raise NodeStartupError(
                f"{config.key_file} holds the key of validator {v.name}, not of {config.name}"
            )


def _check_limits_fit_chain(config: NodeConfig, genesis: Genesis) -> None:
    """The node's [limits] must carry the chain's consensus traffic and blocks, whose sizes
    only genesis knows (node.toml alone cannot be checked for them)."""
    try:
        config.limits.check_chain(genesis.consensus)
    except ConfigError as exc:
        raise NodeStartupError(
            f"{exc.under('limits')} (the log window and the proposal limits come from"
            f" {config.genesis_file} [consensus]; raise the node limit)"
        ) from exc


@dataclass(frozen=True, slots=True)
class BoundPorts:
    peer: int
    client: int
    metrics: int | None


class Node:
    """One validator. `Node.open` loads and checks everything; `run` serves until cancelled."""

    def __init__(
        self,
        *,
        config: NodeConfig,
        genesis: Genesis,
        key: nacl.signing.SigningKey,
        ledger: Ledger,
        log_stream: TextIO | None = None,
        byzantine: ByzantineMode | None = None,
    ) -> None:
        self.config = config
        self.genesis = genesis
        self.name = config.name
        self.ledger = ledger
        self.metrics = NodeMetrics()
        limits, timeouts = config.limits, config.timeouts
        # K, W and the proposal limits are chain parameters (genesis [consensus]), never this
        # node's settings: validators that admitted or voted by different limits would blame
        # one another's proposals.
        chain = genesis.consensus
        _check_limits_fit_chain(config, genesis)
        self.key = key
        tick_ms = timeouts.tick_interval_ms
        replica_limits = ReplicaLimits(
            checkpoint_interval_seqs=chain.checkpoint_interval_seqs,
            log_window_seqs=chain.log_window_seqs,
            batch_bytes_max=chain.batch_bytes_max,
            message_bytes_max=chain.view_change_bytes_max(),
            future_view_messages_per_peer_max=limits.future_view_messages_per_peer_max,
        )
        view_change_ticks = max(2, math.ceil(timeouts.view_change_timeout_ms / tick_ms))
        replica_timeouts = ReplicaTimeouts(
            view_change_timeout_ticks=view_change_ticks,
            request_timeout_ticks=max(
                view_change_ticks, math.ceil(timeouts.request_timeout_ms / tick_ms)
            ),
            retransmit_interval_ticks=max(1, math.ceil(500 / tick_ms)),
            fetch_retry_ticks=max(1, math.ceil(1000 / tick_ms)),
            new_view_resend_ticks=max(1, math.ceil(500 / tick_ms)),
        )
        restored_bytes = ledger.load_consensus_state()
        try:
            restored = PersistedState.decode(restored_bytes) if restored_bytes is not None else None
        except StateError as exc:
            raise NodeStartupError(
                f"{config.data_dir}: the saved consensus state is unreadable ({exc}); this data"
                " directory was written by an incompatible version or is damaged"
            ) from exc
        rng = random.Random(int.from_bytes(bytes(key.verify_key)[:8], "big") ^ time.time_ns())
        # The ledger says which validator set governs the next block (consensus/epochs.py).
        height = ledger.height
        epoch = ledger.consensus_epoch(height + 1)
        base = ledger.block(epoch.base_seq) if epoch.base_seq else None
        self.replica = EpochReplica(
            chain_id=genesis.chain_id,
            name=config.name,
            keys={bytes(key.verify_key): key},
            rng=rng,
            epoch=epoch,
            base_digest=base.state_digest if base is not None else GENESIS_STATE_DIGEST,
            executed_seq=height,
            # The tip's digest, written with the tip: a restart re-signs its checkpoint there
            # (consensus.replica, R7/R13).
            executed_digest=ledger.state_digest,
            last_seq=ledger.pending_epoch_last_seq(),
            restored=restored,
            limits=replica_limits,
            timeouts=replica_timeouts,
        )
        self.metrics.epoch.set(epoch.number)
        self.log = configure_logging(
            node=config.name,
            level=config.log_level,
            fmt=config.log_format,
            context=lambda: {"view": self.replica.view, "height": self.replica.executed_seq},
            stream=log_stream,
        )
        heard_window_ms = 2 * timeouts.keepalive_interval_ms
        if heard_window_ms >= timeouts.view_change_timeout_ms:
            self.log.warning(
                f"timeouts.keepalive_interval_ms x 2 ({heard_window_ms} ms) is not below"
                f" timeouts.view_change_timeout_ms ({timeouts.view_change_timeout_ms} ms): a cut"
                " link may show only after the view-change timer fired, and this validator"
                " could change view alone (docs/consensus.md, R8b); lower the keepalive interval"
            )
        self.network = PeerNetwork(
            chain_id=genesis.chain_id,
            identity=key,
            self_name=config.name,
            listen=config.peer_listen,
            peers=self.approved_peers(),
            limits=TransportLimits(
                frame_bytes_max=limits.peer_frame_bytes_max,
                send_queue_messages_max=limits.peer_send_queue_messages_max,
                send_queue_bytes_max=max(64 << 20, 4 * limits.peer_frame_bytes_max),
            ),
            timeouts=TransportTimeouts(
                handshake_timeout_ms=timeouts.handshake_timeout_ms,
                keepalive_interval_ms=timeouts.keepalive_interval_ms,
                peer_dead_after_ms=timeouts.peer_dead_after_ms,
                reconnect_backoff_min_ms=timeouts.reconnect_backoff_min_ms,
                reconnect_backoff_max_ms=timeouts.reconnect_backoff_max_ms,
            ),
            rng=random.Random(rng.random()),
            log=self.log,
        )
        tx_limits = TxLimits(tx_bytes_max=chain.tx_bytes_max, memo_bytes_max=chain.memo_bytes_max)
        pool_limits = {
            "capacity_txs": limits.mempool_txs_max,
            "gap_wait_ms": timeouts.nonce_gap_wait_ms,
        }
        self.mempool = (
            Mempool(**pool_limits)
            if byzantine is None
            else misbehaving_mempool(byzantine, self.log, **pool_limits)  # FAULT DRILL ONLY
        )
        # Enough for everything pending plus a full window of proposals; committed
        # transactions leave it at once (ConsensusDriver._after_block).
        cache = VerifiedCache(
            entries_max=limits.mempool_txs_max + chain.log_window_seqs * chain.batch_txs_max
        )
        verifier = BatchVerifier(threads=limits.verify_threads)
        rules = ProposalRules(
            chain_id=genesis.chain_id,
            txs_max=chain.batch_txs_max,
            bytes_max=chain.batch_bytes_max,
            clock_skew_max_ms=timeouts.clock_skew_max_ms,
            tx_limits=tx_limits,
        )

        def clock_ms() -> int:
            return time.time_ns() // 1_000_000

        self.driver: ConsensusDriver
        admission = Admission(
            chain_id=genesis.chain_id,
            tx_limits=tx_limits,
            ledger=ledger,
            mempool=self.mempool,
            verifier=verifier,
            cache=cache,
            clock_ms=clock_ms,
            on_admitted=lambda txs, from_client: self.driver.on_admitted(txs, from_client),  # noqa: PLW0108 -- driver is built below
            on_refused=lambda reason: self.metrics.admission_refused.labels(reason=reason).inc(),
        )
        self.driver = ConsensusDriver(
            replica=self.replica,
            ledger=ledger,
            mempool=self.mempool,
            # FAULT DRILL ONLY (`--byzantine`): a filter on what this node sends.
            network=(
                self.network
                if byzantine is None
                else misbehaving_transport(byzantine, self.network, self.log)
            ),
            admission=admission,
            verifier=verifier,
            cache=cache,
            rules=rules,
            settings=DriverSettings(
                tick_interval_ms=tick_ms,
                batch_timeout_ms=timeouts.batch_timeout_ms,
                batch_txs_max=chain.batch_txs_max,
                batch_bytes_max=chain.batch_bytes_max,
                peer_frame_bytes_max=limits.peer_frame_bytes_max,
                waiters_max=limits.pending_waits_max,
                # Before either timer can blame the primary: R8a's request timeout, or R8's
                # view-change timeout on an idle chain (no progress restarts it), the
                # shorter (config checks request_timeout_ms >= view_change_timeout_ms).
                forward_waiting_after_ms=timeouts.view_change_timeout_ms // 2,
                peers_heard_window_ms=heard_window_ms,
            ),
            metrics=self.metrics,
            log=self.log,
            clock_ms=clock_ms,
            rng=random.Random(rng.random()),
            on_validators_changed=self._refresh_peers,
            evidence_tx=self._evidence_tx,
        )
        self._evidence_nonce = 0

    # ------------------------------------------------------------------ governance

    def approved_peers(self) -> list[PeerInfo]:
        """Whom the transport accepts: the current epoch's validators and the ledger's set
        (an approved validator syncs before its epoch begins). During a key rotation the
        epoch's key wins until the boundary. Configured addresses override ledger ones."""
        overrides = {peer.name: peer.address for peer in self.config.peers}
        chosen = {}
        for v in (*self.ledger.ledger_validators(), *self.ledger.current_epoch().validators):
            chosen[v.name] = v  # the epoch's entries come last and win
        return [
            PeerInfo(
                name=v.name,
                public_key=v.public_key,
                address=_split(overrides.get(v.name, v.address)),
            )
            for v in chosen.values()
            if v.name != self.name
        ]

    def _refresh_peers(self) -> None:
        self.network.update_peers(self.approved_peers())

    def _evidence_tx(self, found: EquivocationDetected) -> bytes:
        """Our signed report_equivocation for `found` (the ledger verifies it again)."""
        signer = bytes(self.key.verify_key)
        nonce = max(self._evidence_nonce, self.ledger.nonce(signer))
        self._evidence_nonce = nonce + 1
        stx = make_tx(
            Kind.REPORT_EQUIVOCATION,
            {"epoch": found.epoch, "first": found.first, "second": found.second},
            signer_key=self.key,
            nonce=nonce,
            chain_id=self.genesis.chain_id,
        )
        return stx.encode()

    @classmethod
    def open(
        cls,
        config: NodeConfig,
        *,
        log_stream: TextIO | None = None,
        byzantine: ByzantineMode | None = None,
    ) -> Node:
        genesis = load_genesis(config.genesis_file)
        _check_limits_fit_chain(config, genesis)  # before the ledger is opened or created
        key = load_key_file(config.key_file)
        ledger = Ledger.open(
            Path(config.data_dir) / "ledger",
            genesis,
            # Protocol-wide bounds, not this node's settings: applying a committed block
            # must never depend on local configuration (see node/finality.py).
            limits=LedgerLimits(
                block_txs_max=EXECUTION_PAYLOAD_TXS_MAX,
                certificate_bytes_max=EXECUTION_PAYLOAD_BYTES_MAX + FINALITY_OVERHEAD_BYTES,
                tx=EXECUTION_TX_LIMITS,
                consensus_state_bytes_max=genesis.consensus.consensus_state_bytes_max(),
                # Epoch boundaries are derived from these, so they come from genesis: every
                # validator must agree on them.
                checkpoint_interval_seqs=genesis.consensus.checkpoint_interval_seqs,
                log_window_seqs=genesis.consensus.log_window_seqs,
                **{name: getattr(config.limits, name) for name in LOCAL_LEDGER_LIMITS},
            ),
        )
        try:
            _check_identity(config, key, ledger)
            return cls(
                config=config,
                genesis=genesis,
                key=key,
                ledger=ledger,
                log_stream=log_stream,
                byzantine=byzantine,
            )
        except BaseException:
            ledger.close()
            raise

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        log_stream: TextIO | None = None,
        byzantine: ByzantineMode | None = None,
    ) -> Node:
        return cls.open(load_node_config(path), log_stream=log_stream, byzantine=byzantine)

    async def run(
        self, *, task_status: trio.TaskStatus[BoundPorts] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled. Reports the bound ports once every listener is up."""
        config = self.config
        try:
            async with trio.open_nursery() as nursery:
                peer_port = await nursery.start(self.network.run)
                await nursery.start(self.driver.run)
                backend = NodeBackend(node=self)
                server = ClientApiServer(
                    backend,
                    limits=from_node_config(config.limits, config.timeouts, self.genesis.consensus),
                    log=self.log,
                )
                _, client_port = await nursery.start(server.serve, config.client_listen)
                metrics_port = None
                if config.metrics_listen is not None:
                    host, port = config.metrics_listen
                    metrics_port = await nursery.start(serve_metrics, self.metrics, host, port)
                nursery.start_soon(self._refresh_metrics, server)
                ports = BoundPorts(peer=peer_port, client=client_port, metrics=metrics_port)
                cache = self.ledger.state_cache_stats()
                heads = self.ledger.history_heads_stats()
                self.log.info(
                    "node ready",
                    extra={
                        "peer_port": peer_port,
                        "client_port": client_port,
                        "metrics_port": metrics_port,
                        # Loaded at open, or 0 if the state is larger (state_cache_entries_max).
                        "state_cache_warmed": cache.warmed,
                        "state_cache_warm_s": round(cache.warm_s, 3),
                        # Loaded at open, or 0 (history_heads_cache_entries_max).
                        "history_heads_warmed": heads.warmed,
                        "history_heads_warm_s": round(heads.warm_s, 3),
                    },
                )
                task_status.started(ports)
        finally:
            self.log.info("node stopped")

    async def _refresh_metrics(self, server: ClientApiServer) -> None:
        """Copy counters kept by p2p, the client API, the ledger's state cache and the block
        pipeline into the registry, once a second."""
        while True:
            for code, count in server.errors_sent.items():
                self.metrics.client_errors.labels(code=code).set(count)
            self.metrics.client_connections.set(server.connections_open)
            self.metrics.peers_connected.set(len(self.network.connected_peers()))
            for name, stats in self.network.stats().items():
                self.metrics.peer_bytes_in.labels(peer=name).set(stats.bytes_in)
                self.metrics.peer_bytes_out.labels(peer=name).set(stats.bytes_out)
            cache = self.ledger.state_cache_stats()
            self.metrics.state_cache_entries.set(cache.entries)
            self.metrics.state_cache_loads.set(cache.loads)
            self.metrics.state_cache_cuts.set(cache.cuts)
            self.metrics.history_heads_cached.set(self.ledger.history_heads_stats().entries)
            pipeline = self.driver.pipeline_stats()
            if pipeline is not None:
                self.metrics.observe_pipeline(pipeline)
            await trio.sleep(1)

    def close(self) -> None:
        self.ledger.close()
