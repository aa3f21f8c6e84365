"""Equivocation evidence (consensus/evidence.py): what proves a validator faulty, and every
reason a pair of messages does not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import events as ev
from consensus import messages as m
from consensus.actions import EquivocationDetected
from consensus.encoding import pack
from consensus.epochs import signing_domain
from consensus.evidence import (
    EVIDENCE_MESSAGE_BYTES_MAX,
    KIND_CODES,
    KIND_NAMES,
    Equivocation,
    EvidenceError,
    check_equivocation,
    check_evidence,
    evidence_form,
)
from consensus.replica import Replica
from tests.consensus.harness import CHAIN_ID, Cluster, batch, key

VALIDATORS = tuple((f"r{i}", bytes(key(i).verify_key)) for i in range(4))
KEYS = dict(VALIDATORS)


def signed(
    kind: str,
    label: str,
    *,
    signer: int = 2,
    name: str = "r2",
    epoch: int = 0,
    view: int = 3,
    seq: int = 9,
) -> bytes:
    """One encoded message of `kind`; `label` decides its digest."""
    domain = signing_domain(CHAIN_ID, epoch)
    k = key(signer)
    d = m.digest(label.encode())
    msg: m.Message
    if kind == "pre_prepare":
        msg = evidence_form(
            m.make_pre_prepare(k, domain, name, view=view, seq=seq, payload=label.encode())
        )
    elif kind == "prepare":
        msg = m.make_prepare(k, domain, name, view=view, seq=seq, d=d)
    elif kind == "commit":
        msg = m.make_commit(k, domain, name, view=view, seq=seq, d=d)
    else:
        msg = m.make_checkpoint(k, domain, name, seq, d)
    return m.encode_message(msg)


def check(first: bytes, second: bytes, *, epoch: int = 0, **kw: int) -> Equivocation:
    return check_evidence(
        first, second, chain_id=CHAIN_ID, epoch=epoch, validators=VALIDATORS, **kw
    )


def reason_of(first: bytes, second: bytes, *, epoch: int = 0, **kw: int) -> str:
    with pytest.raises(EvidenceError) as info:
        check(first, second, epoch=epoch, **kw)
    return info.value.reason


def test_kind_names_and_codes_are_stable() -> None:
    # Stored in ledger records and index keys: never renumber.
    assert KIND_NAMES == ("pre_prepare", "prepare", "commit", "checkpoint")
    assert KIND_CODES == {"pre_prepare": 1, "prepare": 2, "commit": 3, "checkpoint": 4}


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("epoch", [0, 5])
def test_a_conflicting_pair_proves_equivocation_in_either_order(kind: str, epoch: int) -> None:
    a, b = signed(kind, "a", epoch=epoch), signed(kind, "b", epoch=epoch)
    for first, second in ((a, b), (b, a)):
        proof = check(first, second, epoch=epoch)
        assert proof == Equivocation(
            epoch=epoch,
            validator="r2",
            public_key=KEYS["r2"],
            message_kind=kind,
            kind_code=KIND_CODES[kind],
            view=0 if kind == "checkpoint" else 3,
            seq=9,
        )


def test_key_of_is_asked_for_the_signer_only() -> None:
    asked: list[str] = []

    def key_of(name: str) -> bytes | None:
        asked.append(name)
        return KEYS.get(name)

    a, b = signed("commit", "a"), signed("commit", "b")
    check_equivocation(a, b, chain_id=CHAIN_ID, epoch=0, key_of=key_of)
    assert asked == ["r2"]


def _view_change() -> bytes:
    vc = m.make_view_change(
        key(2),
        CHAIN_ID,
        "r2",
        new_view=1,
        checkpoint_seq=0,
        checkpoint_digest=bytes(32),
        checkpoint_proof=(),
        prepared=(),
        payloads=(),
    )
    return m.encode_message(vc)


def _full_pre_prepare(label: str) -> bytes:
    pp = m.make_pre_prepare(key(2), CHAIN_ID, "r2", view=3, seq=9, payload=label.encode())
    return m.encode_message(pp)


def _with_bad_signature(data: bytes) -> bytes:
    msg = m.decode_message(data, limits=m.DecodeLimits(), n=4, window=8)
    assert isinstance(msg, m.Prepare)
    return m.encode_message(
        m.Prepare(
            view=msg.view,
            seq=msg.seq,
            digest=msg.digest,
            replica=msg.replica,
            signature=bytes(64),
        )
    )


A = signed("prepare", "a")
REJECTIONS: dict[str, tuple[str, bytes, bytes]] = {
    "garbage": ("undecodable", A, b"\xc1"),
    "not canonical": ("undecodable", A, b"\xd0\x01"),
    "unknown message kind": ("undecodable", pack([99, 1]), A),
    "truncated": ("undecodable", A[:-1], signed("prepare", "b")),
    "view change": ("not_equivocable", _view_change(), A),
    "new view": ("not_equivocable", pack([6, 1, "r2", [], []]), A),
    "pre-prepare with payload": (
        "payload_not_stripped",
        _full_pre_prepare("a"),
        signed("pre_prepare", "b"),
    ),
    "different kinds": ("different_kinds", A, signed("commit", "b")),
    "different validators": (
        "different_validators",
        A,
        signed("prepare", "b", signer=3, name="r3"),
    ),
    "different seq": ("different_slots", A, signed("prepare", "b", seq=10)),
    "different view": ("different_slots", A, signed("prepare", "b", view=4)),
    "checkpoints of different seqs": (
        "different_slots",
        signed("checkpoint", "a", seq=8),
        signed("checkpoint", "b", seq=12),
    ),
    "same digest, two signings": ("no_conflict", A, signed("prepare", "a")),
    "same state digest": ("no_conflict", signed("checkpoint", "a"), signed("checkpoint", "a")),
    "not a validator": (
        "unknown_validator",
        signed("prepare", "a", signer=9, name="x9"),
        signed("prepare", "b", signer=9, name="x9"),
    ),
    "wrong key for the name": (
        "bad_signature",
        signed("prepare", "a", signer=3, name="r2"),
        signed("prepare", "b", signer=3, name="r2"),
    ),
    "second signature forged": ("bad_signature", A, _with_bad_signature(signed("prepare", "b"))),
    "first signature forged": ("bad_signature", _with_bad_signature(A), signed("prepare", "b")),
    "signed for another epoch": (
        "bad_signature",
        signed("prepare", "a", epoch=1),
        signed("prepare", "b", epoch=1),
    ),
    "one of each epoch": ("bad_signature", A, signed("prepare", "b", epoch=1)),
}


@pytest.mark.parametrize("label", list(REJECTIONS))
def test_every_rejection_has_its_reason(label: str) -> None:
    reason, first, second = REJECTIONS[label]
    assert reason_of(first, second) == reason
    assert reason_of(second, first) == reason


def test_evidence_is_bound_to_its_epochs_signing_domain() -> None:
    a1, b1 = signed("commit", "a", epoch=1), signed("commit", "b", epoch=1)
    assert check(a1, b1, epoch=1).epoch == 1
    assert reason_of(a1, b1, epoch=0) == "bad_signature"
    assert reason_of(a1, b1, epoch=2) == "bad_signature"
    a0, b0 = signed("commit", "a"), signed("commit", "b")
    assert reason_of(a0, b0, epoch=1) == "bad_signature"


def test_the_size_limit_is_a_parameter() -> None:
    a, b = signed("prepare", "a"), signed("prepare", "b")
    assert len(a) < 256 < EVIDENCE_MESSAGE_BYTES_MAX  # a stripped vote is small
    assert reason_of(a, b, message_bytes_max=len(a) - 1) == "too_large"
    assert check(a, b, message_bytes_max=len(a)).seq == 9
    big = _full_pre_prepare("x" * EVIDENCE_MESSAGE_BYTES_MAX)
    assert reason_of(big, signed("pre_prepare", "b")) == "too_large"


def test_a_name_longer_than_the_message_format_allows_is_undecodable() -> None:
    long_name = pack([2, 3, 9, bytes(32), "r" * (m.NAME_CHARS_MAX + 1), bytes(64)])
    assert reason_of(long_name, A) == "undecodable"


# ---------------------------------------------------------------- from the replica


def test_the_replicas_evidence_verifies_and_is_evidence_form() -> None:
    """What Replica emits (EquivocationDetected) passes the checker, small enough for the
    ledger: an equivocating primary, a double PREPARE and a double CHECKPOINT."""
    found: list[EquivocationDetected] = []

    def feed(replica: Replica, sender: str, msg: m.Message) -> None:
        out = replica.step(ev.MessageReceived(sender=sender, data=m.encode_message(msg)))
        found.extend(a for a in out if isinstance(a, EquivocationDetected))

    r1 = Cluster().replica("r1")
    for payload in (batch("p" * 600), batch("q" * 600)):
        pp = m.make_pre_prepare(key(0), CHAIN_ID, "r0", view=0, seq=1, payload=payload)
        feed(r1, "r0", pp)
    r1 = Cluster().replica("r1")  # the first one left view 0
    for d in (b"\x01" * 32, b"\x02" * 32):
        feed(r1, "r2", m.make_prepare(key(2), CHAIN_ID, "r2", view=0, seq=1, d=d))
    for s in (b"\x01" * 32, b"\x02" * 32):
        feed(r1, "r3", m.make_checkpoint(key(3), CHAIN_ID, "r3", 4, s))
    kinds = []
    for e in found:
        assert len(e.first) < 256 and len(e.second) < 256  # no batch inside
        proof = check(e.first, e.second, epoch=e.epoch)
        assert proof.validator == e.validator
        kinds.append(proof.message_kind)
    assert kinds == ["pre_prepare", "prepare", "checkpoint"]


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(0, 1),
    pos=st.integers(0, 10_000),
    byte=st.integers(0, 255),
    junk=st.binary(min_size=0, max_size=300),
)
def test_corrupted_or_random_evidence_never_raises_anything_else(
    which: int, pos: int, byte: int, junk: bytes
) -> None:
    good = (signed("checkpoint", "a"), signed("checkpoint", "b"))
    target = bytearray(good[which])
    target[pos % len(target)] = byte
    corrupted = [*good]
    corrupted[which] = bytes(target)
    for first, second in ((good[0], junk), (junk, good[1]), tuple(corrupted)):
        try:
            proof = check(first, second)
        except EvidenceError as exc:
            assert exc.reason and str(exc)
            continue
        assert (first, second) == good and proof.validator == "r2"
