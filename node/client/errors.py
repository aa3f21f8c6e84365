"""Client-side errors. Every one carries a message a person can act on."""

from __future__ import annotations


class ClientError(Exception):
    """Base of everything the client raises."""


class ApiError(ClientError):
    """The node answered with an error frame. `code` is a node.api.errors.ErrorCode value;
    `reason` is set for `rejected` (the admission/ledger reason code)."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reason = reason


class ConnectionLostError(ClientError):
    """The connection closed (or the node closed it) before the answer arrived."""


class ProtocolError(ClientError):
    """The node sent something that is not the documented protocol."""


class RequestTimeoutError(ClientError):
    """No answer within the client's own deadline (the request may still take effect)."""


class FinalityError(ClientError):
    """A finality proof does not prove what it claims (bad certificate, wrong block)."""
