"""Stable receipt reason codes. Never rename or reuse one: clients and stored receipts use them."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    # Not authentic: the nonce is NOT consumed and the tx id is NOT claimed.
    MALFORMED = "malformed"
    WRONG_CHAIN = "wrong_chain"
    BAD_SIGNATURE = "bad_signature"
    BAD_NONCE = "bad_nonce"
    # Authentic but against the rules: the nonce IS consumed and the receipt stored.
    NOT_AUTHORIZED = "not_authorized"
    REGULATOR_THRESHOLD_NOT_MET = "regulator_threshold_not_met"
    ACCOUNT_NOT_REGISTERED = "account_not_registered"
    ACCOUNT_EXPIRED = "account_expired"
    ACCOUNT_FROZEN = "account_frozen"
    ACCOUNT_RECOVERED = "account_recovered"
    ACCOUNT_REVOKED = "account_revoked"
    ASSET_PAUSED = "asset_paused"
    ASSET_NOT_PAUSED = "asset_not_paused"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    SUPPLY_CAP_EXCEEDED = "supply_cap_exceeded"
    CAP_BELOW_SUPPLY = "cap_below_supply"
    UNKNOWN_ASSET = "unknown_asset"
    ASSET_EXISTS = "asset_exists"
    SELF_TRANSFER = "self_transfer"
    ROLE_ALREADY_GRANTED = "role_already_granted"
    ROLE_NOT_GRANTED = "role_not_granted"
    ALREADY_FROZEN = "already_frozen"
    NOT_FROZEN = "not_frozen"
    LIMIT_EXCEEDED = "limit_exceeded"
    # Governance of the validator set (issue 7, docs/ledger.md "Governance").
    VALIDATOR_EXISTS = "validator_exists"
    UNKNOWN_VALIDATOR = "unknown_validator"
    VALIDATOR_SET_TOO_SMALL = "validator_set_too_small"
    QUORUM_AT_RISK = "quorum_at_risk"
    BAD_EVIDENCE = "bad_evidence"
    DUPLICATE_EVIDENCE = "duplicate_evidence"


# Rejections that leave no trace in state: see docs/ledger.md, "Nonces and tx ids".
UNAUTHENTIC = frozenset(
    {
        ReasonCode.MALFORMED,
        ReasonCode.WRONG_CHAIN,
        ReasonCode.BAD_SIGNATURE,
        ReasonCode.BAD_NONCE,
        ReasonCode.REGULATOR_THRESHOLD_NOT_MET,
    }
)


class TxRejectedError(Exception):
    """Raised by a rule: the transaction is rejected with `code`; nothing was written."""

    def __init__(self, code: ReasonCode, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.detail = detail
