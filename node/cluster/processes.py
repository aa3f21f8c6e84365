"""Run the nodes of a local cluster as real OS processes, and inject process faults.

Each node runs as `python -m node.cli node --config DIR/node-i/node.toml` in its own session
(so a Ctrl-C in the terminal reaches the supervisor, which then stops the nodes in order),
with stdout and stderr appended to DIR/node-i/node.log and its pid in DIR/node-i/node.pid.

The pid file is the source of truth, so `cluster kill|pause|resume|restart` work from another
terminal while `cluster up` runs. A pid is only trusted if /proc says that process is still
running *this* node's config (pids are reused), and a zombie counts as stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from node.cluster.layout import ClusterError, ClusterLayout
from node.cluster.link_proxy import proxy_command
from node.cluster.partition import (
    PartitionPlan,
    read_applied_generation,
    require_proxies,
    write_plan,
)

STOP_TIMEOUT_S_DEFAULT = 10.0
LINKS_READY_TIMEOUT_S = 10.0
PLAN_APPLY_TIMEOUT_S = 5.0
READY_TIMEOUT_S_DEFAULT = 20.0
POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 15


LINKS = "(links)"  # key of the link proxy process among our children (not a node name)


class ProcessState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class NodeNotReadyError(ClusterError):
    """A node process exited or did not answer on its client port in time."""


def node_command(layout: ClusterLayout, name: str, *, byzantine: str | None = None) -> list[str]:
    """The node's command line; `byzantine` (a fault drill) adds `--byzantine MODE`."""
    command = [sys.executable, "-m", "node.cli", "node", "--config", str(layout.config_file(name))]
    return command if byzantine is None else [*command, "--byzantine", byzantine]


def _proc_stat_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat (R, S, T, Z, ...), None if gone/unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 3, after the parenthesised command name (which may itself contain spaces).
    return stat.rpartition(")")[2].split()[0]


