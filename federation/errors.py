"""The error family of the protocol engine.

Every failure the engine reports on bad input is one of these types, each with a
message that says what was wrong.  Callers map them onto Matrix error codes.
"""

from __future__ import annotations


class FederationError(Exception):
    """Base class of every error the engine raises on bad input."""


class CanonicalJSONError(FederationError, ValueError):
    """JSON text that is not acceptable to Matrix (floats, NaN, big integers, duplicate keys...)."""


class Base64Error(FederationError, ValueError):
    """A string that is not unpadded base64."""


class UnsupportedRoomVersion(FederationError, ValueError):
    """A room version this engine does not implement."""

    def __init__(self, version: object) -> None:
        super().__init__(f"unsupported room version {version!r}")
        self.version = version


class KeyFormatError(FederationError, ValueError):
    """A signing key line or key ID that cannot be parsed."""


class SignatureError(FederationError):
    """A signature that is missing, malformed or does not verify."""


class InvalidPDU(FederationError, ValueError):
    """An event whose shape breaks the event format of its room version."""


class HashMismatch(FederationError):
    """An event whose content hash does not match its content (it must be redacted)."""


class AuthError(FederationError):
    """An event rejected by the authorization rules.

    ``rule`` names the rule that failed (e.g. ``"4.3.1"`` or ``"m.room.member/join"``),
    ``reason`` says why in words.
    """

    def __init__(self, reason: str, rule: str | None = None) -> None:
        super().__init__(f"{reason} (rule {rule})" if rule else reason)
        self.reason = reason
        self.rule = rule


class MissingAuthEvent(AuthError):
    """An auth event the rules need is absent."""


class StateResolutionError(FederationError):
    """State resolution was given an inconsistent event graph (e.g. a missing event)."""


class MatrixError(Exception):
    """An error answered to a client or a remote server as Matrix JSON ``{errcode, error}``.

    Raised by request handlers of both APIs; one middleware renders it.
    """

    def __init__(self, status: int, errcode: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, object]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}
