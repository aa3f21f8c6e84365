"""One valid args object per kind, for round-trip and builder tests."""

from __future__ import annotations

from node.tx import kinds as k

A = b"\x01" * 32
B = b"\x02" * 32
H = b"\x03" * 32

SAMPLE_ARGS: dict[k.Kind, k.Args] = {
    k.Kind.REGISTER_ACCOUNT: k.RegisterAccountArgs(
        account=A, category=k.Category.INDIVIDUAL, kyc_hash=H, expires_at_ms=123
    ),
    k.Kind.REVOKE_ACCOUNT: k.RevokeAccountArgs(account=A),
    k.Kind.GRANT_ROLE: k.GrantRoleArgs(account=A, role=k.Role.ISSUER),
    k.Kind.REVOKE_ROLE: k.RevokeRoleArgs(account=A, role="registrar"),
    k.Kind.SET_SUPPLY_CAP: k.SetSupplyCapArgs(asset_id="BOND-2036", cap=10**9),
    k.Kind.FORCE_TRANSFER: k.ForceTransferArgs(
        asset_id="BOND-2036",
        from_account=A,
        to_account=B,
        amount=5,
        reason_code="court_order",
        order_ref="CASE-2026/17",
    ),
    k.Kind.RECOVER_ACCOUNT: k.RecoverAccountArgs(
        lost_account=A, new_account=B, reason_code="key_lost", order_ref="TICKET-9"
    ),
    k.Kind.FREEZE: k.FreezeArgs(account=A, asset_id=None, reason_code="aml", order_ref="O-1"),
    k.Kind.UNFREEZE: k.UnfreezeArgs(
        account=A, asset_id="BOND-2036", reason_code="cleared", order_ref="O-2"
    ),
    k.Kind.CREATE_ASSET: k.CreateAssetArgs(
        asset_id="BOND-2036", name="State bond 2036", decimals=2, cap=10**8, document_hash=H
    ),
    k.Kind.MINT: k.MintArgs(asset_id="BOND-2036", to_account=A, amount=100),
    k.Kind.BURN: k.BurnArgs(asset_id="BOND-2036", amount=1),
    k.Kind.PAUSE: k.PauseArgs(asset_id="BOND-2036"),
    k.Kind.UNPAUSE: k.UnpauseArgs(asset_id="BOND-2036"),
    k.Kind.TRANSFER: k.TransferArgs(asset_id="BOND-2036", to_account=B, amount=7),
    k.Kind.ADD_VALIDATOR: k.AddValidatorArgs(name="v4", public_key=A, address="10.0.0.5:7000"),
    k.Kind.REMOVE_VALIDATOR: k.RemoveValidatorArgs(name="v4", allow_below_minimum=True),
    k.Kind.ROTATE_VALIDATOR_KEY: k.RotateValidatorKeyArgs(name="v1", public_key=B),
    k.Kind.SET_REGULATOR_KEYS: k.SetRegulatorKeysArgs(public_keys=(A, B, H), threshold=2),
    k.Kind.REPORT_EQUIVOCATION: k.ReportEquivocationArgs(epoch=3, first=b"\x91\x01", second=A),
}
