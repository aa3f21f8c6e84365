"""The governance ops on the wire: argument checks, result shapes (both directions) and the
paging rule that a governance page never splits a block."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio

from node.api.governance_results import (
    EvidenceList,
    GovernanceEntry,
    GovernancePage,
    ValidatorSetInfo,
)
from node.api.ledger_queries import page_by_height
from node.api.schema import SchemaError
from node.api.server import ClientApiServer
from tests.node.api import protocol_vectors as pv
from tests.node.api.fake_backend import FakeBackend
from tests.node.api.helpers import connect_raw


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("validators", {"height": 0}, "validators.height"),
        ("validators", {"height": "7"}, "validators.height"),
        ("validators", {"epoch": 1}, "unknown field"),
        ("governance", {}, "governance.limit"),
        ("governance", {"limit": 51}, "governance.limit"),
        ("governance", {"limit": 5, "before_height": 0}, "governance.before_height"),
        ("evidence", {"limit": 0}, "evidence.limit"),
        ("evidence", {"limit": 101}, "evidence.limit"),
        ("evidence", {"limit": 5, "before_height": 0}, "evidence.before_height"),
    ],
)
async def test_bad_arguments_are_bad_requests(
    nursery: trio.Nursery, op: str, args: dict[str, Any], field: str
) -> None:
    backend = FakeBackend()
    peer = connect_raw(nursery, ClientApiServer(backend))
    response = await peer.request(1, op, args)
    assert response[:2] == [1, "error"]
    assert response[2]["code"] == "bad_request" and field in response[2]["message"]
    assert op not in backend.calls  # refused before the backend is asked
    # The connection stays up and serves the well-formed request.
    ok = await peer.request(2, op, {"limit": 1} if op != "validators" else {})
    assert ok[:2] == [2, "ok"]


async def test_validators_above_the_next_block_is_not_found(nursery: trio.Nursery) -> None:
    peer = connect_raw(nursery, ClientApiServer(FakeBackend()))
    response = await peer.request(1, "validators", {"height": 2})
    assert response[2]["code"] == "not_found" and "chain is at 0" in response[2]["message"]
    ok = await peer.request(2, "validators", {"height": 1})
    assert ValidatorSetInfo.from_wire(ok[2]).epoch == 0


def test_results_round_trip() -> None:
    validator_set, page, evidence = pv.governance_examples()
    assert ValidatorSetInfo.from_wire(validator_set.to_wire()) == validator_set
    assert GovernancePage.from_wire(page.to_wire()) == page
    assert EvidenceList.from_wire(evidence.to_wire()) == evidence


def _with(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    """A deep copy of wire map `obj` with the item at `path` replaced."""
    import copy

    out = copy.deepcopy(obj)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def test_a_client_refuses_results_of_the_wrong_shape() -> None:
    validator_set, page, evidence = pv.governance_examples()
    vs, gp, ev = validator_set.to_wire(), page.to_wire(), evidence.to_wire()
    bad: list[tuple[Any, dict[str, Any], str]] = [
        (ValidatorSetInfo, _with(vs, ["regulator_threshold"], 2), "regulator_threshold"),
        (ValidatorSetInfo, _with(vs, ["validators"], []), "at least one validator"),
        (ValidatorSetInfo, _with(vs, ["validators", 0, "public_key"], b"k"), "public_key"),
        (ValidatorSetInfo, _with(vs, ["pending_validators"], "v4"), "pending_validators"),
        (ValidatorSetInfo, _with(vs, ["last_seq"], -1), "last_seq"),
        (GovernancePage, _with(gp, ["records", 0, "kind"], "transfer"), "kind"),
        (GovernancePage, _with(gp, ["records", 0, "args", "name"], {"a": 1}), "args.name"),
        (GovernancePage, _with(gp, ["records", 0, "args", "keys"], [[b"x"]]), "args.keys[0]"),
        (GovernancePage, _with(gp, ["records", 0, "args", "x"], "y" * 600), "args.x"),
        (
            GovernancePage,
            _with(gp, ["records", 0, "signatures", 0, "signature"], bytes(63)),
            "signature",
        ),
        (GovernancePage, _with(gp, ["next_before_height"], 0), "next_before_height"),
        (EvidenceList, _with(ev, ["records", 0, "message_kind"], "view_change"), "message_kind"),
        (EvidenceList, _with(ev, ["records", 0, "extra"], 1), "unknown field"),
        (EvidenceList, _with(ev, ["next_before_height"], 0), "next_before_height"),
    ]
    for cls, obj, fragment in bad:
        with pytest.raises(SchemaError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            cls.from_wire(obj)


def _records(*heights: int) -> list[GovernanceEntry]:
    (template,) = pv.governance_examples()[1].records
    return [dataclasses.replace(template, height=h) for h in heights]


def test_a_governance_page_never_splits_a_block() -> None:
    heights = lambda page: [r.height for r in page]  # noqa: E731
    # Everything fits: no next page.
    page, after = page_by_height(_records(9, 7), 2, None)  # type: ignore[misc]
    assert (heights(page), after) == ([9, 7], None)
    # The boundary falls between blocks: the page is full.
    page, after = page_by_height(_records(9, 7, 5), 2, None)  # type: ignore[misc]
    assert (heights(page), after) == ([9, 7], 7)
    # The boundary falls inside block 7: its records move to the next page.
    page, after = page_by_height(_records(9, 7, 7), 2, None)  # type: ignore[misc]
    assert (heights(page), after) == ([9], 9)
    # One block holds more than `limit`: the caller must fetch it whole, then gets it all.
    assert page_by_height(_records(7, 7, 7), 2, None) == 7
    page, after = page_by_height(_records(7, 7, 7), 2, _records(7, 7, 7, 7))  # type: ignore[misc]
    assert (heights(page), after) == ([7, 7, 7, 7], 7)


async def test_one_block_with_more_records_than_the_limit_is_one_page(
    nursery: trio.Nursery,
) -> None:
    backend = FakeBackend()
    backend.governance_records = _records(1, 3, 3, 3, 4)  # oldest first
    peer = connect_raw(nursery, ClientApiServer(backend))
    pages: list[list[int]] = []
    before: int | None = None
    while True:
        args: dict[str, Any] = {"limit": 2}
        if before is not None:
            args["before_height"] = before
        response = await peer.request(len(pages), "governance", args)
        page = GovernancePage.from_wire(response[2])
        pages.append([r.height for r in page.records])
        before = page.next_before_height
        if before is None:
            break
    assert pages == [[4], [3, 3, 3], [1]]
