"""Partition plans: group parsing, the plan file, proxied cluster layouts, and the link proxy
forwarding and cutting real loopback connections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from config.node_config import load_node_config
from node.cluster.init import PORTS_PER_NODE, init_cluster, ports_needed
from node.cluster.layout import ClusterLayout, LinkEntry
from node.cluster.link_proxy import CHUNK_BYTES, LinkProxy, apply_plan
from node.cluster.partition import (
    PartitionError,
    PartitionPlan,
    parse_groups,
    read_plan,
    write_plan,
)
from node.cluster.ports import free_port_block
from node.cluster.processes import ClusterProcesses


@pytest.fixture
def layout(tmp_path: Path) -> ClusterLayout:
    return init_cluster(tmp_path / "c", nodes=4, base_port=30200, proxies=True)


def test_a_proxied_cluster_routes_every_peer_through_its_own_link_port(
    layout: ClusterLayout,
) -> None:
    assert len(layout.links) == 12 and ports_needed(4, proxies=True) == 24
    ports = [link.port for link in layout.links]
    assert sorted(ports) == list(range(30200 + 4 * PORTS_PER_NODE, 30200 + 24))
    config = load_node_config(layout.config_file("node-1"))
    routed = {p.name: p.address for p in config.peers}
    assert set(routed) == {"node-0", "node-2", "node-3"}
    for link in layout.links:
        if link.src == "node-1":
            assert routed[link.dst] == f"127.0.0.1:{link.port}"
    assert ClusterLayout.load(layout.root) == layout  # the links survive the manifest


def test_an_unproxied_cluster_is_unchanged(tmp_path: Path) -> None:
    plain = init_cluster(tmp_path / "p", nodes=4, base_port=30300)
    assert plain.links == ()
    assert load_node_config(plain.config_file("node-0")).peers == ()
    assert "links" not in json.loads((plain.root / "cluster.json").read_text())
    with pytest.raises(PartitionError, match="--proxies"):
        ClusterProcesses(plain).partition((("node-0",), ("node-1", "node-2", "node-3")))
    assert ClusterProcesses(plain).start_links() is None


def test_unnamed_nodes_form_one_more_group(layout: ClusterLayout) -> None:
    assert parse_groups(layout, ["node-0"]) == (("node-0",), ("node-1", "node-2", "node-3"))
    assert parse_groups(layout, ["node-0,node-1", "node-2"]) == (
        ("node-0", "node-1"),
        ("node-2",),
        ("node-3",),
    )
    plan = PartitionPlan(generation=1, groups=parse_groups(layout, ["node-0,node-1"]))
    assert plan.allows("node-0", "node-1") and plan.allows("node-3", "node-2")
    assert not plan.allows("node-0", "node-2") and not plan.allows("node-3", "node-1")
    assert PartitionPlan(generation=2, groups=()).allows("node-0", "node-3")


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "at least one group"),
        (["node-9"], "no node 'node-9'"),
        (["node-0", "node-0,node-1"], "more than one group"),
        ([","], "empty group"),
        (["node-0,node-1,node-2,node-3"], "cuts nothing"),
    ],
)
def test_bad_groups_are_refused(layout: ClusterLayout, specs: list[str], message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        parse_groups(layout, specs)
    assert not layout.links_file.exists()


def test_plans_replace_each_other_with_increasing_generations(layout: ClusterLayout) -> None:
    assert read_plan(layout) == PartitionPlan(generation=0, groups=())
    first = write_plan(layout, (("node-0",), ("node-1", "node-2", "node-3")))
    assert read_plan(layout) == first and first.generation == 1
    healed = write_plan(layout, ())
    assert read_plan(layout) == PartitionPlan(generation=2, groups=()) == healed


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"format": "other"}',
        '{"format": "assetledger-links-v1", "generation": -1, "groups": []}',
        '{"format": "assetledger-links-v1", "groups": []}',
    ],
)
def test_a_malformed_plan_file_is_a_clear_error(layout: ClusterLayout, text: str) -> None:
    layout.links_file.write_text(text)
    with pytest.raises(PartitionError, match=r"links\.json"):
        read_plan(layout)


async def _echo(stream: trio.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some(CHUNK_BYTES):
            await stream.send_all(data)


async def _round_trip(port: int, payload: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(payload)
        got = b""
        while len(got) < len(payload):
            chunk = await stream.receive_some(CHUNK_BYTES)
            if not chunk:
                break
            got += chunk
        return got


async def test_the_link_proxy_forwards_and_cuts_real_connections() -> None:
    base = free_port_block(2)
    proxy = LinkProxy(
        link=LinkEntry(src="node-0", dst="node-1", port=base),
        host="127.0.0.1",
        target=("127.0.0.1", base + 1),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_tcp, _echo, base + 1)
        await nursery.start(trio.serve_tcp, proxy.handle, base)
        payload = bytes(range(256)) * 1024  # several chunks
        assert await _round_trip(base, payload) == payload

        # A live connection through the link is closed when the link is cut.
        live = await trio.open_tcp_stream("127.0.0.1", base)
        await live.send_all(b"ping")
        assert await live.receive_some(16) == b"ping"
        cut = apply_plan([proxy], PartitionPlan(generation=1, groups=(("node-0",), ("node-1",))))
        assert cut == ["node-0->node-1"]
        assert await live.receive_some(16) == b""  # EOF
        await live.aclose()
        assert await _round_trip(base, b"hello") == b""  # new ones are closed at once
        assert not proxy.connections

        apply_plan([proxy], PartitionPlan(generation=2, groups=()))
        assert await _round_trip(base, b"again") == b"again"
        nursery.cancel_scope.cancel()
