"""Codec, certificates, configuration and persisted state: shapes, limits, errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import messages as m
from consensus.certificate import (
    CertificateError,
    CommitCertificate,
    certificate_problem,
    check_certificate,
    verify_certificate,
)
from consensus.config import ConfigError, ReplicaConfig, ReplicaLimits, ReplicaTimeouts
from consensus.encoding import DecodeLimits, digest, pack
from consensus.state import PersistedState, StateError, VoteRecord
from tests.consensus.harness import CHAIN_ID, key

KEYS = [key(i) for i in range(4)]
NAMES = [f"r{i}" for i in range(4)]
VALIDATORS = tuple((n, bytes(k.verify_key)) for n, k in zip(NAMES, KEYS, strict=True))
LIMITS = DecodeLimits()


def decode(data: bytes) -> m.Message:
    return m.decode_message(data, limits=LIMITS, n=4, window=8)


def sample_messages() -> list[m.Message]:
    pp = m.make_pre_prepare(KEYS[0], CHAIN_ID, "r0", view=0, seq=1, payload=b"batch")
    prep = m.make_prepare(KEYS[1], CHAIN_ID, "r1", view=0, seq=1, d=pp.digest)
    com = m.make_commit(KEYS[2], CHAIN_ID, "r2", view=0, seq=1, d=pp.digest)
    ck = m.make_checkpoint(KEYS[3], CHAIN_ID, "r3", seq=4, state_digest=b"s" * 32)
    proof = m.PreparedProof(
        view=0,
        seq=1,
        digest=pp.digest,
        pre_prepare_signature=pp.signature,
        prepares=(("r1", prep.signature),),
    )
    vc = m.make_view_change(
        KEYS[1],
        CHAIN_ID,
        "r1",
        new_view=1,
        checkpoint_seq=0,
        checkpoint_digest=m.GENESIS_STATE_DIGEST,
        checkpoint_proof=(),
        prepared=(proof,),
        payloads=(b"batch",),
    )
    nv = m.NewView(view=1, replica="r1", view_changes=(vc.stripped(),), pre_prepares=(pp,))
    return [pp, prep, com, ck, vc, nv]


@pytest.mark.parametrize("message", sample_messages(), ids=lambda x: type(x).__name__)
def test_every_message_round_trips(message: m.Message) -> None:
    data = m.encode_message(message)
    assert decode(data) == message
    assert m.encode_message(decode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_message_error(data: bytes) -> None:
    try:
        decode(data)
    except m.MessageError as exc:
        assert exc.reason


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(6)), st.integers(min_value=0), st.integers(0, 255))
def test_mutated_messages_only_ever_raise_message_error(which: int, pos: int, byte: int) -> None:
    data = bytearray(m.encode_message(sample_messages()[which]))
    data[pos % len(data)] = byte
    with contextlib.suppress(m.MessageError):  # any other exception fails the test
        decode(bytes(data))


def test_nested_sizes_are_bounded() -> None:
    too_many = [[f"r{i}", b"s" * 64] for i in range(9)]
    data = pack([5, 1, "r1", 0, b"\0" * 32, too_many, [], b"s" * 64, []])
    with pytest.raises(m.MessageError) as info:
        decode(data)
    assert info.value.reason == "too_many"


def make_cert(signers: range, *, chain: str = CHAIN_ID, seq: int = 3) -> CommitCertificate:
    d = digest(b"block")
    return CommitCertificate(
        view=0,
        seq=seq,
        digest=d,
        commits=tuple(
            (NAMES[i], m.make_commit(KEYS[i], chain, NAMES[i], view=0, seq=seq, d=d).signature)
            for i in signers
        ),
    )


def test_certificate_verifies_standalone_and_round_trips() -> None:
    cert = make_cert(range(3))
    assert verify_certificate(cert, CHAIN_ID, VALIDATORS)
    assert CommitCertificate.decode(cert.encode()) == cert


@pytest.mark.parametrize(
    ("cert", "problem"),
    [
        (make_cert(range(2)), "quorum is 3"),
        (make_cert(range(3), chain="other-chain"), "bad COMMIT signature"),
        (
            CommitCertificate(
                view=0,
                seq=3,
                digest=digest(b"block"),
                commits=(*make_cert(range(2)).commits, make_cert(range(2)).commits[0]),
            ),
            "signed twice",
        ),
        (
            CommitCertificate(
                view=0, seq=4, digest=digest(b"block"), commits=make_cert(range(3)).commits
            ),
            "bad COMMIT signature",
        ),
        (
            CommitCertificate(
                view=0,
                seq=3,
                digest=digest(b"block"),
                commits=(*make_cert(range(2)).commits, ("mallory", b"s" * 64)),
            ),
            "not a validator",
        ),
    ],
)
def test_bad_certificates_are_refused_with_the_reason(
    cert: CommitCertificate, problem: str
) -> None:
    assert not verify_certificate(cert, CHAIN_ID, VALIDATORS)
    assert problem in (certificate_problem(cert, CHAIN_ID, VALIDATORS) or "")
    with pytest.raises(CertificateError, match=problem):
        check_certificate(cert, CHAIN_ID, VALIDATORS)


@pytest.mark.parametrize("data", [b"", b"\x90", pack([1, 2, 3]), pack([0, 1, b"x", []])])
def test_malformed_certificate_bytes_raise_certificate_error(data: bytes) -> None:
    with pytest.raises(CertificateError):
        CommitCertificate.decode(data)


def test_persisted_state_round_trips_and_rejects_corruption() -> None:
    pp = sample_messages()[0]
    assert isinstance(pp, m.PrePrepare)
    state = PersistedState(
        view=3,
        view_active=False,
        view_change_attempts=2,
        checkpoint_seq=4,
        checkpoint_digest=b"c" * 32,
        checkpoint_proof=(("r1", b"s" * 64),),
        pre_prepares=(pp,),
        prepares=(VoteRecord(view=3, seq=5, digest=b"d" * 32),),
        commits=(VoteRecord(view=3, seq=5, digest=b"d" * 32),),
        prepared=(
            m.PreparedProof(
                view=2, seq=5, digest=b"d" * 32, pre_prepare_signature=b"s" * 64, prepares=()
            ),
        ),
        prepared_payloads=(b"p",),
    )
    assert PersistedState.decode(state.encode()) == state
    with pytest.raises(StateError):
        PersistedState.decode(state.encode()[:-3])
    with pytest.raises(StateError):
        PersistedState.decode(pack([99]))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ReplicaLimits(log_window_seqs=0), "log_window_seqs"),
        (lambda: ReplicaLimits(checkpoint_interval_seqs=16, log_window_seqs=20), "2 \\*"),
        (lambda: ReplicaLimits(message_bytes_max=1000), "message_bytes_max"),
        (lambda: ReplicaTimeouts(view_change_timeout_ticks=0), "view_change_timeout_ticks"),
        (lambda: ReplicaConfig(chain_id="c", validators=VALIDATORS, name="zed"), "own name"),
        (
            lambda: ReplicaConfig(chain_id="c", validators=(*VALIDATORS, VALIDATORS[0]), name="r0"),
            "unique",
        ),
        (
            lambda: ReplicaConfig(chain_id="c", validators=(("r0", b"short"),), name="r0"),
            "32 bytes",
        ),
    ],
)
def test_bad_configuration_is_refused_naming_the_field(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize(("n", "f", "q"), [(1, 0, 1), (4, 1, 3), (5, 1, 4), (7, 2, 5), (10, 3, 7)])
def test_quorum_sizes(n: int, f: int, q: int) -> None:
    validators = tuple((f"r{i}", bytes(key(i).verify_key)) for i in range(n))
    config = ReplicaConfig(chain_id="c", validators=validators, name="r0")
    assert (config.f, config.quorum) == (f, q)