def _proc_runs_config(pid: int, config: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(config).encode() in cmdline.split(b"\0")


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeProcessInfo:
    name: str
    pid: int | None
    state: ProcessState


class ClusterProcesses:
    """Start, stop and fault-inject the node processes of one cluster directory."""

    def __init__(self, layout: ClusterLayout, *, env: dict[str, str] | None = None) -> None:
        self.layout = layout
        self._env = env
        # Children we started ourselves: kept so their exit status is reaped (no zombies).
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._exit_codes: dict[str, int] = {}

    @classmethod
    def open(cls, root: Path) -> ClusterProcesses:
        return cls(ClusterLayout.load(root))

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.layout.nodes]

    def reload(self) -> None:
        """Re-read the manifest: `cluster add-node` or a key switch may have changed it from
        another terminal. An unreadable manifest leaves the layout as it was."""
        with contextlib.suppress(ClusterError):
            self.layout = ClusterLayout.load(self.layout.root)

    # ------------------------------------------------------------------ inspection

    def _reap(self, name: str) -> None:
        child = self._children.get(name)
        if child is not None and child.poll() is not None:
            self._exit_codes[name] = child.returncode
            del self._children[name]

    def pid(self, name: str) -> int | None:
        """The pid of `name`'s live process, or None (stale pid files are ignored)."""
        self.layout.node(name)  # unknown names are a ClusterError
        self._reap(name)
        try:
            pid = int(self.layout.pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        state = _proc_stat_state(pid)
        if state is None or state in ("Z", "X"):
            return None
        child = self._children.get(name)
        if child is not None and child.pid == pid:
            return pid  # our own live child (maybe not yet exec'd: cmdline still ours)
        if not _proc_runs_config(pid, self.layout.config_file(name)):
            return None
        return pid

    def state(self, name: str) -> ProcessState:
        pid = self.pid(name)
        if pid is None:
            return ProcessState.STOPPED
        return ProcessState.PAUSED if _proc_stat_state(pid) in ("T", "t") else ProcessState.RUNNING

    def info(self) -> list[NodeProcessInfo]:
        return [NodeProcessInfo(name=n, pid=self.pid(n), state=self.state(n)) for n in self.names]

    def exit_code(self, name: str) -> int | None:
        """Exit status of a child we started that has exited (None if running or unknown)."""
        self._reap(name)
        return self._exit_codes.get(name)

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.layout.log_file(name), lines)

    # ------------------------------------------------------------------ lifecycle

    def start(self, name: str, *, byzantine: str | None = None) -> int:
        """Launch `name` (not waiting for it to serve); returns its pid.

        `byzantine` starts it in a misbehaving mode (`assetledger node --byzantine`)."""
        running = self.pid(name)
        if running is not None:
            raise ClusterError(f"{name} is already running (pid {running})")
        self.start_links()  # a proxied node cannot reach anyone without them
        log_file = self.layout.log_file(name)
        with log_file.open("ab") as log:
            mode = "" if byzantine is None else f" (BYZANTINE: {byzantine})"
            log.write(
                f"--- starting {name}{mode} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode()
            )
            log.flush()
            child = subprocess.Popen(
                node_command(self.layout, name, byzantine=byzantine),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.layout.node_dir(name),
                env=self._env,
                start_new_session=True,
            )
        self._children[name] = child
        self.layout.pid_file(name).write_text(f"{child.pid}\n")
        return child.pid

    def start_all(self, names: Iterable[str] | None = None) -> None:
        for name in names or self.names:
            if self.pid(name) is None:
                self.start(name)

    # ------------------------------------------------------------------ link proxies

    def links_pid(self) -> int | None:
        """The pid of this cluster's live link proxy process, or None."""
        try:
            pid = int(self.layout.links_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _proc_stat_state(pid) in (None, "Z", "X"):
            return None
        child = self._children.get(LINKS)
        if child is not None and child.pid == pid:
            return pid
        if not _proc_runs_config(pid, self.layout.root.resolve()):
            return None
        return pid

    def start_links(self) -> int | None:
        """Start the link proxies (clusters made with `--proxies`) unless running; their pid.

        Returns once every link port is bound and the current partition plan is applied, so
        nodes started next find their peers' proxies listening."""
        if not self.layout.links:
            return None
        running = self.links_pid()
        if running is not None:
            return running
        self.layout.links_state_file.unlink(missing_ok=True)
        log_file = self.layout.links_log_file
        with log_file.open("ab") as log:
            child = subprocess.Popen(
                proxy_command(self.layout),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.layout.root,
                env=self._env,
                start_new_session=True,
            )
        self._children[LINKS] = child
        self.layout.links_pid_file.write_text(f"{child.pid}\n")
        deadline = time.monotonic() + LINKS_READY_TIMEOUT_S
        while read_applied_generation(self.layout) is None:
            if child.poll() is not None or time.monotonic() >= deadline:
                self.stop_links()
                raise NodeNotReadyError(
                    f"the link proxies did not start; see {log_file}:\n{_tail(log_file)}"
                )
            time.sleep(POLL_INTERVAL_S)
        return child.pid

    def stop_links(self) -> None:
        pid = self.links_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(LINKS, pid, STOP_TIMEOUT_S_DEFAULT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(LINKS, pid, STOP_TIMEOUT_S_DEFAULT)
        child = self._children.pop(LINKS, None)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=STOP_TIMEOUT_S_DEFAULT)
        self.layout.links_pid_file.unlink(missing_ok=True)

    def partition(
        self, groups: tuple[tuple[str, ...], ...], *, timeout_s: float = PLAN_APPLY_TIMEOUT_S
    ) -> tuple[PartitionPlan, bool]:
        """Replace the partition plan (groups from partition.parse_groups; () heals).

        Returns the plan and whether the running proxies applied it (False: none is running,
        it takes effect when the cluster starts). ClusterError if they do not within
        `timeout_s`."""
        require_proxies(self.layout)
        plan = write_plan(self.layout, groups)
        if self.links_pid() is None:
            return plan, False
        deadline = time.monotonic() + timeout_s
        while (read_applied_generation(self.layout) or 0) < plan.generation:
            if time.monotonic() >= deadline or self.links_pid() is None:
                raise ClusterError(
                    f"the link proxies did not apply the plan within {timeout_s:g} s;"
                    f" see {self.layout.links_log_file}"
                )
            time.sleep(POLL_INTERVAL_S / 5)
        return plan, True

    def _signal(self, name: str, signum: signal.Signals) -> int:
        pid = self.pid(name)
        if pid is None:
            raise ClusterError(f"{name} is not running (see {self.layout.log_file(name)})")
        os.kill(pid, signum)
        return pid

    def _alive(self, name: str, pid: int) -> bool:
        child = self._children.get(name)
        if child is not None and child.pid == pid and child.poll() is not None:
            self._exit_codes[name] = child.returncode
            del self._children[name]
        return _proc_stat_state(pid) not in (None, "Z", "X")

    def _wait_gone(self, name: str, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._alive(name, pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)
        return True

    def kill(self, name: str) -> int:
        """kill -9: no chance to clean up (a crash). Returns the pid that was killed."""
        pid = self._signal(name, signal.SIGKILL)
        self._wait_gone(name, pid, STOP_TIMEOUT_S_DEFAULT)
        return pid

    def stop(self, name: str, *, timeout_s: float = STOP_TIMEOUT_S_DEFAULT) -> bool:
        """SIGTERM (a paused node is resumed so it can act on it), SIGKILL after `timeout_s`.

        Returns True if the node stopped cleanly, False if it had to be killed."""
        pid = self.pid(name)
        if pid is None:
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
        if self._wait_gone(name, pid, timeout_s):
            self.layout.pid_file(name).unlink(missing_ok=True)
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(name, pid, STOP_TIMEOUT_S_DEFAULT)
        self.layout.pid_file(name).unlink(missing_ok=True)
        return False

    def stop_all(self, *, timeout_s: float = STOP_TIMEOUT_S_DEFAULT) -> dict[str, bool]:
        """Stop every node: SIGTERM all at once, then wait, then SIGKILL stragglers.

        Nodes added to the manifest since it was read (`cluster add-node`) are included."""
        self.reload()
        pids = {n: p for n in self.names if (p := self.pid(n)) is not None}
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + timeout_s
        clean: dict[str, bool] = {}
        for name, pid in pids.items():
            clean[name] = self._wait_gone(name, pid, max(0.0, deadline - time.monotonic()))
            if not clean[name]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(name, pid, STOP_TIMEOUT_S_DEFAULT)
            self.layout.pid_file(name).unlink(missing_ok=True)
        self.stop_links()
        return clean

    def kill_all(self) -> None:
        """Last-resort cleanup (errors, Ctrl-C): SIGKILL every node we know of."""
        self.reload()
        for name in self.names:
            pid = self.pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(name, pid, STOP_TIMEOUT_S_DEFAULT)
        for child in self._children.values():
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=STOP_TIMEOUT_S_DEFAULT)
        self._children.clear()
        self.stop_links()

    def _wait_state(self, pid: int, stopped: bool) -> None:
        # Signals are delivered asynchronously; return once /proc shows the effect (bounded).
        deadline = time.monotonic() + STOP_TIMEOUT_S_DEFAULT
        while time.monotonic() < deadline:
            state = _proc_stat_state(pid)
            if state is None or (state in ("T", "t")) == stopped:
                return
            time.sleep(POLL_INTERVAL_S / 10)

    def pause(self, name: str) -> int:
        """SIGSTOP: the process is frozen (sockets stay open; peers see silence)."""
        pid = self._signal(name, signal.SIGSTOP)
        self._wait_state(pid, stopped=True)
        return pid

    def resume(self, name: str) -> int:
        pid = self._signal(name, signal.SIGCONT)
        self._wait_state(pid, stopped=False)
        return pid

    def restart(
        self,
        name: str,
        *,
        timeout_s: float = STOP_TIMEOUT_S_DEFAULT,
        hard: bool = False,
        byzantine: str | None = None,
    ) -> int:
        """Stop (SIGTERM, or kill -9 with `hard`) if running, then start again (in a
        misbehaving mode with `byzantine`; a plain restart makes it honest again)."""
        if self.pid(name) is not None:
            if hard:
                self.kill(name)
            else:
                self.stop(name, timeout_s=timeout_s)
        return self.start(name, byzantine=byzantine)

    # ------------------------------------------------------------------ readiness

    def check_alive(self, name: str) -> None:
        """Raise NodeNotReadyError (with the log tail) if `name`'s process is gone."""
        if self.pid(name) is None:
            code = self.exit_code(name)
            how = f" with exit code {code}" if code is not None else ""
            raise NodeNotReadyError(
                f"{name} exited{how}; see {self.layout.log_file(name)}:\n{self.log_tail(name)}"
            )
