"""Signed transactions: model, kinds with typed arguments, codec, verification, builder."""

from node.tx.builder import add_signatures, build_transfer, make_tx, public_key
from node.tx.codec import decode_signed_transaction, encode_signed_transaction
from node.tx.errors import ArgsError, DecodeReason, TxBuildError, TxDecodeError, TxError
from node.tx.kinds import AMOUNT_MAX, ARGS_BY_KIND, Args, Category, Kind, Role
from node.tx.limits import DEFAULT_TX_LIMITS, TxLimits
from node.tx.model import SignedTransaction, Transaction
from node.tx.verify import (
    regulator_approvals,
    regulator_quorum_ok,
    verify_batch,
    verify_parallel,
    verify_transaction,
)

__all__ = [
    "AMOUNT_MAX",
    "ARGS_BY_KIND",
    "DEFAULT_TX_LIMITS",
    "Args",
    "ArgsError",
    "Category",
    "DecodeReason",
    "Kind",
    "Role",
    "SignedTransaction",
    "Transaction",
    "TxBuildError",
    "TxDecodeError",
    "TxError",
    "TxLimits",
    "add_signatures",
    "build_transfer",
    "decode_signed_transaction",
    "encode_signed_transaction",
    "make_tx",
    "public_key",
    "regulator_approvals",
    "regulator_quorum_ok",
    "verify_batch",
    "verify_parallel",
    "verify_transaction",
]
