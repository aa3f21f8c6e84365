"""Commit certificates: transferable proofs of finality.

A block at sequence `seq` with digest `digest` is final once a quorum (2f + 1 of n = 3f + 1)
of validators signed COMMIT(view, seq, digest). Those signatures, collected, are the block's
commit certificate. Anyone holding the validator set can check it with `verify_certificate`
(no replica needed), which is what clients and state transfer do.

A certificate names its epoch, and its signatures are bound to it (consensus.epochs): it is
checked against the validator set of *that* epoch, which the checker must also expect for
this block, so old blocks stay verifiable after the set changes and a retired set's keys can
never certify a block of a later epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.encoding import DecodeError, DecodeLimits, pack, unpack
from consensus.epochs import EPOCH_MAX, signing_domain
from consensus.messages import DIGEST_BYTES, SEQ_MAX, VIEW_MAX, MessageError, Signer, vote_body
from consensus.messages import _bytes as _check_bytes
from consensus.messages import _signers as _check_signers
from consensus.messages import _uint as _check_uint
from consensus.signing import Purpose, verify

CERTIFICATE_SIGNERS_MAX = 1024
CERTIFICATE_LIMITS = DecodeLimits(
    buffer_bytes_max=256 << 10, bin_bytes_max=1024, str_bytes_max=1024, array_items_max=2048
)


class CertificateError(ValueError):
    """A commit certificate is malformed or does not prove finality. Says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitCertificate:
    view: int
    seq: int
    digest: bytes
    commits: tuple[Signer, ...]  # (validator name, COMMIT signature), sorted by name
    epoch: int = 0

    def encode(self) -> bytes:
        return pack(
            [self.view, self.seq, self.digest, [[n, s] for n, s in self.commits], self.epoch]
        )

    @staticmethod
    def decode(data: bytes, limits: DecodeLimits = CERTIFICATE_LIMITS) -> CommitCertificate:
        """Decode untrusted bytes; raises CertificateError. Does not check signatures."""
        try:
            obj = unpack(data, limits)
            if not isinstance(obj, list) or len(obj) != 5:
                raise CertificateError("a certificate is an array of 5 fields")
            return CommitCertificate(
                view=_check_uint(obj[0], VIEW_MAX, "view"),
                seq=_check_uint(obj[1], SEQ_MAX, "seq"),
                digest=_check_bytes(obj[2], DIGEST_BYTES, "digest"),
                commits=_check_signers(obj[3], CERTIFICATE_SIGNERS_MAX, "commits"),
                epoch=_check_uint(obj[4], EPOCH_MAX, "epoch"),
            )
        except (DecodeError, MessageError) as exc:
            raise CertificateError(f"malformed certificate: {exc}") from exc


def quorum_size(n: int) -> int:
    """2f + 1 for n = 3f + 1 (see ReplicaConfig.quorum)."""
    f = (n - 1) // 3
    return (n + f) // 2 + 1


def certificate_problem(
    cert: CommitCertificate,
    chain_id: str,
    validators: tuple[tuple[str, bytes], ...],
    *,
    epoch: int = 0,
    quorum: int | None = None,
) -> str | None:
    """None if `cert` proves finality of (seq, digest) on `chain_id`; else the reason.

    `validators` is the set of `epoch`, the epoch the block belongs to. Every listed signer
    must be a distinct validator with a valid COMMIT signature, and there must be at least a
    quorum of them. `quorum` overrides the size for tests only.
    """
    if cert.epoch != epoch:
        return f"certificate of epoch {cert.epoch}, but block {cert.seq} belongs to epoch {epoch}"
    domain = signing_domain(chain_id, epoch)
    keys = dict(validators)
    needed = quorum_size(len(validators)) if quorum is None else quorum
    if len(cert.commits) < needed:
        return f"{len(cert.commits)} commit signatures, a quorum is {needed}"
    body = vote_body(cert.view, cert.seq, cert.digest)
    seen: set[str] = set()
    for name, sig in cert.commits:
        if name in seen:
            return f"validator {name} signed twice"
        seen.add(name)
        key = keys.get(name)
        if key is None:
            return f"{name} is not a validator"
        if not verify(key, sig, Purpose.COMMIT, domain, body):
            return f"bad COMMIT signature from {name}"
    return None


def verify_certificate(
    cert: CommitCertificate,
    chain_id: str,
    validators: tuple[tuple[str, bytes], ...],
    *,
    epoch: int = 0,
) -> bool:
    """True iff `cert` is a valid commit certificate for this chain and `epoch`'s set."""
    return certificate_problem(cert, chain_id, validators, epoch=epoch) is None


def check_certificate(
    cert: CommitCertificate,
    chain_id: str,
    validators: tuple[tuple[str, bytes], ...],
    *,
    epoch: int = 0,
) -> None:
    """Like verify_certificate, but raises CertificateError naming the problem."""
    problem = certificate_problem(cert, chain_id, validators, epoch=epoch)
    if problem is not None:
        raise CertificateError(problem)
