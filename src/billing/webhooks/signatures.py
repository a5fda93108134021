"""Stripe's webhook signature scheme, verified on the raw bytes before anything is parsed.

`Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` where each v1 is HMAC-SHA256 of
`"{t}.{raw body}"` with an endpoint secret. Any v1 matching any of our secrets passes (several
secrets are valid during a rotation); `t` must be within the tolerance of now, either side.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """The event is not from Stripe, or not from now."""


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def verify(
    payload: bytes, header: str | None, secrets: Sequence[str], now: float, tolerance: int = DEFAULT_TOLERANCE
) -> int:
    """The signed timestamp, or `SignatureError`."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed timestamp in Stripe-Signature") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("Stripe-Signature needs t= and at least one v1=")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("the signature timestamp is outside the tolerance")
    signed = f"{timestamp}.".encode() + payload
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        # compare_digest takes ASCII text only: anything else cannot be a hex digest anyway.
        if any(c.isascii() and hmac.compare_digest(expected, c) for c in candidates):
            return timestamp
    raise SignatureError("no signature matches")
