"""The partition plan of a proxied cluster: which node pairs may talk, as a file in DIR.

`cluster partition --dir DIR A,B C,D` writes DIR/links.json; the link proxy process
(node/cluster/link_proxy.py) polls it and answers in DIR/links.state.json with the plan
generation it has applied, so the command can wait until the cut is really in effect.

Groups: nodes in different groups cannot talk. Nodes not named in any group form one more
group together ("the rest"), so `partition node-0` isolates node-0 from everyone else and
`partition node-0,node-1` splits a 4-node cluster 2 | 2. An empty plan is a healed network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.cluster.layout import ClusterError, ClusterLayout

PLAN_FORMAT = "assetledger-links-v1"
PLAN_FILE_BYTES_MAX = 64 << 10


class PartitionError(ClusterError):
    """A partition request names unknown or repeated nodes, or the cluster has no proxies."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionPlan:
    generation: int  # increases with every write; the proxy acknowledges it
    groups: tuple[tuple[str, ...], ...]  # () = healed: every pair may talk

    def group_of(self, name: str) -> int:
        for index, group in enumerate(self.groups):
            if name in group:
                return index
        return len(self.groups)  # the rest

    def allows(self, src: str, dst: str) -> bool:
        return not self.groups or self.group_of(src) == self.group_of(dst)

    def describe(self) -> str:
        if not self.groups:
            return "healed (every node reaches every node)"
        return " | ".join(",".join(g) for g in self.groups)


def require_proxies(layout: ClusterLayout) -> None:
    if not layout.links:
        raise PartitionError(
            f"{layout.root} was created without link proxies; partitions need"
            " `assetledger cluster init --proxies` (the nodes must reach each other through them)"
        )


def parse_groups(layout: ClusterLayout, specs: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """`["node-0,node-1", "node-2"]` -> groups, checked; the unnamed rest becomes one group."""
    if not specs:
        raise PartitionError("name at least one group of nodes, e.g. `node-0` or `node-0,node-1`")
    known = [n.name for n in layout.nodes]
    seen: set[str] = set()
    groups: list[tuple[str, ...]] = []
    for spec in specs:
        names = tuple(n.strip() for n in spec.split(",") if n.strip())
        if not names:
            raise PartitionError(f"empty group {spec!r}")
        for name in names:
            if name not in known:
                raise PartitionError(
                    f"no node {name!r} in {layout.root} (nodes: {', '.join(known)})"
                )
            if name in seen:
                raise PartitionError(f"{name} is named in more than one group")
            seen.add(name)
        groups.append(names)
    rest = tuple(n for n in known if n not in seen)
    if rest:
        groups.append(rest)
    if len(groups) < 2:
        raise PartitionError("every node is in the same group: that cuts nothing (use `heal`)")
    return tuple(groups)


def read_plan(layout: ClusterLayout) -> PartitionPlan:
    """The current plan; a missing file is a healed network. Malformed -> PartitionError."""
    path = layout.links_file
    try:
        with path.open("rb") as fh:
            raw = fh.read(PLAN_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return PartitionPlan(generation=0, groups=())
    except OSError as exc:
        raise PartitionError(f"{path}: unreadable: {exc}") from exc
    if len(raw) > PLAN_FILE_BYTES_MAX:
        raise PartitionError(f"{path}: larger than {PLAN_FILE_BYTES_MAX} bytes")
    try:
        data = json.loads(raw)
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"not an {PLAN_FORMAT} file")
        generation = data["generation"]
        groups = tuple(tuple(str(n) for n in g) for g in data["groups"])
        if not isinstance(generation, int) or generation < 0:
            raise ValueError("generation must be a non-negative integer")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PartitionError(f"{path}: malformed partition plan: {exc}") from exc
    return PartitionPlan(generation=generation, groups=groups)


def _write_json_atomic(path: Path, data: object) -> None:
    # Write-then-rename: the proxy never reads a half-written plan.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, path)


def write_plan(layout: ClusterLayout, groups: tuple[tuple[str, ...], ...]) -> PartitionPlan:
    """Replace the plan (partitions do not accumulate); returns it with its new generation."""
    require_proxies(layout)
    plan = PartitionPlan(generation=read_plan(layout).generation + 1, groups=groups)
    _write_json_atomic(
        layout.links_file,
        {"format": PLAN_FORMAT, "generation": plan.generation, "groups": [list(g) for g in groups]},
    )
    return plan


def read_applied_generation(layout: ClusterLayout) -> int | None:
    """The plan generation the proxy process last applied (None if it never wrote one)."""
    try:
        data = json.loads(layout.links_state_file.read_text())
        generation = data["generation"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return generation if isinstance(generation, int) else None


def write_applied_generation(layout: ClusterLayout, generation: int) -> None:
    _write_json_atomic(layout.links_state_file, {"generation": generation, "pid": os.getpid()})
