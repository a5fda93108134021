"""Domain errors. They carry no HTTP codes: `api.errors` maps each to a problem type."""

from __future__ import annotations


class DomainError(Exception):
    """Base for every error a caller can cause and correct."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(DomainError):
    """The request is well-formed but a value is not acceptable."""


class NotFound(DomainError):
    """The named thing does not exist (or is not visible to the caller)."""


class Forbidden(DomainError):
    """The caller may not do this to this thing (four eyes: a reviewer approving their own claim)."""


class Conflict(DomainError):
    """The request contradicts the current state."""


class InvalidOffer(DomainError):
    """An offer token failed verification: tampered, expired, or signed by an unknown key."""
